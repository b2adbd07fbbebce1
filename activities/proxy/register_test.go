package proxy_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/proxy"
)

// The worker registers Activities whole, and the SDK makes every exported
// method of it an activity: they must be exactly the activities, under the
// names the workflows and their histories know. Check is no activity: it
// is the Client's, and Activities keeps it only as a deprecated forwarder
// until the wiring calls the Client (deprecated.go).
func TestActivitiesRegisterWhole(t *testing.T) {
	want := []string{"CheckDomainFree", "EnsureRoute", "RemoveRoute"}
	typ := reflect.TypeOf(&proxy.Activities{})
	var got []string
	for i := range typ.NumMethod() {
		if name := typ.Method(i).Name; name != "Check" {
			got = append(got, name)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("exported methods of *proxy.Activities %v, want the activities %v", got, want)
	}
}

// Aliases are checked before anything is sent: a retry cannot fix them.
func TestBadAliasesAreRefused(t *testing.T) {
	a, err := proxy.New(proxy.Config{Enabled: true, AdminURL: "http://127.0.0.1:1", Server: "tenantflow", Listen: ":443",
		Domain: "apps.example.test", PublicScheme: "https"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, aliases := range [][]string{
		{"CRM.customer.com"}, {"acme.apps.example.test"}, {"crm.customer.com", "crm.customer.com"}, {"not a name"},
	} {
		_, err := a.EnsureRoute(context.Background(), proxy.RouteInput{Tenant: "acme", Upstreams: []string{"127.0.0.1:8080"}, Aliases: aliases})
		var appErr *temporal.ApplicationError
		if !errors.As(err, &appErr) || appErr.Type() != proxy.ErrInvalidInput || !appErr.NonRetryable() {
			t.Errorf("aliases %q: %v, want a non-retryable %s", aliases, err, proxy.ErrInvalidInput)
		}
	}
}
