package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

func TestProvisionTenantThroughAPI(t *testing.T) {
	p := startPlatform(t)
	name := tenantName("e2e")
	t.Cleanup(func() { p.destroy(name) })

	code, body, hdr := p.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "template": "light", "stage": "prod"})
	require.Equal(t, http.StatusAccepted, code, body)
	require.Equal(t, "/v1/tenants/"+name, hdr.Get("Location"))
	require.Equal(t, tenant.WorkflowID(name), body["workflowId"])
	require.Equal(t, "provisioning", body["status"])

	st := p.waitState(name, 50*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	require.Equal(t, "prod", st["stage"])
	require.Equal(t, "tenantflow/demo-app:dev", st["image"])
	progress := st["progress"].(map[string]any)
	require.Equal(t, progress["done"], progress["total"])

	// The containers run on the real engine, healthy, labelled.
	cs, err := p.driver.Client().ContainerList(context.Background(), container.ListOptions{
		Filters: filters.NewArgs(filters.Arg("label", docker.LabelTenant+"="+name)),
	})
	require.NoError(t, err)
	require.Len(t, cs, 2)
	for _, c := range cs {
		require.Equal(t, "running", c.State, c.Names)
	}
	// The worker's probe found the db ready; the engine's own check runs at
	// its steady pace, so its first verdict may still be pending.
	db, err := p.driver.Client().ContainerInspect(context.Background(), docker.ContainerName(name, "db"))
	require.NoError(t, err)
	require.Contains(t, []string{"starting", "healthy"}, db.State.Health.Status)
	require.Equal(t, 30*time.Second, db.Config.Healthcheck.Interval)

	// The tenant answers on the reported URL and reaches its database.
	url := st["url"].(string)
	resp, err := http.Post(url+"/hits", "text/plain", nil)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	resp, err = http.Get(url + "/version")
	require.NoError(t, err)
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, "v1", strings.TrimSpace(string(b)))

	// A tenant exists once.
	code, body, _ = p.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "template": "light", "stage": "prod"})
	require.Equal(t, http.StatusConflict, code, body)

	// Listing from visibility finds it by state and stage (eventually).
	require.Eventually(t, func() bool {
		code, body, _ := p.do(http.MethodGet, "/v1/tenants?state=active&stage=prod", nil)
		if code != http.StatusOK {
			return false
		}
		for _, tn := range body["tenants"].([]any) {
			if tn.(map[string]any)["name"] == name {
				return true
			}
		}
		return false
	}, 10*time.Second, 100*time.Millisecond)

	p.checkHistory(tenant.WorkflowID(name), "provision-active")
}

// A batch larger than its host admits at once queues: with room for one
// tenant starting, three requested together start one after the other,
// those waiting show "queued for the host" and hold nothing on the engine,
// and all end active.
func TestABatchQueuesForItsHost(t *testing.T) {
	p := startPlatformWith(t, &wiring.Config{Docker: docker.Config{StartingTenants: 1}})
	names := []string{tenantName("e2e-queue"), tenantName("e2e-queue"), tenantName("e2e-queue")}
	for _, n := range names {
		t.Cleanup(func() { p.destroy(n) })
	}
	for _, n := range names {
		p.requestTenant(n, "light", "prod")
	}

	isQueued := func(n string) bool {
		code, body, _ := p.do(http.MethodGet, "/v1/tenants/"+n+"?fresh=true", nil)
		prog, _ := body["progress"].(map[string]any)
		return code == http.StatusOK && prog != nil && strings.Contains(prog["step"].(string), tenant.StepQueued)
	}
	var queued string
	deadline := time.Now().Add(2 * time.Minute)
	for queued == "" && time.Now().Before(deadline) {
		for _, n := range names {
			if !isQueued(n) {
				continue
			}
			// Nothing is made for a tenant before its turn (seen while
			// it was still queued after the look).
			if held := p.residue(n); isQueued(n) {
				require.Empty(t, held, "queued, yet it holds")
				queued = n
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	require.NotEmpty(t, queued, "none of three waited its turn with room for one")

	for _, n := range names {
		st := p.waitState(n, 100*time.Millisecond, 3*time.Minute)
		require.Equal(t, string(tenant.StateActive), st["state"], st)
	}
	hist := p.rawHistory(tenant.WorkflowID(queued))
	require.Contains(t, hist, "AwaitAdmission")
	p.checkHistory(tenant.WorkflowID(queued), "provision-queued")
}

func TestPermanentFailureLeavesNoResidue(t *testing.T) {
	p := startPlatform(t)
	name := tenantName("e2e-broken")
	t.Cleanup(func() { p.destroy(name) })

	p.requestTenant(name, "broken", "staging")
	st := p.waitState(name, 50*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateFailed), st["state"], st)
	require.Contains(t, st["error"], runtimes.ErrImageNotFound)
	require.Empty(t, p.residue(name), "compensation must leave nothing on the engine")

	desc, err := p.temporal.Client.DescribeWorkflowExecution(context.Background(), tenant.WorkflowID(name), "")
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED, desc.WorkflowExecutionInfo.Status)

	p.checkHistory(tenant.WorkflowID(name), "provision-failed")

	// The raw history holds neither the workflow's failure text nor the
	// generated secrets in plain text: payloads and failures are encrypted.
	// (The SDK keeps a local activity's failure message plain in its
	// marker; those are Docker errors, not secrets.)
	raw := p.rawHistory(tenant.WorkflowID(name))
	require.NotContains(t, raw, "provision tenant "+name)
	require.NotContains(t, raw, "DB_PASSWORD")
	require.Contains(t, raw, "binary/encrypted", "sanity: the payloads were read")

	// A failed tenant can be asked for again (a new run of the same id).
	p.requestTenant(name, "light", "staging")
	st = p.waitState(name, 50*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
}

// TestAPlanSizesTheContainers: a tenant created with the light template's
// medium plan runs containers with that plan's limits on the real engine,
// and its state names the plan.
func TestAPlanSizesTheContainers(t *testing.T) {
	p := startPlatform(t)
	name := tenantName("plan")
	t.Cleanup(func() { p.destroy(name) })
	code, body, _ := p.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "template": "light", "stage": "prod", "plan": "xl"})
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Equal(t, "plan", body["field"])
	code, body, _ = p.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "template": "light", "stage": "prod", "plan": "medium"})
	require.Equal(t, http.StatusAccepted, code, body)
	st := p.waitState(name, 50*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	require.Equal(t, "medium", st["plan"])
	for _, svc := range []string{"app", "db"} {
		c, err := p.driver.Client().ContainerInspect(context.Background(), docker.ContainerName(name, svc))
		require.NoError(t, err)
		require.Equal(t, int64(128<<20), c.HostConfig.Memory, svc)
		require.Equal(t, int64(1e9), c.HostConfig.NanoCPUs, svc)
	}
}

// TestPlanChangeUnderLoad: a tenant changes plan while users hit it through
// the proxy: the database is resized in place, the app cut over to a new
// instance with its new limits, and no request fails.
func TestPlanChangeUnderLoad(t *testing.T) {
	b := startReleaseBench(t)
	name := tenantName("pl")
	b.provision("prod", name)
	load := b.load([]string{name}, 2*time.Millisecond, "v1")
	code, body, _ := b.p.do(http.MethodPatch, "/v1/tenants/"+name, map[string]any{"plan": "huge"})
	require.Equal(t, http.StatusConflict, code, body)
	require.Contains(t, body["error"], `no plan "huge"`)
	code, body, _ = b.p.do(http.MethodPatch, "/v1/tenants/"+name, map[string]any{"plan": "medium"})
	require.Equal(t, http.StatusAccepted, code, body)
	st := b.p.waitFor(name, 100*time.Millisecond, 2*time.Minute, "the plan changed", func(st map[string]any) bool {
		pc, _ := st["planChange"].(map[string]any)
		return pc != nil && (pc["phase"] == string(tenant.PlanDone) || pc["phase"] == string(tenant.PlanFailed))
	})
	requireNoFailedRequest(t, load.Stop())
	require.Equal(t, string(tenant.PlanDone), st["planChange"].(map[string]any)["phase"], st)
	require.Equal(t, "medium", st["plan"])
	for _, c := range []string{docker.ContainerName(name, "db"), docker.InstanceName(name, "app", 1)} {
		got, err := b.p.driver.Client().ContainerInspect(context.Background(), c)
		require.NoError(t, err, c)
		require.Equal(t, int64(128<<20), got.HostConfig.Memory, c)
		require.Equal(t, int64(1e9), got.HostConfig.NanoCPUs, c)
	}
	require.Equal(t, "v1", b.version(name))
	b.p.checkHistory(tenant.WorkflowID(name), "tenant-plan-change")
}

// A tenant created with a setting shows it; a settings change reaches the
// app through a cut-over under load without a failed request; a value
// the template refuses is a 400 naming the setting.
func TestSettingsChangeUnderLoad(t *testing.T) {
	b := startReleaseBench(t)
	name := tenantName("st")
	t.Cleanup(func() { b.p.destroy(name) })
	code, body, _ := b.p.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "template": "light", "stage": "prod",
		"settings": map[string]any{"TITLE": "Acme"}})
	require.Equal(t, http.StatusAccepted, code, body)
	st := b.p.waitState(name, 100*time.Millisecond, 3*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	require.Equal(t, map[string]any{"TITLE": "Acme", "LOG_LEVEL": "info"}, st["settings"])
	require.Equal(t, "Acme", b.title(name))

	load := b.load([]string{name}, 2*time.Millisecond, "v1")
	code, body, _ = b.p.do(http.MethodPatch, "/v1/tenants/"+name, map[string]any{"settings": map[string]any{"LOG_LEVEL": "loud"}})
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Equal(t, "settings.LOG_LEVEL", body["field"], body)
	code, body, _ = b.p.do(http.MethodPatch, "/v1/tenants/"+name, map[string]any{"settings": map[string]any{"TITLE": "Acme CRM", "LOG_LEVEL": "debug"}})
	require.Equal(t, http.StatusAccepted, code, body)
	st = b.p.waitFor(name, 100*time.Millisecond, 2*time.Minute, "the settings changed", func(st map[string]any) bool {
		sc, _ := st["settingsChange"].(map[string]any)
		return sc != nil && (sc["phase"] == string(tenant.PlanDone) || sc["phase"] == string(tenant.PlanFailed))
	})
	requireNoFailedRequest(t, load.Stop())
	require.Equal(t, string(tenant.PlanDone), st["settingsChange"].(map[string]any)["phase"], st)
	require.Equal(t, map[string]any{"TITLE": "Acme CRM", "LOG_LEVEL": "debug"}, st["settings"])
	require.Equal(t, "Acme CRM", b.title(name))
	got, err := b.p.driver.Client().ContainerInspect(context.Background(), docker.InstanceName(name, "app", 1))
	require.NoError(t, err)
	require.Contains(t, got.Config.Env, "LOG_LEVEL=debug")
	require.Equal(t, "v1", b.version(name), "the same image")
	b.p.checkHistory(tenant.WorkflowID(name), "tenant-settings-change")
}
