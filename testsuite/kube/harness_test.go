package kube_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	routev1 "github.com/openshift/api/route/v1"
	routeclient "github.com/openshift/client-go/route/clientset/versioned"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/tenantflow/tenantflow/testsuite/kube"
)

// TestControlPlane checks what the OpenShift driver's tests rely on: a
// Deployment with a claimed volume rolls out, Routes can be stored, the two
// failure images behave as documented, and Stop leaves nothing listening.
func TestControlPlane(t *testing.T) {
	kube.RequireTools(t)
	t0 := time.Now()
	cp, err := kube.Start(kube.Options{Logf: t.Logf})
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(cp.Stop)
	t.Logf("control plane started in %s (dir %s)", time.Since(t0).Round(time.Millisecond), cp.Dir)
	fatalf := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("%s\n%s", fmt.Sprintf(format, args...), cp.Logs())
	}
	// waitFor polls cond and logs how long after since it succeeded.
	waitFor := func(what string, since time.Time, timeout time.Duration, cond func(ctx context.Context) error) {
		t.Helper()
		start := time.Now()
		var err error
		for time.Since(start) < timeout {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err = cond(ctx)
			cancel()
			if err == nil {
				t.Logf("%s %s after creation", what, time.Since(since).Round(time.Millisecond))
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		fatalf("%s: not within %s: %v", what, timeout, err)
	}
	ctx := context.Background()
	kc, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}

	const ns = "tf-test"
	if _, err := kc.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		fatalf("create namespace: %v", err)
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: ptr.To(kube.StorageClass),
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			},
		},
	}
	created := time.Now()
	if _, err := kc.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		fatalf("create PVC: %v", err)
	}
	app := deployment("app", "x:1")
	app.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}}
	app.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	if _, err := kc.AppsV1().Deployments(ns).Create(ctx, app, metav1.CreateOptions{}); err != nil {
		fatalf("create Deployment: %v", err)
	}
	waitFor("PVC bound", created, 30*time.Second, func(ctx context.Context) error {
		c, err := kc.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "data", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.Status.Phase != corev1.ClaimBound || !strings.HasPrefix(c.Spec.VolumeName, "tf-test-pv-") {
			return fmt.Errorf("PVC phase %q, volume %q", c.Status.Phase, c.Spec.VolumeName)
		}
		return nil
	})
	waitFor("Deployment available", created, 60*time.Second, func(ctx context.Context) error {
		d, err := kc.AppsV1().Deployments(ns).Get(ctx, "app", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if !available(d) || d.Status.AvailableReplicas != 1 {
			return fmt.Errorf("status %+v", d.Status)
		}
		return nil
	})

	rc, err := routeclient.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	route := &routev1.Route{
		ObjectMeta: metav1.ObjectMeta{Name: "app"},
		Spec: routev1.RouteSpec{
			Host: "app.tf-test.example.test",
			To:   routev1.RouteTargetReference{Kind: "Service", Name: "app"},
			TLS:  &routev1.TLSConfig{Termination: routev1.TLSTerminationEdge},
		},
	}
	created = time.Now()
	if _, err := rc.RouteV1().Routes(ns).Create(ctx, route, metav1.CreateOptions{}); err != nil {
		fatalf("create Route: %v", err)
	}
	got, err := rc.RouteV1().Routes(ns).Get(ctx, "app", metav1.GetOptions{})
	if err != nil {
		fatalf("get Route: %v", err)
	}
	if got.Spec.Host != route.Spec.Host || got.Spec.To.Name != "app" {
		t.Errorf("Route read back as %+v", got.Spec)
	}
	t.Logf("Route created and read back in %s", time.Since(created).Round(time.Millisecond))

	created = time.Now()
	if _, err := kc.AppsV1().Deployments(ns).Create(ctx, deployment("unready", kube.UnreadyImage), metav1.CreateOptions{}); err != nil {
		fatalf("create unready Deployment: %v", err)
	}
	waitFor("unready pod scheduled", created, 30*time.Second, func(ctx context.Context) error {
		pods, err := kc.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=unready"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 1 || pods.Items[0].Spec.NodeName == "" {
			return fmt.Errorf("%d pods, none scheduled", len(pods.Items))
		}
		return nil
	})
	// The app pod became ready well within this once scheduled.
	time.Sleep(3 * time.Second)
	d, err := kc.AppsV1().Deployments(ns).Get(ctx, "unready", metav1.GetOptions{})
	if err != nil {
		fatalf("get unready Deployment: %v", err)
	}
	if d.Status.AvailableReplicas != 0 || d.Status.ReadyReplicas != 0 || available(d) {
		fatalf("Deployment of %s became available: %+v", kube.UnreadyImage, d.Status)
	}

	pullFail := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pull-fail"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: kube.PullFailImage}}},
	}
	created = time.Now()
	if _, err := kc.CoreV1().Pods(ns).Create(ctx, pullFail, metav1.CreateOptions{}); err != nil {
		fatalf("create pull-fail pod: %v", err)
	}
	waitFor("ImagePullBackOff reported", created, 30*time.Second, func(ctx context.Context) error {
		p, err := kc.CoreV1().Pods(ns).Get(ctx, "pull-fail", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return fmt.Errorf("status %+v", p.Status)
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		if w.Reason != "ImagePullBackOff" || !strings.Contains(w.Message, kube.PullFailImage) {
			return fmt.Errorf("waiting %+v", w)
		}
		if p.Status.Phase != corev1.PodPending || p.Status.ContainerStatuses[0].Ready {
			return fmt.Errorf("phase %s, ready %v", p.Status.Phase, p.Status.ContainerStatuses[0].Ready)
		}
		return nil
	})

	// Reclaim policy Delete: a released PV goes away rather than lingering
	// as Failed. (This claim is unused, so nothing holds it.)
	scratch := pvc.DeepCopy()
	scratch.Name = "scratch"
	created = time.Now()
	if _, err := kc.CoreV1().PersistentVolumeClaims(ns).Create(ctx, scratch, metav1.CreateOptions{}); err != nil {
		fatalf("create scratch PVC: %v", err)
	}
	var pvName string
	waitFor("scratch PVC bound", created, 30*time.Second, func(ctx context.Context) error {
		c, err := kc.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "scratch", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if c.Status.Phase != corev1.ClaimBound {
			return fmt.Errorf("PVC phase %q", c.Status.Phase)
		}
		pvName = c.Spec.VolumeName
		return nil
	})
	created = time.Now()
	if err := kc.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, "scratch", metav1.DeleteOptions{}); err != nil {
		fatalf("delete scratch PVC: %v", err)
	}
	waitFor("released PV "+pvName+" deleted", created, 30*time.Second, func(ctx context.Context) error {
		pv, err := kc.CoreV1().PersistentVolumes().Get(ctx, pvName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("PV phase %s: %s", pv.Status.Phase, pv.Status.Message)
	})

	u, err := url.Parse(cp.Server)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now()
	cp.Stop()
	t.Logf("control plane stopped in %s", time.Since(ts).Round(time.Millisecond))
	if c, err := net.DialTimeout("tcp", u.Host, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after Stop", u.Host)
	}
	if _, err := os.Stat(cp.Dir); !os.IsNotExist(err) {
		t.Errorf("%s not removed by Stop: %v", cp.Dir, err)
	}
}

func deployment(name, image string) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}},
			},
		},
	}
}

func available(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}
