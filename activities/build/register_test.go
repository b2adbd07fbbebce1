package build_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/tenantflow/tenantflow/activities/build"
)

// The worker can register Activities whole, and the SDK makes every
// exported method of it an activity: they must be exactly the activities,
// under the names the build workflow and its histories know.
func TestActivitiesRegisterWhole(t *testing.T) {
	want := []string{"BuildAndPushImage", "FindImage", "RemoveImage"}
	typ := reflect.TypeOf(&build.Activities{})
	var got []string
	for i := range typ.NumMethod() {
		got = append(got, typ.Method(i).Name)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("exported methods of *build.Activities %v, want the activities %v", got, want)
	}
}
