package openshift

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/tenantflow/tenantflow/activities/runtimes"
)

// maxLogLine bounds one line, as the Docker driver's reader does.
const maxLogLine = 64 << 10

// The Driver reads its tenants' logs too.
var _ runtimes.LogReader = (*Driver)(nil)

// Logs reads the logs of the tenant's pods (of the service asked, or
// all) through the API server's pods/log, each line with its service and
// generation. Only pods of the Deployments the provisioning in.Owner made
// are read. Kubernetes merges a container's stdout and stderr into one
// stream, so Stream is left empty. Without Follow the lines come in time
// order and Tail counts the tenant's lines, not each pod's; with it, the
// backlog of each pod, then each line as it is written, until every
// pod's stream ends (its container stops) or ctx does. The pods are those
// of the request's moment: a rollout's new pod shows in the next request.
func (d *Driver) Logs(ctx context.Context, in runtimes.LogsInput, emit func(runtimes.LogLine) error) error {
	pods, err := d.logPods(ctx, in)
	if err != nil {
		return err
	}
	sources := make([]runtimes.LogSource, len(pods))
	for i, p := range pods {
		sources[i] = func(ctx context.Context, out func(runtimes.LogLine) error) error {
			return d.podLogs(ctx, p, in, func(l runtimes.LogLine) error {
				if !in.Since.IsZero() && l.Time.Before(in.Since) {
					return nil // SinceTime goes to the server in whole seconds
				}
				return out(l)
			})
		}
	}
	return runtimes.MergeLogs(ctx, in, sources, emit)
}

// logPods are the tenant's pods whose logs are read: labelled with the
// tenant and a service whose Deployment in.Owner made, with a container
// that has started (a pod still pulling its image has no log yet).
func (d *Driver) logPods(ctx context.Context, in runtimes.LogsInput) ([]corev1.Pod, error) {
	deps, err := d.deployments(ctx, in.Tenant, in.Owner)
	if err != nil {
		return nil, err
	}
	owned := map[types.UID]bool{}
	for _, dep := range deps {
		if svc := dep.Labels[LabelService]; svc != "" && (in.Service == "" || svc == in.Service) {
			owned[dep.UID] = true
		}
	}
	if len(owned) == 0 {
		return nil, nil
	}
	sel := labels.Set{LabelTenant: in.Tenant, LabelManaged: managedBy}
	if in.Service != "" {
		sel[LabelService] = in.Service
	}
	ns := d.Namespace(in.Tenant)
	// Pods carry no owner label: a pod is the owner's when its ReplicaSet
	// is one of the owner's Deployments' (a leftover of another run of
	// the name never shows).
	sets, err := d.kube.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list replica sets of %s: %w", ns, err)
	}
	ownedSets := map[string]bool{}
	for _, rs := range sets.Items {
		if c := metav1.GetControllerOf(&rs); c != nil && owned[c.UID] {
			ownedSets[rs.Name] = true
		}
	}
	list, err := d.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("list pods of %s: %w", ns, err)
	}
	var pods []corev1.Pod
	for _, p := range list.Items {
		c := metav1.GetControllerOf(&p)
		if c != nil && c.Kind == "ReplicaSet" && ownedSets[c.Name] && started(p, p.Labels[LabelService]) {
			pods = append(pods, p)
		}
	}
	return pods, nil
}

// started reports whether the pod's container of the service has run.
func started(p corev1.Pod, container string) bool {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == container {
			return cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil
		}
	}
	return false
}

// podLogs streams one pod's log into out, a line at a time; a pod gone
// meanwhile, or whose container cannot be read now, has nothing to say.
func (d *Driver) podLogs(ctx context.Context, p corev1.Pod, in runtimes.LogsInput, out func(runtimes.LogLine) error) error {
	svc := p.Labels[LabelService]
	gen, _ := strconv.Atoi(p.Labels[LabelGeneration])
	opts := &corev1.PodLogOptions{Container: svc, Timestamps: true, Follow: in.Follow}
	if in.Tail > 0 {
		opts.TailLines = new(int64(in.Tail))
	}
	if !in.Since.IsZero() {
		opts.SinceTime = &metav1.Time{Time: in.Since}
	}
	rc, err := d.kube.CoreV1().Pods(p.Namespace).GetLogs(p.Name, opts).Stream(ctx)
	if apierrors.IsNotFound(err) || apierrors.IsBadRequest(err) {
		// Gone, or its container between two lives (the kubelet's 400):
		// the tenant's other pods still answer.
		d.log.InfoContext(ctx, "logs: pod has none to read", "pod", p.Namespace+"/"+p.Name, "error", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("logs of pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	sc.Buffer(make([]byte, 4096), maxLogLine)
	for sc.Scan() {
		if err := out(parseLine(sc.Text(), svc, gen)); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("logs of pod %s/%s: %w", p.Namespace, p.Name, err)
	}
	return nil
}

// parseLine splits "<RFC 3339 time> <text>", as the kubelet timestamps
// each line; a line without a time keeps its whole text.
func parseLine(s, svc string, gen int) runtimes.LogLine {
	ts, text, _ := strings.Cut(s, " ")
	at, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		text = s
	}
	return runtimes.LogLine{Time: at, Service: svc, Generation: gen, Line: text}
}
