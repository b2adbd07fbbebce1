package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/openshift"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/kube"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// openshiftPlatform is Tenantflow configured for OpenShift only: the API's
// default runtime is openshift, and the worker process has no Docker
// Engine, only the cluster, reached as the service account that
// deploy/openshift/rbac.yaml ships.
type openshiftPlatform struct {
	*platform
	cluster *kube.ControlPlane
	kube    kubernetes.Interface
	// worker is the worker process; kubeconfig its service account's.
	worker     *exec.Cmd
	kubeconfig string
}

func startOpenShiftPlatform(t testing.TB, bin string, retention time.Duration, opts kube.Options) *openshiftPlatform {
	t.Helper()
	kube.RequireTools(t)
	opts.Logf = t.Logf
	c, err := kube.Start(opts)
	require.NoError(t, err)
	t.Cleanup(c.Stop)
	ctx := context.Background()
	require.NoError(t, c.ApplyRBAC(ctx, filepath.Join(harness.RepoRoot(), "deploy", "openshift", "rbac.yaml")))
	_, kubeconfig, err := c.ServiceAccount(ctx, "tenantflow", "tenantflow-worker")
	require.NoError(t, err)

	p := startPlatformOn(t, spec.OpenShift, nil)
	worker := startWorkerProcess(t, bin, p,
		"TENANTFLOW_DOCKER_DISABLED=true",
		"TENANTFLOW_OPENSHIFT_KUBECONFIG="+kubeconfig,
		"TENANTFLOW_OPENSHIFT_ROUTE_DOMAIN=apps.test",
		"TENANTFLOW_OPENSHIFT_STORAGE_CLASS="+kube.StorageClass,
		"TENANTFLOW_BACKUP_RETENTION="+retention.String(),
	)
	return &openshiftPlatform{platform: p, cluster: c, kube: kubernetes.NewForConfigOrDie(c.Config), worker: worker, kubeconfig: kubeconfig}
}

// deployment is the tenant's Deployment of svc.
func (o *openshiftPlatform) deployment(t testing.TB, tenant, svc string) (image, generation string, available int32) {
	t.Helper()
	d, err := o.kube.AppsV1().Deployments("tf-"+tenant).Get(context.Background(), svc, metav1.GetOptions{})
	require.NoError(t, err)
	return d.Spec.Template.Spec.Containers[0].Image, d.Spec.Template.Labels[openshift.LabelGeneration], d.Status.AvailableReplicas
}

func digestImage(name string, n int) string {
	return fmt.Sprintf("%s@sha256:%064x", name, n)
}

// TestOpenShiftProvisionReleaseDecommission is the Docker flow on the
// cluster, chosen by configuration only: provision, a release, a release
// that fails its rollout and is rolled back, decommission keeping the
// volumes, restore, and the end of retention.
func TestOpenShiftProvisionReleaseDecommission(t *testing.T) {
	bin := buildTenantflow(t)
	o := startOpenShiftPlatform(t, bin, 40*time.Second, kube.Options{PVs: 10})
	ctx := context.Background()
	name := tenantName("os")
	ns := "tf-" + name

	// Provision.
	o.requestTenant(name, "light", "staging")
	st := o.waitState(name, 100*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	require.Equal(t, "https://"+name+".apps.test", st["url"])
	require.Equal(t, spec.OpenShift, st["runtime"])
	img, gen, avail := o.deployment(t, name, "app")
	require.Equal(t, "0", gen)
	require.Equal(t, int32(1), avail)
	first := img

	// The generated db password is in the tenant's Secret on the cluster,
	// and nowhere in plain in the workflow's history.
	sec, err := o.kube.CoreV1().Secrets(ns).Get(ctx, "db-env", metav1.GetOptions{})
	require.NoError(t, err)
	password := string(sec.Data["DB_PASSWORD"])
	require.Len(t, password, 32, "the generated db_password (32 characters) is in the db's Secret")
	require.NotContains(t, o.rawHistory(tenant.WorkflowID(name)), password)

	// A release rolls the app out to a new image.
	releaseTo := func(image string, extra map[string]any) release.Release {
		body := map[string]any{"image": image, "tenants": map[string]any{"names": []string{name}}, "drain": "0s"}
		for k, v := range extra {
			body[k] = v
		}
		code, out, _ := o.doAs("developer-"+o.token, http.MethodPost, "/v1/releases", body)
		require.Equal(t, http.StatusAccepted, code, out)
		id := out["id"].(string)
		b := &releaseBench{t: t, p: o.platform}
		return b.waitRelease(id, 2*time.Minute, release.StateCompleted, release.StatePaused, release.StateAwaitingPromotion)
	}
	v2 := digestImage("registry.test/demo-app", 2)
	rs := releaseTo(v2, nil)
	require.Contains(t, []release.State{release.StateCompleted, release.StateAwaitingPromotion}, rs.State, rs)
	img, gen, avail = o.deployment(t, name, "app")
	require.Equal(t, v2, img)
	require.Equal(t, "1", gen)
	require.Equal(t, int32(1), avail)

	// A release whose pods never get ready is rolled back: the cluster
	// runs the previous ReplicaSet's template again.
	rs = releaseTo(kube.UnreadyDigestImage, map[string]any{"healthTimeout": "3s", "failureThreshold": 0})
	require.Equal(t, release.StatePaused, rs.State, rs)
	_, ten, _ := o.do(http.MethodGet, "/v1/tenants/"+name, nil)
	require.Equal(t, string(tenant.StateActive), ten["state"])
	require.Contains(t, ten["error"], "rolled back")
	harness.WaitFor(t, "app back on generation 1", 30*time.Second, func() error {
		img, gen, avail := o.deployment(t, name, "app")
		if img != v2 || gen != "1" || avail != 1 {
			return fmt.Errorf("app runs %s generation %s (%d available)", img, gen, avail)
		}
		return nil
	})
	require.NotEqual(t, first, v2)

	// Decommission keeps the volumes in place and says so.
	code, body, _ := o.do(http.MethodDelete, "/v1/tenants/"+name+"?force=true&reason=e2e", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	st = o.waitFor(name, 100*time.Millisecond, 2*time.Minute, "retained", phaseIs(tenant.PhaseRetained, tenant.PhaseFailed))
	d := decommissionOf(st)
	require.Equal(t, string(tenant.PhaseRetained), d["phase"], st)
	bk := d["backup"].(map[string]any)
	require.Equal(t, backup.KindInPlace, bk["kind"])
	require.Contains(t, bk["note"], "storage layer")
	require.Len(t, bk["kept"], 2)
	deps, err := o.kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, deps.Items)
	claims, err := o.kube.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, claims.Items, 2)
	for _, c := range claims.Items {
		pv, err := o.kube.CoreV1().PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, corev1.PersistentVolumeReclaimRetain, pv.Spec.PersistentVolumeReclaimPolicy)
	}

	// Restore brings it back on the same claims, at the same URL, with
	// the image it had.
	code, body, _ = o.do(http.MethodPost, "/v1/tenants/"+name+"/restore", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	st = o.waitFor(name, 100*time.Millisecond, 2*time.Minute, "restored", phaseIs(tenant.PhaseRestored, tenant.PhaseFailed))
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	require.Equal(t, "https://"+name+".apps.test", st["url"])
	img, _, avail = o.deployment(t, name, "app")
	require.Equal(t, v2, img)
	require.Equal(t, int32(1), avail)
	claims2, err := o.kube.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Equal(t, claimUIDs(claims), claimUIDs(claims2), "the same claims: the same data")

	// Decommissioned again, the tenant is deleted when retention ends.
	code, body, _ = o.do(http.MethodDelete, "/v1/tenants/"+name+"?force=true&reason=e2e", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	st = o.waitFor(name, 200*time.Millisecond, 3*time.Minute, "purged", phaseIs(tenant.PhasePurged, tenant.PhaseFailed))
	require.Equal(t, string(tenant.PhasePurged), decommissionOf(st)["phase"], st)
	harness.WaitFor(t, "project deleted", time.Minute, func() error {
		_, err := o.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("namespace %s still there (%w)", ns, err)
	})
	desc, err := o.temporal.Client.DescribeWorkflowExecution(ctx, tenant.WorkflowID(name), "")
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.GetWorkflowExecutionInfo().GetStatus())
	o.checkHistory(tenant.WorkflowID(name), "tenant-openshift")
}

func claimUIDs(l *corev1.PersistentVolumeClaimList) []string {
	var out []string
	for _, c := range l.Items {
		out = append(out, c.Name+"="+string(c.UID))
	}
	return out
}

// BenchmarkOpenShiftProvision measures provision-to-Available on the test
// control plane through the whole platform (API, workflow, worker process,
// cluster): one tenant at a time, and 20 requested together.
func BenchmarkOpenShiftProvision(b *testing.B) {
	bin := buildTenantflow(b)
	// Each tenant binds two volumes, released when its project goes.
	o := startOpenShiftPlatform(b, bin, time.Hour, kube.Options{PVs: 300})
	run := func(b *testing.B, n int) {
		var total time.Duration
		for range b.N {
			names := make([]string, n)
			for j := range names {
				names[j] = tenantName(fmt.Sprintf("bos%d", n))
			}
			start := time.Now()
			var wg sync.WaitGroup
			for _, name := range names {
				wg.Go(func() { o.requestTenant(name, "light", "prod") })
			}
			wg.Wait()
			for _, name := range names {
				st := o.waitState(name, 20*time.Millisecond, 5*time.Minute)
				if st["state"] != string(tenant.StateActive) {
					b.Fatalf("%s: %v", name, st)
				}
			}
			total += time.Since(start)
			b.StopTimer()
			for _, name := range names {
				_ = o.temporal.Client.TerminateWorkflow(context.Background(), tenant.WorkflowID(name), "", "bench")
				_ = o.kube.CoreV1().Namespaces().Delete(context.Background(), "tf-"+name, metav1.DeleteOptions{})
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/batch")
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N*n), "ms/tenant")
	}
	b.Run("one", func(b *testing.B) { run(b, 1) })
	b.Run("parallel-20", func(b *testing.B) { run(b, 20) })
}
