package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// Hosts register through the API into the registry workflow, which places
// tenants by capacity and zone; GET /v1/hosts shows reservations and
// whether each host's worker polls its queue; cordon takes a host out of
// placement.
func TestHostRegistryThroughTheAPI(t *testing.T) {
	p := startPlatform(t)
	code, body, _ := p.do(http.MethodGet, "/v1/hosts", nil)
	require.Equal(t, http.StatusOK, code, body)
	require.Empty(t, body["hosts"], "no registry yet: no hosts")

	for _, h := range []map[string]any{
		{"name": "host-a", "docker": "unix:///run/a/docker.sock", "address": "10.231.1.2", "capacity": map[string]any{"cpus": 4, "memory": "1Gi"}, "labels": map[string]any{"zone": "z1"}},
		{"name": "host-b", "docker": "unix:///run/b/docker.sock", "address": "10.231.2.2", "capacity": map[string]any{"cpus": 4, "memory": "2Gi"}, "labels": map[string]any{"zone": "z2"}},
	} {
		code, body, _ = p.do(http.MethodPost, "/v1/hosts", h)
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, "active", body["state"])
	}

	// host-a's worker polls its queue.
	w := worker.New(p.temporal.Client, hosts.TaskQueue("host-a"), worker.Options{})
	w.RegisterActivity(&runtimes.Activities{})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)

	// Placement is an Update of the registry: the emptier zone's host
	// with the most free memory first, then the other zone.
	ctx := context.Background()
	place := func(tenant string) hosts.Placement {
		t.Helper()
		h, err := p.temporal.Client.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: hosts.WorkflowID, UpdateName: hosts.UpdateReserve,
			Args:         []any{hosts.ReserveInput{Tenant: tenant, Owner: "run-" + tenant, Need: hosts.Resources{MilliCPU: 500, MemoryBytes: 512 << 20}}},
			WaitForStage: client.WorkflowUpdateStageCompleted})
		require.NoError(t, err)
		var pl hosts.Placement
		require.NoError(t, h.Get(ctx, &pl))
		return pl
	}
	require.Equal(t, "host-b", place("t1").Host)
	require.Equal(t, "host-a", place("t2").Host)

	code, body, _ = p.do(http.MethodPost, "/v1/hosts/host-b/cordon", map[string]any{"reason": "disk replacement"})
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "cordoned", body["state"])
	require.Contains(t, body["reason"], "disk replacement")
	require.Equal(t, "host-a", place("t3").Host, "a cordoned host takes nobody")
	code, body, _ = p.do(http.MethodPost, "/v1/hosts/host-z/cordon", nil)
	require.Equal(t, http.StatusNotFound, code, body)
	require.Equal(t, "name", body["field"])

	var a map[string]any
	require.Eventually(t, func() bool {
		code, a, _ = p.do(http.MethodGet, "/v1/hosts/host-a", nil)
		w, _ := a["worker"].(map[string]any)
		return code == http.StatusOK && w["polling"] == true
	}, 20*time.Second, 200*time.Millisecond, "host-a's worker shows as polling: %v", a)
	require.Equal(t, []any{"t2", "t3"}, a["tenants"])
	require.Equal(t, map[string]any{"cpus": 1.0, "memory": "1024Mi"}, a["reserved"])
	require.Equal(t, "0Mi", a["free"].(map[string]any)["memory"])
	code, body, _ = p.do(http.MethodGet, "/v1/hosts", nil)
	require.Equal(t, http.StatusOK, code, body)
	list := body["hosts"].([]any)
	require.Len(t, list, 2)
	b := list[1].(map[string]any)
	require.Equal(t, false, b["worker"].(map[string]any)["polling"], "nobody polls host-b's queue")
}
