package e2e

import (
	"context"
	"os"
	"os/exec"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/temporaltest"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// buildTenantflow compiles the real binary for the crash tests.
func buildTenantflow(t testing.TB) string { return harness.BuildTenantflow(t) }

// startWorkerProcess runs `tenantflow worker` against the test server,
// with extra environment settings.
func startWorkerProcess(t testing.TB, bin string, p *platform, extraEnv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "worker")
	cmd.Env = append(os.Environ(),
		"TENANTFLOW_TEMPORAL_ADDRESS="+p.temporal.Config.Address,
		"TENANTFLOW_TEMPORAL_NAMESPACE="+p.temporal.Config.Namespace,
		"TENANTFLOW_TASK_QUEUE="+p.temporal.Config.TaskQueue,
		"TENANTFLOW_CODEC_KEYS="+temporaltest.TestCodecKeys,
		"TENANTFLOW_WORKER_METRICS_LISTEN=",
		"TENANTFLOW_LOG_LEVEL=warn",
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

func containerIDs(t *testing.T, p *platform, tenant string) []string {
	cs, err := p.driver.Client().ContainerList(context.Background(), container.ListOptions{
		All: true, Filters: filters.NewArgs(filters.Arg("label", docker.LabelTenant+"="+tenant)),
	})
	require.NoError(t, err)
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	sort.Strings(ids)
	return ids
}

// TestWorkerCrashMidProvisioning kills the worker process (SIGKILL) while it
// waits for the tenant to become healthy; a second worker takes over, and the
// tenant ends active with the very same containers: nothing made twice.
func TestWorkerCrashMidProvisioning(t *testing.T) {
	bin := buildTenantflow(t)
	p := startPlatformWith(t, nil)
	name := tenantName("e2e-crash")
	t.Cleanup(func() { p.destroy(name) })

	first := startWorkerProcess(t, bin, p)
	code, body, _ := p.do("POST", "/v1/tenants", map[string]any{"name": name, "template": "slow", "stage": "staging"})
	require.Equal(t, 202, code, body)

	// Wait until the worker is inside WaitHealthy (services started).
	require.Eventually(t, func() bool {
		code, body, _ := p.do("GET", "/v1/tenants/"+name+"?fresh=true", nil)
		return code == 200 && body["progress"].(map[string]any)["step"] == tenant.StepWaitHealthy
	}, time.Minute, 50*time.Millisecond)
	before := containerIDs(t, p, name)
	require.Len(t, before, 2)

	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	startWorkerProcess(t, bin, p)

	st := p.waitState(name, 100*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	require.Equal(t, before, containerIDs(t, p, name), "the second worker must reuse the containers")
	require.Len(t, p.residue(name), 2+2+1, "2 containers, 2 volumes, 1 network")

	// The health wait really was interrupted and retried by the second worker.
	iter := p.temporal.Client.GetWorkflowHistory(context.Background(), tenant.WorkflowID(name), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var attempt int32
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(t, err)
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil {
			attempt = a.Attempt
		}
	}
	require.GreaterOrEqual(t, attempt, int32(2), "WaitHealthy should have run again after the crash")
}
