package openshift

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	routev1 "github.com/openshift/api/route/v1"
	"go.temporal.io/sdk/temporal"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
)

// RouteName is the Route of the tenant's public port.
const RouteName = "public"

// preStopDelay is how long the public service's pod keeps serving after it
// is told to stop, while the router takes it out of rotation.
const preStopDelay = 5

// EnvSecretName is the Secret holding a service's environment: rendered
// env values carry the tenant's generated credentials, which belong in a
// Secret, not in the Deployment.
func EnvSecretName(svc string) string { return svc + "-env" }

func invalidSpec(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), runtimes.ErrInvalidServiceSpec, nil)
}

// StartService makes the service's Secret, Service, Deployment and (for
// the public port) Route, or brings them to the rendered spec. A service
// generation above the Deployment's is a release: its pod template is
// replaced and the Deployment rolls out (maxSurge 1, maxUnavailable 0), so
// the old pod serves until the new one is ready; WaitHealthy follows it.
func (d *Driver) StartService(ctx context.Context, tenant, owner string, svc spec.Service) (runtimes.ServiceStatus, error) {
	return d.StartServiceWithin(ctx, tenant, owner, svc, 0)
}

// The Deployment's progress deadline must not end a rollout sooner than
// the release waits for it.
var _ runtimes.ReadyDeadliner = (*Driver)(nil)

// StartServiceWithin is StartService for a rollout that may take ready
// (zero: what the service's health check needs): the Deployment's
// progress deadline is the same budget WaitHealthy waits.
func (d *Driver) StartServiceWithin(ctx context.Context, tenant, owner string, svc spec.Service, ready time.Duration) (runtimes.ServiceStatus, error) {
	if svc.Generation < 0 {
		return runtimes.ServiceStatus{}, invalidSpec("service %s: generation %d is negative", svc.Name, svc.Generation)
	}
	ns := d.Namespace(tenant)
	if len(svc.Env) > 0 {
		if err := d.ensureEnvSecret(ctx, tenant, owner, svc); err != nil {
			return runtimes.ServiceStatus{}, err
		}
	}
	want := d.deployment(tenant, owner, svc, ready)
	deps := d.kube.AppsV1().Deployments(ns)
	cur, existed, err := createOrAdopt(ctx, deps, want, "deployment", ns, tenant, owner)
	switch {
	case apierrors.IsInvalid(err):
		return runtimes.ServiceStatus{}, invalidSpec("%v", err)
	case err != nil:
		return runtimes.ServiceStatus{}, err
	case existed:
		if cur.Spec.Template.Annotations[AnnotationSpec] != want.Spec.Template.Annotations[AnnotationSpec] {
			cur.Spec.Template = want.Spec.Template
			cur.Spec.Strategy, cur.Spec.ProgressDeadlineSeconds = want.Spec.Strategy, want.Spec.ProgressDeadlineSeconds
			if cur, err = deps.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
				return runtimes.ServiceStatus{}, fmt.Errorf("roll out %s/%s generation %d: %w", ns, svc.Name, svc.Generation, err)
			}
			d.log.InfoContext(ctx, "rollout started", "tenant", tenant, "service", svc.Name, "generation", svc.Generation, "image", svc.Image)
		}
		if ptr.Deref(cur.Spec.Replicas, 1) == 0 {
			// Stopped and never started again (a teardown cut short):
			// starting the service means running it.
			if err := d.scaleUp(ctx, cur); err != nil {
				return runtimes.ServiceStatus{}, err
			}
		}
	}
	if len(svc.Ports) > 0 {
		if err := d.ensureService(ctx, tenant, owner, svc); err != nil {
			return runtimes.ServiceStatus{}, err
		}
	}
	for _, p := range svc.Ports {
		if p.Public {
			if err := d.ensureRoute(ctx, tenant, owner, svc, p); err != nil {
				return runtimes.ServiceStatus{}, err
			}
		}
	}
	d.log.InfoContext(ctx, "service started", "tenant", tenant, "service", svc.Name, "generation", svc.Generation, "deployment", ns+"/"+svc.Name)
	return runtimes.ServiceStatus{Service: svc.Name, ID: string(cur.UID), Image: svc.Image}, nil
}

func (d *Driver) ensureEnvSecret(ctx context.Context, tenant, owner string, svc spec.Service) error {
	ns, name := d.Namespace(tenant), EnvSecretName(svc.Name)
	l := ownedLabels(tenant, owner)
	l[LabelService] = svc.Name
	want := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}, Type: corev1.SecretTypeOpaque, StringData: svc.Env}
	secrets := d.kube.CoreV1().Secrets(ns)
	cur, existed, err := createOrAdopt(ctx, secrets, want, "secret", ns, tenant, owner)
	if err != nil || !existed {
		return err
	}
	same := len(cur.Data) == len(svc.Env)
	for k, v := range svc.Env {
		same = same && string(cur.Data[k]) == v
	}
	if !same {
		cur.Data, cur.StringData = nil, svc.Env
		if _, err := secrets.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return fmt.Errorf("update secret %s/%s: %w", ns, name, err)
		}
	}
	return nil
}

// deployment renders the service's Deployment.
func (d *Driver) deployment(tenant, owner string, svc spec.Service, ready time.Duration) *appsv1.Deployment {
	l := ownedLabels(tenant, owner)
	l[LabelService] = svc.Name
	sel := map[string]string{LabelTenant: tenant, LabelService: svc.Name}
	podLabels := maps.Clone(sel)
	podLabels[LabelManaged] = managedBy
	podLabels[LabelGeneration] = strconv.Itoa(svc.Generation)

	c := corev1.Container{
		Name:  svc.Name,
		Image: svc.Image,
		// Docker's Cmd, which the template's command is, replaces the
		// image's CMD and keeps its ENTRYPOINT: Kubernetes calls that args.
		Args: svc.Command,
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	if len(svc.Env) > 0 {
		c.EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: EnvSecretName(svc.Name)}}}}
	}
	for _, p := range svc.Ports {
		c.Ports = append(c.Ports, corev1.ContainerPort{Name: portName(p), ContainerPort: int32(p.Container), Protocol: corev1.ProtocolTCP})
	}
	if h := svc.HealthCheck; h != nil {
		probe := &corev1.Probe{
			// Readiness gates a rollout: it keeps the start pace.
			PeriodSeconds:    seconds(h.ProbeInterval(), time.Second),
			TimeoutSeconds:   seconds(h.Timeout.D(), 2*time.Second),
			FailureThreshold: int32(max(h.Retries, 3)),
		}
		switch {
		case h.HTTP != nil:
			probe.HTTPGet = &corev1.HTTPGetAction{Path: h.HTTP.Path, Port: intstr.FromInt32(int32(h.HTTP.Port))}
		case len(h.Command) > 0:
			probe.Exec = &corev1.ExecAction{Command: h.Command}
		}
		c.ReadinessProbe = probe
		if h.StartPeriod > 0 {
			// Liveness would restart a slow starter; readiness only gates
			// traffic, so the start period becomes the startup probe's
			// patience.
			sp := *probe
			sp.FailureThreshold = max(sp.FailureThreshold, int32(h.StartPeriod.D()/time.Duration(sp.PeriodSeconds)/time.Second)+1)
			c.StartupProbe = &sp
		}
	}
	grace := int64(10)
	if _, _, public := (&spec.Environment{Services: []spec.Service{svc}}).PublicPort(); public {
		// The router and the Service's endpoints learn of a terminating
		// pod a moment after it gets SIGTERM: it keeps serving meanwhile,
		// so no request of a rollout lands on a closed socket.
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Sleep: &corev1.SleepAction{Seconds: preStopDelay}}}
		grace += preStopDelay
	}
	limits := corev1.ResourceList{}
	if m := svc.Resources.MemoryBytes(); m > 0 {
		limits[corev1.ResourceMemory] = *resource.NewQuantity(m, resource.BinarySI)
	}
	if svc.Resources.CPUs > 0 {
		limits[corev1.ResourceCPU] = *resource.NewMilliQuantity(int64(svc.Resources.CPUs*1000), resource.DecimalSI)
	}
	if len(limits) > 0 {
		c.Resources.Limits = limits
	}
	var vols []corev1.Volume
	for _, m := range svc.Mounts {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: m.Volume, MountPath: m.Path})
		if !slices.ContainsFunc(vols, func(v corev1.Volume) bool { return v.Name == m.Volume }) {
			vols = append(vols, corev1.Volume{Name: m.Volume, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: m.Volume}}})
		}
	}
	deadline := int32(d.rolloutBudget(spec.Environment{Services: []spec.Service{svc}, HealthTimeout: spec.Duration(ready)}) / time.Second)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Labels: l},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: sel},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
				MaxUnavailable: ptr.To(intstr.FromInt32(0)), MaxSurge: ptr.To(intstr.FromInt32(1)),
			}},
			ProgressDeadlineSeconds: &deadline,
			RevisionHistoryLimit:    ptr.To[int32](5),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: map[string]string{AnnotationSpec: spec.SpecHash(tenant, svc)}},
				Spec: corev1.PodSpec{
					Containers:                    []corev1.Container{c},
					Volumes:                       vols,
					EnableServiceLinks:            ptr.To(false),
					TerminationGracePeriodSeconds: &grace,
				},
			},
		},
	}
}

func seconds(v, def time.Duration) int32 {
	if v <= 0 {
		v = def
	}
	return int32(max(1, (v+time.Second-1)/time.Second))
}

func portName(p spec.Port) string {
	if p.Name != "" && len(p.Name) <= 15 {
		return strings.ToLower(p.Name)
	}
	return "p" + strconv.Itoa(p.Container)
}

func (d *Driver) ensureService(ctx context.Context, tenant, owner string, svc spec.Service) error {
	ns := d.Namespace(tenant)
	l := ownedLabels(tenant, owner)
	l[LabelService] = svc.Name
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Labels: l},
		// Other services reach it by its name, as on a Docker network.
		Spec: corev1.ServiceSpec{Selector: map[string]string{LabelTenant: tenant, LabelService: svc.Name}},
	}
	for _, p := range svc.Ports {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Name: portName(p), Port: int32(p.Container), TargetPort: intstr.FromInt32(int32(p.Container))})
	}
	_, _, err := createOrAdopt(ctx, d.kube.CoreV1().Services(ns), s, "service", ns, tenant, owner)
	return err
}

// RouteHost is the host the tenant's Route asks for ("" lets OpenShift
// generate one).
func (d *Driver) RouteHost(tenant string) string {
	if d.cfg.RouteDomain == "" {
		return ""
	}
	return tenant + "." + strings.ToLower(strings.TrimSuffix(d.cfg.RouteDomain, "."))
}

// ensureRoute exposes the public port at the tenant's host, TLS terminated
// at the router (edge) and plain HTTP redirected to HTTPS.
func (d *Driver) ensureRoute(ctx context.Context, tenant, owner string, svc spec.Service, p spec.Port) error {
	ns := d.Namespace(tenant)
	r := &routev1.Route{
		ObjectMeta: metav1.ObjectMeta{Name: RouteName, Labels: ownedLabels(tenant, owner)},
		Spec: routev1.RouteSpec{
			Host: d.RouteHost(tenant),
			To:   routev1.RouteTargetReference{Kind: "Service", Name: svc.Name, Weight: ptr.To[int32](100)},
			Port: &routev1.RoutePort{TargetPort: intstr.FromString(portName(p))},
			TLS:  &routev1.TLSConfig{Termination: routev1.TLSTerminationEdge, InsecureEdgeTerminationPolicy: routev1.InsecureEdgeTerminationPolicyRedirect},
		},
	}
	_, _, err := createOrAdopt(ctx, d.routes.RouteV1().Routes(ns), r, "route", ns, tenant, owner)
	if apierrors.IsInvalid(err) {
		return invalidSpec("%v", err)
	}
	return err
}

// endpoint is the tenant's URL: its Route's host over HTTPS.
func (d *Driver) endpoint(ctx context.Context, tenant string) (runtimes.Endpoint, error) {
	ns := d.Namespace(tenant)
	r, err := d.routes.RouteV1().Routes(ns).Get(ctx, RouteName, metav1.GetOptions{})
	if err != nil {
		return runtimes.Endpoint{}, fmt.Errorf("get route %s/%s: %w", ns, RouteName, err)
	}
	if r.Spec.Host == "" {
		// OpenShift fills the host in on creation; a plain cluster with
		// the Route CRD does not.
		return runtimes.Endpoint{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("route %s/%s has no host: set %s", ns, RouteName, EnvRouteDomain), runtimes.ErrInvalidServiceSpec, nil)
	}
	return runtimes.Endpoint{URL: "https://" + r.Spec.Host}, nil
}

// rolloutBudget is how long the services may take to be available: the
// environment's health timeout when set, else what their health checks
// need to give up, but no less than the configured rollout timeout (a
// cluster schedules and pulls before any check runs).
func (d *Driver) rolloutBudget(env spec.Environment) time.Duration {
	if env.HealthTimeout > 0 {
		return env.HealthTimeout.D()
	}
	b := d.cfg.RolloutTimeout
	for _, s := range env.Services {
		if s.HealthCheck != nil {
			b = max(b, spec.HealthBudget(s.HealthCheck))
		}
	}
	return b
}

// Container states that no wait will fix: the image cannot be had.
// ErrImagePull is left out: it is one failed attempt (a registry blip, a
// rate limit); the kubelet's back-off after repeated ones is not.
var pullFailures = []string{"ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}

// WaitHealthy follows every service's Deployment until its generation has
// rolled out completely (all replicas updated, available and no old ones
// left: readiness probes passed) and returns the tenant's endpoint. A pod
// whose image cannot be pulled, a rollout the cluster marks as past its
// progress deadline, or one that stays unavailable past the budget is a
// permanent failure; the caller rolls back.
func (d *Driver) WaitHealthy(ctx context.Context, env spec.Environment, progress func(string)) (runtimes.Endpoint, error) {
	if _, _, ok := env.PublicPort(); !ok {
		return runtimes.Endpoint{}, invalidSpec("environment has no public port")
	}
	ns := d.Namespace(env.Tenant)
	start := time.Now()
	budget := d.rolloutBudget(env)
	pending := map[string]spec.Service{}
	for _, s := range env.Services {
		pending[s.Name] = s
	}
	// A watch wakes the wait the moment a Deployment's status changes; the
	// ticker is the fallback (a watch the server ends) and the cadence of
	// the pod checks for pull failures, which change no Deployment.
	var events <-chan watch.Event
	if w, err := d.kube.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{LabelSelector: Selector(env.Tenant, "")}); err == nil {
		defer w.Stop()
		events = w.ResultChan()
	}
	var stuck, why string // the first service not rolled out, and why
	done, err := d.waitUntil(ctx, start.Add(budget), events, func() (bool, error) {
		stuck = ""
		for _, name := range slices.Sorted(maps.Keys(pending)) {
			dep, err := d.kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, fmt.Errorf("get deployment %s/%s: %w", ns, name, err)
			}
			done, reason, err := d.rolledOut(ctx, dep, pending[name], true)
			if err != nil {
				return false, err
			}
			if done {
				delete(pending, name)
				continue
			}
			if stuck == "" {
				stuck, why = name, reason
			}
			progress(fmt.Sprintf("waiting for %s: %s", name, reason))
		}
		return len(pending) == 0, nil
	})
	if err != nil {
		return runtimes.Endpoint{}, err
	}
	if !done {
		msg := fmt.Sprintf("service %s not available after %s: %s", stuck, time.Since(start).Round(time.Second), why)
		return runtimes.Endpoint{}, temporal.NewNonRetryableApplicationError(msg, runtimes.ErrServiceUnhealthy, nil)
	}
	return d.endpoint(ctx, env.Tenant)
}

// waitUntil calls check at once, then at every poll interval or event on
// wake (nil: poll only), until it is done, fails or ctx ends; past
// deadline it stops and reports not done.
func (d *Driver) waitUntil(ctx context.Context, deadline time.Time, wake <-chan watch.Event, check func() (bool, error)) (bool, error) {
	ticker := time.NewTicker(d.cfg.PollInterval)
	defer ticker.Stop()
	for {
		if done, err := check(); done || err != nil {
			return done, err
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-ticker.C:
		case _, ok := <-wake:
			if !ok {
				wake = nil // the server ended the watch: poll
			}
		}
	}
}

// rolledOut tells whether the Deployment runs svc's generation on every
// replica, available, with nothing older left (kubectl rollout status).
//
// A rollout past its progress deadline fails it when deadline is set. A
// rollback does not set it: the controller reuses the old ReplicaSet and
// keeps reporting the candidate's ProgressDeadlineExceeded until the
// candidate's pod is gone, although the rollback is progressing.
func (d *Driver) rolledOut(ctx context.Context, dep *appsv1.Deployment, svc spec.Service, deadline bool) (bool, string, error) {
	if g := dep.Spec.Template.Labels[LabelGeneration]; g != strconv.Itoa(svc.Generation) {
		return false, "", fmt.Errorf("deployment %s/%s runs generation %s, not %d", dep.Namespace, dep.Name, g, svc.Generation)
	}
	want := ptr.Deref(dep.Spec.Replicas, 1)
	st := dep.Status
	for _, c := range st.Conditions {
		if deadline && c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" && st.ObservedGeneration == dep.Generation {
			msg := fmt.Sprintf("service %s: rollout exceeded its progress deadline: %s", svc.Name, c.Message)
			return false, "", temporal.NewNonRetryableApplicationError(msg, ErrRolloutFailed, nil)
		}
	}
	var why string
	switch {
	case want == 0:
		why = "scaled to zero"
	case st.ObservedGeneration < dep.Generation:
		why = "rollout not yet observed"
	case st.UpdatedReplicas < want:
		why = fmt.Sprintf("%d of %d replicas updated", st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		why = fmt.Sprintf("%d old replicas pending termination", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < st.UpdatedReplicas:
		why = fmt.Sprintf("%d of %d updated replicas available", st.AvailableReplicas, st.UpdatedReplicas)
	default:
		return true, "", nil
	}
	if err := d.pullFailure(ctx, dep, svc); err != nil {
		return false, "", err
	}
	return false, why, nil
}

// pullFailure looks at the new generation's pods for an image that cannot
// be pulled, which no wait fixes.
func (d *Driver) pullFailure(ctx context.Context, dep *appsv1.Deployment, svc spec.Service) error {
	sel := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: map[string]string{
		LabelTenant: dep.Labels[LabelTenant], LabelService: svc.Name, LabelGeneration: strconv.Itoa(svc.Generation)}})
	pods, err := d.kube.CoreV1().Pods(dep.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return fmt.Errorf("list pods of %s/%s: %w", dep.Namespace, dep.Name, err)
	}
	for _, p := range pods.Items {
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && slices.Contains(pullFailures, w.Reason) {
				msg := fmt.Sprintf("service %s: image %s cannot be pulled (%s): %s", svc.Name, cs.Image, w.Reason, w.Message)
				return temporal.NewNonRetryableApplicationError(msg, runtimes.ErrImageNotFound, nil)
			}
		}
	}
	return nil
}

// deployments lists the tenant's Deployments (of one owner unless "").
func (d *Driver) deployments(ctx context.Context, tenant, owner string) ([]appsv1.Deployment, error) {
	ns := d.Namespace(tenant)
	list, err := d.kube.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: Selector(tenant, owner)})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list deployments of %s: %w", ns, err)
	}
	return list.Items, nil
}

// StopServices scales the named services (all when none is named) to zero
// and waits until their pods are gone: each pod gets SIGTERM and the
// pod's termination grace. The replica count is kept in an annotation for
// StartServices.
func (d *Driver) StopServices(ctx context.Context, in runtimes.StopInput) error {
	deps, err := d.deployments(ctx, in.Tenant, in.Owner)
	if err != nil {
		return err
	}
	ns := d.Namespace(in.Tenant)
	var stopped []string
	for _, dep := range deps {
		if len(in.Services) > 0 && !slices.Contains(in.Services, dep.Labels[LabelService]) {
			continue
		}
		stopped = append(stopped, dep.Name)
		if ptr.Deref(dep.Spec.Replicas, 1) == 0 {
			continue
		}
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}},"spec":{"replicas":0}}`, AnnotationReplicas, strconv.Itoa(int(ptr.Deref(dep.Spec.Replicas, 1))))
		if _, err := d.kube.AppsV1().Deployments(ns).Patch(ctx, dep.Name, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("scale %s/%s to zero: %w", ns, dep.Name, err)
		}
	}
	grace := in.StopTimeout.D()
	if grace <= 0 {
		grace = 10 * time.Second
	}
	var left []string
	done, err := d.waitUntil(ctx, time.Now().Add(grace+30*time.Second), nil, func() (bool, error) {
		left = nil
		for _, name := range stopped {
			sel := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: map[string]string{LabelTenant: in.Tenant, LabelService: name}})
			pods, err := d.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
			if err != nil {
				return false, fmt.Errorf("list pods of %s/%s: %w", ns, name, err)
			}
			// Pods that ended (evicted, node shut down) stay until the
			// pod garbage collector takes them, but run nothing.
			running := 0
			for _, p := range pods.Items {
				if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
					running++
				}
			}
			if running > 0 {
				left = append(left, fmt.Sprintf("%s (%d pods)", name, running))
			}
		}
		return len(left) == 0, nil
	})
	if err != nil {
		return err
	}
	if !done {
		// Retryable: the scale-down stands, a retry waits again.
		return fmt.Errorf("services of %s still running after %s: %s", in.Tenant, grace+30*time.Second, strings.Join(left, ", "))
	}
	d.log.InfoContext(ctx, "services stopped", "tenant", in.Tenant, "services", strings.Join(stopped, ","))
	return nil
}

// StartServices scales every stopped Deployment of the tenant (of the
// named services, when some are named) back to the replica count it had
// (the undo of StopServices); WaitHealthy follows.
func (d *Driver) StartServices(ctx context.Context, tenant, owner string, services ...string) error {
	deps, err := d.deployments(ctx, tenant, owner)
	if err != nil {
		return err
	}
	var errs []error
	for i := range deps {
		if ptr.Deref(deps[i].Spec.Replicas, 1) > 0 || len(services) > 0 && !slices.Contains(services, deps[i].Labels[LabelService]) {
			continue
		}
		errs = append(errs, d.scaleUp(ctx, &deps[i]))
	}
	return errors.Join(errs...)
}

// scaleUp gives a stopped Deployment back the replica count it had.
func (d *Driver) scaleUp(ctx context.Context, dep *appsv1.Deployment) error {
	n, err := strconv.Atoi(dep.Annotations[AnnotationReplicas])
	if err != nil || n < 1 {
		n = 1
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}},"spec":{"replicas":%d}}`, AnnotationReplicas, n)
	if _, err := d.kube.AppsV1().Deployments(dep.Namespace).Patch(ctx, dep.Name, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("scale %s/%s to %d: %w", dep.Namespace, dep.Name, n, err)
	}
	return nil
}

// RemoveServices deletes the tenant's Route, Deployments (their pods go
// with them), Services and Secrets; volumes and the project stay.
func (d *Driver) RemoveServices(ctx context.Context, tenant, owner string) error {
	ns := d.Namespace(tenant)
	opts := metav1.ListOptions{LabelSelector: Selector(tenant, owner)}
	bg := metav1.DeletePropagationBackground
	del := metav1.DeleteOptions{PropagationPolicy: &bg}
	var errs []error
	gone := func(what string, err error) {
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete %s of %s: %w", what, ns, err))
		}
	}
	gone("routes", d.routes.RouteV1().Routes(ns).DeleteCollection(ctx, del, opts))
	gone("deployments", d.kube.AppsV1().Deployments(ns).DeleteCollection(ctx, del, opts))
	// Services have no DeleteCollection.
	svcs, err := d.kube.CoreV1().Services(ns).List(ctx, opts)
	gone("services", err)
	if err == nil {
		for _, s := range svcs.Items {
			gone("service "+s.Name, d.kube.CoreV1().Services(ns).Delete(ctx, s.Name, del))
		}
	}
	gone("secrets", d.kube.CoreV1().Secrets(ns).DeleteCollection(ctx, del, opts))
	if len(errs) == 0 {
		d.log.InfoContext(ctx, "services removed", "tenant", tenant, "namespace", ns)
	}
	return errors.Join(errs...)
}
