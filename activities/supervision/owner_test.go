package supervision_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/supervision"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// ownerConformance is what every driver must do about owners: run B never
// takes over or removes run A's registration, run A's retry and removal
// work, and a registration from before runs were stamped is taken over or
// removed only with Adopt. registered reports whether the tenant is
// registered and the owner its registration names.
func ownerConformance(t *testing.T, a *supervision.Activities, url string, registered func(tenant string) (bool, string)) {
	t.Helper()
	runA := supervision.WatchInput{Tenant: "acme", Stage: "prod", URL: url, Owner: "run-a"}
	require.NoError(t, a.StartSupervision(ctx(t), runA))
	ok, owner := registered("acme")
	require.True(t, ok)
	require.Equal(t, "run-a", owner)

	for _, adopt := range []bool{false, true} { // adopting is for unstamped registrations only
		runB := supervision.WatchInput{Tenant: "acme", Stage: "staging", URL: url + "?b", Owner: "run-b", Adopt: adopt}
		harness.RequireNonRetryable(t, a.StartSupervision(ctx(t), runB), supervision.ErrResourceNotOurs)
	}
	require.NoError(t, a.StopSupervision(ctx(t), supervision.WatchRef{Tenant: "acme", Owner: "run-b"}), "run B's compensation")
	ok, owner = registered("acme")
	require.True(t, ok, "run B's compensation removed run A's registration")
	require.Equal(t, "run-a", owner)

	require.NoError(t, a.StartSupervision(ctx(t), runA), "run A's retry")
	require.NoError(t, a.StopSupervision(ctx(t), supervision.WatchRef{Tenant: "acme", Owner: "run-a"}))
	ok, _ = registered("acme")
	require.False(t, ok, "run A's removal")

	// From before runs were stamped.
	legacy := supervision.WatchInput{Tenant: "globex", Stage: "prod", URL: url}
	require.NoError(t, a.StartSupervision(ctx(t), legacy))
	provision := supervision.WatchInput{Tenant: "globex", Stage: "prod", URL: url, Owner: "run-new"}
	harness.RequireNonRetryable(t, a.StartSupervision(ctx(t), provision), supervision.ErrResourceNotOurs)
	require.NoError(t, a.StopSupervision(ctx(t), supervision.WatchRef{Tenant: "globex", Owner: "run-new"}))
	ok, owner = registered("globex")
	require.True(t, ok, "a provisioning removed a registration from before runs were stamped")
	require.Equal(t, "", owner)

	release := supervision.WatchInput{Tenant: "globex", Stage: "prod", URL: url, Owner: "run-old", Adopt: true}
	require.NoError(t, a.StartSupervision(ctx(t), release))
	ok, owner = registered("globex")
	require.True(t, ok)
	require.Equal(t, "run-old", owner, "adopted and stamped")

	require.NoError(t, a.StartSupervision(ctx(t), supervision.WatchInput{Tenant: "initech", Stage: "prod", URL: url}))
	require.NoError(t, a.StopSupervision(ctx(t), supervision.WatchRef{Tenant: "initech", Owner: "run-i", Adopt: true}))
	ok, _ = registered("initech")
	require.False(t, ok, "a decommission (Adopt) removes an unstamped registration of its tenant")
}

func TestPrometheusOwners(t *testing.T) {
	dir := t.TempDir()
	a, err := supervision.New(promConfig(dir), harness.Logger(t))
	require.NoError(t, err)
	ownerConformance(t, a, "http://127.0.0.1:9/healthz", func(tenant string) (bool, string) {
		content, err := os.ReadFile(filepath.Join(dir, "tenantflow-"+tenant+".json"))
		if os.IsNotExist(err) {
			return false, ""
		}
		require.NoError(t, err)
		var groups []struct {
			Labels map[string]string `json:"labels"`
		}
		require.NoError(t, json.Unmarshal(content, &groups))
		return true, groups[0].Labels[supervision.OwnerLabel]
	})
}

func TestIcinga2Owners(t *testing.T) {
	ic := harness.StartIcinga2(t)
	a := newIcingaActivities(t, ic, ic.Password)
	ownerConformance(t, a, "http://127.0.0.1:9/healthz", func(tenant string) (bool, string) {
		hosts := objects(t, ic, "hosts/tenantflow-"+tenant+"?attrs=vars")
		if len(hosts) == 0 {
			return false, ""
		}
		require.Len(t, objects(t, ic, "services/tenantflow-"+tenant+"!http"), 1)
		owner, _ := hosts[0].Attrs.Vars[supervision.OwnerVar].(string)
		return true, owner
	})
}
