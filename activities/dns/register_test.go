package dns_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/tenantflow/tenantflow/activities/dns"
)

// The worker registers Activities whole, and the SDK makes every exported
// method of it an activity: they must be exactly the activities, under the
// names the workflows and their histories know. Check and Lookup are no
// activities: they are the Client's, and Activities keeps Check only as a
// deprecated forwarder until the wiring calls the Client (deprecated.go).
func TestActivitiesRegisterWhole(t *testing.T) {
	want := []string{"EnsureDNSRecord", "RemoveDNSRecord"}
	typ := reflect.TypeOf(&dns.Activities{})
	var got []string
	for i := range typ.NumMethod() {
		if name := typ.Method(i).Name; name != "Check" {
			got = append(got, name)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("exported methods of *dns.Activities %v, want the activities %v", got, want)
	}
}
