package cmdb_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/tenantflow/tenantflow/activities/cmdb"
)

// The worker registers Activities whole, and the SDK makes every exported
// method of it an activity: they must be exactly the activities, under the
// names the workflows and their histories know. Check is no activity: it
// is the Client's, and Activities keeps it only as a deprecated forwarder
// until the wiring calls the Client (deprecated.go).
func TestActivitiesRegisterWhole(t *testing.T) {
	want := []string{"MarkObsoleteInCMDB", "RegisterInCMDB", "RemoveFromCMDB"}
	typ := reflect.TypeOf(&cmdb.Activities{})
	var got []string
	for i := range typ.NumMethod() {
		if name := typ.Method(i).Name; name != "Check" {
			got = append(got, name)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("exported methods of *cmdb.Activities %v, want the activities %v", got, want)
	}
}
