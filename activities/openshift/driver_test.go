package openshift_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	routev1 "github.com/openshift/api/route/v1"
	routeclient "github.com/openshift/client-go/route/clientset/versioned"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/openshift"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/kube"
)

const owner = "0b0e2a3c-run-1"

// environment is a tenant like the default template's: an app with the
// public port, an HTTP check, a volume and the db password; a db with
// its own volume.
func environment(tenant string) spec.Environment {
	return spec.Environment{
		Tenant: tenant, Stage: "prod", Template: "default", Runtime: spec.OpenShift,
		Volumes: []string{"data", "db-data"},
		Services: []spec.Service{
			{Name: "db", Image: "registry.test/demo-db:1", Command: []string{"db"},
				Env:         map[string]string{"DB_PASSWORD": "s3cret-pw"},
				Ports:       []spec.Port{{Name: "db", Container: 5432}},
				Mounts:      []spec.Mount{{Volume: "db-data", Path: "/var/lib/db"}},
				HealthCheck: &spec.HealthCheck{Command: []string{"/demo-app", "check"}}},
			{Name: "app", Image: "registry.test/demo-app:1",
				Env:    map[string]string{"DB_PASSWORD": "s3cret-pw", "TENANT": tenant},
				Ports:  []spec.Port{{Name: "http", Container: 8080, Public: true}},
				Mounts: []spec.Mount{{Volume: "data", Path: "/data"}},
				HealthCheck: &spec.HealthCheck{HTTP: &spec.HTTPCheck{Path: "/healthz", Port: 8080},
					Interval: spec.Duration(2 * time.Second), Retries: 4},
				Resources: spec.Resources{Memory: "64Mi", CPUs: 0.5}},
		},
	}
}

func provision(t *testing.T, d *openshift.Driver, env spec.Environment) runtimes.Endpoint {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, d.CreateNetwork(ctx, env.Tenant, owner))
	require.NoError(t, d.CreateVolumes(ctx, env.Tenant, owner, env.Volumes))
	for _, s := range env.Services {
		_, err := d.StartService(ctx, env.Tenant, owner, s)
		require.NoError(t, err)
	}
	ep, err := d.WaitHealthy(ctx, env, func(string) {})
	require.NoError(t, err)
	return ep
}

// setup gives a test the shared cluster, a driver with the service
// account's rights and an admin client to check what the driver did.
func setup(t *testing.T) (*kube.ControlPlane, *openshift.Driver, kubernetes.Interface) {
	c := cluster(t)
	return c, newDriver(t, c, nil), kubernetes.NewForConfigOrDie(c.Config)
}

func TestProvisionIsIdempotentAndComplete(t *testing.T) {
	c, d, kc := setup(t)
	ctx, env, ns := context.Background(), environment("acme"), "tf-acme"

	ep := provision(t, d, env)
	require.Equal(t, "https://acme.apps.test", ep.URL)

	nsObj, err := kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"kubernetes.io/metadata.name": ns, openshift.LabelManaged: "tenantflow",
		openshift.LabelTenant: "acme", openshift.LabelOwner: owner}, nsObj.Labels)
	_, err = kc.NetworkingV1().NetworkPolicies(ns).Get(ctx, "tenantflow-isolation", metav1.GetOptions{})
	require.NoError(t, err)

	// Credentials live in the Secret only.
	sec, err := kc.CoreV1().Secrets(ns).Get(ctx, "app-env", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "s3cret-pw", string(sec.Data["DB_PASSWORD"]))
	app, err := kc.AppsV1().Deployments(ns).Get(ctx, "app", metav1.GetOptions{})
	require.NoError(t, err)
	pod := app.Spec.Template.Spec
	require.Empty(t, pod.Containers[0].Env)
	require.Equal(t, "app-env", pod.Containers[0].EnvFrom[0].SecretRef.Name)
	require.Equal(t, intstr.FromInt32(0), *app.Spec.Strategy.RollingUpdate.MaxUnavailable)
	require.Equal(t, intstr.FromInt32(1), *app.Spec.Strategy.RollingUpdate.MaxSurge)
	rp := pod.Containers[0].ReadinessProbe
	require.NotNil(t, rp)
	require.Equal(t, "/healthz", rp.HTTPGet.Path)
	require.Equal(t, int32(2), rp.PeriodSeconds)
	require.Equal(t, int32(4), rp.FailureThreshold)
	require.Equal(t, "64Mi", ptr.To(pod.Containers[0].Resources.Limits[corev1.ResourceMemory]).String())
	require.Equal(t, "data", pod.Volumes[0].PersistentVolumeClaim.ClaimName)
	require.Equal(t, int64(5), pod.Containers[0].Lifecycle.PreStop.Sleep.Seconds, "the public pod serves while the router lets go of it")
	require.Equal(t, int64(15), *pod.TerminationGracePeriodSeconds)
	db, err := kc.AppsV1().Deployments(ns).Get(ctx, "db", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, []string{"/demo-app", "check"}, db.Spec.Template.Spec.Containers[0].ReadinessProbe.Exec.Command)
	require.Equal(t, []string{"db"}, db.Spec.Template.Spec.Containers[0].Args, "the template's command replaces CMD, as on Docker")
	require.Nil(t, db.Spec.Template.Spec.Containers[0].Lifecycle, "no delay where no router sends traffic")

	svc, err := kc.CoreV1().Services(ns).Get(ctx, "db", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, int32(5432), svc.Spec.Ports[0].Port)
	for _, v := range env.Volumes {
		pvc, err := kc.CoreV1().PersistentVolumeClaims(ns).Get(ctx, v, metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, corev1.ClaimBound, pvc.Status.Phase, v)
	}
	rc := routeclient.NewForConfigOrDie(c.Config)
	route, err := rc.RouteV1().Routes(ns).Get(ctx, openshift.RouteName, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, "acme.apps.test", route.Spec.Host)
	require.Equal(t, "app", route.Spec.To.Name)
	require.Equal(t, routev1.TLSTerminationEdge, route.Spec.TLS.Termination)
	require.Equal(t, routev1.InsecureEdgeTerminationPolicyRedirect, route.Spec.TLS.InsecureEdgeTerminationPolicy)

	// One selector finds every object of the tenant.
	sel := metav1.ListOptions{LabelSelector: openshift.LabelTenant + "=acme"}
	deps, err := kc.AppsV1().Deployments("").List(ctx, sel)
	require.NoError(t, err)
	require.Len(t, deps.Items, 2)
	pvcs, err := kc.CoreV1().PersistentVolumeClaims("").List(ctx, sel)
	require.NoError(t, err)
	require.Len(t, pvcs.Items, 2)

	// A retry makes nothing twice and changes nothing.
	ep2 := provision(t, d, env)
	require.Equal(t, ep, ep2)
	app2, err := kc.AppsV1().Deployments(ns).Get(ctx, "app", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, app.UID, app2.UID)
	require.Equal(t, app.Generation, app2.Generation, "an unchanged spec is not rolled out again")
	rsets, err := kc.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: "tenantflow.io/service=app"})
	require.NoError(t, err)
	require.Len(t, rsets.Items, 1)

	// Another provisioning of the same name is refused, not merged: see
	// the conformance suite (runtimetest, OwnershipRefusal).

	// Compensation leaves nothing behind.
	require.NoError(t, d.RemoveServices(ctx, "acme", owner))
	require.NoError(t, d.RemoveVolumes(ctx, "acme", owner))
	require.NoError(t, d.RemoveNetwork(ctx, "acme", owner))
	waitGone(t, kc, ns)
	for _, list := range []func() (int, error){
		func() (int, error) { l, err := kc.AppsV1().Deployments("").List(ctx, sel); return len(l.Items), err },
		func() (int, error) {
			l, err := kc.CoreV1().PersistentVolumeClaims("").List(ctx, sel)
			return len(l.Items), err
		},
		func() (int, error) { l, err := kc.CoreV1().Secrets("").List(ctx, sel); return len(l.Items), err },
	} {
		n, err := list()
		require.NoError(t, err)
		require.Zero(t, n)
	}
}

// waitGone waits until the namespace controller has deleted ns.
func waitGone(t *testing.T, kc kubernetes.Interface, ns string) {
	t.Helper()
	harness.WaitFor(t, "namespace "+ns+" deleted", 60*time.Second, func() error {
		_, err := kc.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return errPending(ns)
	})
}

type errPending string

func (e errPending) Error() string { return string(e) + " still there" }

func TestRolloutRollbackAndPullFailure(t *testing.T) {
	_, d, kc := setup(t)
	ctx, env, ns := context.Background(), environment("roll"), "tf-roll"
	provision(t, d, env)
	t.Cleanup(func() {
		if err := errors.Join(d.RemoveServices(ctx, "roll", owner), d.RemoveVolumes(ctx, "roll", owner), d.RemoveNetwork(ctx, "roll", owner)); err != nil {
			t.Errorf("clean up tenant roll: %v", err)
		}
	})
	app := env.Services[1]
	check := func(s spec.Service, timeout time.Duration) (runtimes.Endpoint, error) {
		return d.WaitHealthy(ctx, spec.Environment{Tenant: "roll", Runtime: spec.OpenShift, Services: []spec.Service{s},
			HealthTimeout: spec.Duration(timeout)}, func(string) {})
	}
	// During every rollout the old pod keeps serving (maxUnavailable 0).
	watchAvailable := func() (stop func() int32) {
		done := make(chan struct{})
		minAvail := make(chan int32, 1)
		go func() {
			lowest := int32(1)
			for {
				select {
				case <-done:
					minAvail <- lowest
					return
				case <-time.After(50 * time.Millisecond):
				}
				dep, err := kc.AppsV1().Deployments(ns).Get(ctx, "app", metav1.GetOptions{})
				if err == nil {
					lowest = min(lowest, dep.Status.AvailableReplicas)
				}
			}
		}()
		return func() int32 { close(done); return <-minAvail }
	}

	// Release: generation 1, a new image, rolled out to completion.
	v2 := app
	v2.Image, v2.Generation = "registry.test/demo-app:2", 1
	stop := watchAvailable()
	st, err := d.StartService(ctx, "roll", owner, v2)
	require.NoError(t, err)
	require.Equal(t, "registry.test/demo-app:2", st.Image)
	ep, err := check(v2, 30*time.Second)
	require.NoError(t, err)
	require.Equal(t, "https://roll.apps.test", ep.URL)
	require.NoError(t, d.RetireService(ctx, runtimes.RetireInput{Tenant: "roll", Owner: owner, Service: "app", Keep: 1}))
	require.Equal(t, int32(1), stop(), "no moment without an available pod")
	requireRunning(t, kc, ns, "registry.test/demo-app:2", "1")

	// A candidate that never gets ready: the wait fails at its deadline,
	// the old pod serves throughout, and RetireService(keep 1) rolls back.
	bad := app
	bad.Image, bad.Generation = kube.UnreadyImage, 2
	stop = watchAvailable()
	_, err = d.StartService(ctx, "roll", owner, bad)
	require.NoError(t, err)
	_, err = check(bad, 3*time.Second)
	appErr := harness.RequireNonRetryable(t, err, runtimes.ErrServiceUnhealthy)
	require.Contains(t, appErr.Error(), "service app not available")
	require.NoError(t, d.RetireService(ctx, runtimes.RetireInput{Tenant: "roll", Owner: owner, Service: "app", Keep: 1}))
	require.Equal(t, int32(1), stop(), "the old pod served during the failed rollout")
	requireRunning(t, kc, ns, "registry.test/demo-app:2", "1")

	// The same with the release's health timeout given to the cluster: the
	// Deployment's progress deadline ends the rollout, and the rollback
	// completes although the controller still reports that deadline for
	// a while (the old ReplicaSet is reused).
	bad.Generation = 3
	_, err = d.StartServiceWithin(ctx, "roll", owner, bad, 3*time.Second)
	require.NoError(t, err)
	start := time.Now()
	_, err = check(bad, time.Minute)
	appErr = harness.RequireNonRetryable(t, err, openshift.ErrRolloutFailed)
	require.Contains(t, appErr.Error(), "progress deadline")
	require.Less(t, time.Since(start), 30*time.Second, "the cluster's deadline ended the wait")
	require.NoError(t, d.RetireService(ctx, runtimes.RetireInput{Tenant: "roll", Owner: owner, Service: "app", Keep: 1}))
	requireRunning(t, kc, ns, "registry.test/demo-app:2", "1")

	// An image that cannot be pulled fails at once, not at the deadline.
	missing := app
	missing.Image, missing.Generation = kube.PullFailImage, 4
	_, err = d.StartService(ctx, "roll", owner, missing)
	require.NoError(t, err)
	start = time.Now()
	_, err = check(missing, time.Minute)
	appErr = harness.RequireNonRetryable(t, err, runtimes.ErrImageNotFound)
	require.Contains(t, appErr.Error(), "ImagePullBackOff")
	require.Less(t, time.Since(start), 30*time.Second)
	require.NoError(t, d.RetireService(ctx, runtimes.RetireInput{Tenant: "roll", Owner: owner, Service: "app", Keep: 1}))
	requireRunning(t, kc, ns, "registry.test/demo-app:2", "1")

	// A generation whose ReplicaSet is gone cannot be rolled back to.
	err = d.RetireService(ctx, runtimes.RetireInput{Tenant: "roll", Owner: owner, Service: "app", Keep: 7})
	harness.RequireNonRetryable(t, err, openshift.ErrRolloutFailed)

	// An invalid reference is refused before any rollout.
	harness.RequireNonRetryable(t, d.EnsureImage(ctx, "Not A Reference"), runtimes.ErrImageNotFound)
	require.NoError(t, d.EnsureImage(ctx, "registry.test/demo-app@sha256:"+strings.Repeat("a", 64)))
}

// requireRunning checks the Deployment runs one available pod of image
// and generation gen, and no other pod.
func requireRunning(t *testing.T, kc kubernetes.Interface, ns, image, gen string) {
	t.Helper()
	ctx := context.Background()
	dep, err := kc.AppsV1().Deployments(ns).Get(ctx, "app", metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, image, dep.Spec.Template.Spec.Containers[0].Image)
	require.Equal(t, gen, dep.Spec.Template.Labels[openshift.LabelGeneration])
	harness.WaitFor(t, "only generation "+gen+" runs", 30*time.Second, func() error {
		pods, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "tenantflow.io/service=app"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 1 || pods.Items[0].Spec.Containers[0].Image != image || pods.Items[0].DeletionTimestamp != nil {
			return errPending("old pods")
		}
		return nil
	})
}

func TestDecommissionKeepsVolumesRestoreAndPurge(t *testing.T) {
	_, d, kc := setup(t)
	ctx, env, ns := context.Background(), environment("keep"), "tf-keep"
	provision(t, d, env)

	// Decommission: stop (pods gone), keep the volumes, tear down.
	require.NoError(t, d.StopServices(ctx, runtimes.StopInput{Tenant: "keep", Owner: owner, Services: []string{"app"}}))
	pods, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "tenantflow.io/service=app"})
	require.NoError(t, err)
	require.Empty(t, pods.Items)
	require.NoError(t, d.StopServices(ctx, runtimes.StopInput{Tenant: "keep", Owner: owner}))
	kept, err := d.KeepVolumes(ctx, "keep", owner)
	require.NoError(t, err)
	require.Len(t, kept, 2)
	again, err := d.KeepVolumes(ctx, "keep", owner)
	require.NoError(t, err)
	require.Equal(t, kept, again, "keeping is idempotent")
	for _, k := range kept {
		pv, err := kc.CoreV1().PersistentVolumes().Get(ctx, k.PersistentVolume, metav1.GetOptions{})
		require.NoError(t, err)
		require.Equal(t, corev1.PersistentVolumeReclaimRetain, pv.Spec.PersistentVolumeReclaimPolicy)
		require.Equal(t, "Delete", pv.Annotations[openshift.AnnotationReclaimPolicy])
		require.Equal(t, ns+"/"+k.Volume, pv.Annotations[openshift.AnnotationKeptFor])
		require.Equal(t, "keep", pv.Labels[openshift.LabelTenant])
	}
	require.NoError(t, d.CheckKept(ctx, "keep", owner, kept))
	require.NoError(t, d.RemoveServices(ctx, "keep", owner))
	require.NoError(t, d.RemoveNetwork(ctx, "keep", owner))
	nsObj, err := kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	require.NoError(t, err, "the project stays while it holds the data")
	require.Nil(t, nsObj.DeletionTimestamp)
	require.Equal(t, "true", nsObj.Annotations[openshift.AnnotationReleased])
	claims, err := kc.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, claims.Items, 2)
	deps, err := kc.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Empty(t, deps.Items)

	// Verification notices a volume that lost its protection.
	pvName := kept[0].PersistentVolume
	_, err = kc.CoreV1().PersistentVolumes().Patch(ctx, pvName, "application/merge-patch+json",
		[]byte(`{"spec":{"persistentVolumeReclaimPolicy":"Delete"}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	harness.RequireNonRetryable(t, d.CheckKept(ctx, "keep", owner, kept), backup.ErrVerificationFailed)
	_, err = kc.CoreV1().PersistentVolumes().Patch(ctx, pvName, "application/merge-patch+json",
		[]byte(`{"spec":{"persistentVolumeReclaimPolicy":"Retain"}}`), metav1.PatchOptions{})
	require.NoError(t, err)

	// Restore: the same claims (the same data) back in service.
	ep := provision(t, d, env)
	require.Equal(t, "https://keep.apps.test", ep.URL)
	nsObj, err = kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	require.NoError(t, err)
	require.NotContains(t, nsObj.Annotations, openshift.AnnotationReleased)
	require.NoError(t, d.CheckKept(ctx, "keep", owner, kept), "restore used the kept claims")
	require.NoError(t, d.ReleaseVolumes(ctx, "keep", owner))
	pv, err := kc.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, corev1.PersistentVolumeReclaimDelete, pv.Spec.PersistentVolumeReclaimPolicy, "a restored tenant's volumes are ordinary again")
	require.NotContains(t, pv.Annotations, openshift.AnnotationKeptFor)

	// Decommission again, then the end of retention deletes it all.
	require.NoError(t, d.StopServices(ctx, runtimes.StopInput{Tenant: "keep", Owner: owner}))
	kept, err = d.KeepVolumes(ctx, "keep", owner)
	require.NoError(t, err)
	require.NoError(t, d.RemoveServices(ctx, "keep", owner))
	require.NoError(t, d.RemoveNetwork(ctx, "keep", owner))
	require.NoError(t, d.RemoveVolumes(ctx, "keep", owner))
	waitGone(t, kc, ns)
	for _, k := range kept {
		pv, err := kc.CoreV1().PersistentVolumes().Get(ctx, k.PersistentVolume, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue // the storage layer deleted it: the data is gone, as it must be
		}
		require.NoError(t, err)
		require.Equal(t, corev1.PersistentVolumeReclaimDelete, pv.Spec.PersistentVolumeReclaimPolicy, "the storage deletes the data at the end of retention")
	}
	// The name is free again.
	provision(t, d, environment("keep"))
	require.NoError(t, d.RemoveServices(ctx, "keep", owner))
	require.NoError(t, d.RemoveVolumes(ctx, "keep", owner))
	require.NoError(t, d.RemoveNetwork(ctx, "keep", owner))
}

// Teardowns cut short, and what a decommission meets on real clusters:
// pods that ended long ago, claims that never bound.
func TestDecommissionEdgeCases(t *testing.T) {
	c, d, kc := setup(t)
	ctx, env, ns := context.Background(), environment("edge"), "tf-edge"
	provision(t, d, env)

	// An evicted pod of the app lingers until the pod garbage collector
	// takes it: it runs nothing, and stopping does not wait for it.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app-evicted", Labels: map[string]string{
		openshift.LabelTenant: "edge", openshift.LabelService: "app"}},
		Spec: corev1.PodSpec{NodeName: "kwok-node-gone", Containers: []corev1.Container{{Name: "app", Image: "registry.test/demo-app:1"}}}}
	pod, err := kc.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	require.NoError(t, err)
	pod.Status.Phase, pod.Status.Reason = corev1.PodFailed, "Evicted"
	_, err = kc.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, d.StopServices(ctx, runtimes.StopInput{Tenant: "edge", Owner: owner}))
	require.Less(t, time.Since(start), 10*time.Second)

	// A start after a stop that was never undone runs the service again.
	_, err = d.StartService(ctx, "edge", owner, env.Services[1])
	require.NoError(t, err)
	_, err = d.WaitHealthy(ctx, spec.Environment{Tenant: "edge", Services: env.Services[1:]}, func(string) {})
	require.NoError(t, err)

	// A teardown that never ran (services and network left): the end of
	// retention still deletes everything, the project included.
	_, err = d.KeepVolumes(ctx, "edge", owner)
	require.NoError(t, err)
	require.NoError(t, d.RemoveVolumes(ctx, "edge", owner))
	waitGone(t, kc, ns)

	// A claim that never bound (no volume of its class) holds no data:
	// it is kept as such, verified as still unbound, and deleted.
	u := newDriver(t, c, func(cfg *openshift.Config) { cfg.StorageClass = "no-such-class" })
	require.NoError(t, u.CreateNetwork(ctx, "unbound", owner))
	require.NoError(t, u.CreateVolumes(ctx, "unbound", owner, []string{"spare"}))
	kept, err := u.KeepVolumes(ctx, "unbound", owner)
	require.NoError(t, err)
	require.Len(t, kept, 1)
	require.Empty(t, kept[0].PersistentVolume)
	require.NoError(t, u.CheckKept(ctx, "unbound", owner, kept))
	require.NoError(t, u.RemoveVolumes(ctx, "unbound", owner))
	waitGone(t, kc, "tf-unbound")
}
