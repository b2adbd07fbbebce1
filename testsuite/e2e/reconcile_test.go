package e2e

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/api"
	"github.com/tenantflow/tenantflow/internal/demoimage"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/reconcile"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// A tenant's app container removed by hand on its fleet host is found
// missing by the drift reconcile and made again by the tenant's own
// workflow (it serves, active); a container made by hand with the labels
// of a tenant that does not exist is reported as an orphan in GET
// /v1/reconcile, and left (its grace period has not passed).
func TestDriftIsReconciled(t *testing.T) {
	p := startPlatformWith(t, &wiring.Config{}, func(c *api.Config) { c.Placement, c.ReconcileEvery = true, 2*time.Second })
	h := startFleetHost(t, p, "host-r", "z1", "512Mi")
	name := tenantName("dr")
	t.Cleanup(func() { p.destroy(name) })
	p.requestTenant(name, "light", "prod")
	st := p.waitState(name, 100*time.Millisecond, 3*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	require.Equal(t, h.name, st["placement"].(map[string]any)["host"])

	ctx := context.Background()
	engine := h.driver.Client()
	app := docker.ContainerName(name, "app")
	require.NoError(t, engine.ContainerRemove(ctx, app, container.RemoveOptions{Force: true}))
	ghost := tenantName("ghost")
	_, err := engine.ContainerCreate(ctx, &container.Config{Image: demoimage.Tag, Labels: map[string]string{
		docker.LabelManaged: "true", docker.LabelTenant: ghost, docker.LabelOwner: "run-gone", docker.LabelService: "app",
	}}, nil, nil, nil, "tf-"+ghost+"_app")
	require.NoError(t, err)

	st = p.waitFor(name, 200*time.Millisecond, 2*time.Minute, "repaired", func(st map[string]any) bool {
		r, _ := st["repair"].(map[string]any)
		return r != nil && r["phase"] == string(tenant.RepairDone)
	})
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	info, err := engine.ContainerInspect(ctx, app)
	require.NoError(t, err, "the app's container is back")
	require.True(t, info.State.Running)
	resp, err := http.Get(st["url"].(string) + "/healthz")
	require.NoError(t, err, "served again at %s", st["url"])
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Empty(t, p.residue(name), "nothing on the machine's engine")

	var orphan map[string]any
	require.Eventually(t, func() bool {
		code, body, _ := p.do(http.MethodGet, "/v1/reconcile", nil)
		if code != http.StatusOK {
			return false
		}
		for _, f := range body["findings"].([]any) {
			if f := f.(map[string]any); f["tenant"] == ghost {
				orphan = f
				return true
			}
		}
		return false
	}, time.Minute, 500*time.Millisecond, "the ghost's container is reported")
	require.Equal(t, string(reconcile.KindOrphan), orphan["kind"])
	require.Equal(t, h.name, orphan["host"])
	require.Equal(t, true, orphan["ownerFinished"])
	require.Equal(t, reconcile.ActionReported, orphan["action"], "within its grace period")
	_, err = engine.ContainerInspect(ctx, "tf-"+ghost+"_app")
	require.NoError(t, err, "not removed before the grace period")
	p.checkHistory(tenant.WorkflowID(name), "tenant-repaired")
	p.checkHistory(reconcile.WorkflowID, "reconcile") // open: what it recorded so far
}
