package openshift

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/distribution/reference"
	"go.temporal.io/sdk/temporal"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
)

// EnsureImage checks the reference only: the cluster's nodes pull images
// themselves (with the project's pull secrets), and an image they cannot
// pull shows up in WaitHealthy, which fails the rollout as ImageNotFound.
func (d *Driver) EnsureImage(_ context.Context, image string) error {
	if _, err := reference.ParseNormalizedNamed(image); err != nil {
		msg := fmt.Sprintf("image reference %q: %v", image, err)
		return temporal.NewNonRetryableApplicationError(msg, runtimes.ErrImageNotFound, nil)
	}
	return nil
}

// RetireService ends a release's rollout on generation Keep. When the
// Deployment already runs Keep (the release went through) it waits for the
// old pods to finish; when it runs another generation (the candidate
// failed) it rolls back: the pod template of Keep's ReplicaSet goes back
// into the Deployment, as `oc rollout undo` does, and the wait is for that
// rollout. Either way, with maxUnavailable 0, a ready pod served
// throughout.
func (d *Driver) RetireService(ctx context.Context, in runtimes.RetireInput) error {
	ns := d.Namespace(in.Tenant)
	deps := d.kube.AppsV1().Deployments(ns)
	dep, err := deps.Get(ctx, in.Service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get deployment %s/%s: %w", ns, in.Service, err)
	}
	if err := checkOwner("deployment", ns+"/"+in.Service, in.Tenant, in.Owner, dep.Labels); err != nil {
		return err
	}
	keep := strconv.Itoa(in.Keep)
	if dep.Spec.Template.Labels[LabelGeneration] != keep {
		rs, err := d.replicaSetOf(ctx, dep, keep)
		if err != nil {
			return err
		}
		tpl := rs.Spec.Template.DeepCopy()
		tpl.Labels = maps.Clone(tpl.Labels)
		delete(tpl.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
		// The deployment controller writes the Deployment's status while
		// the candidate's rollout goes on: a conflict means "read it
		// again", not a failure of the roll-back.
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			dep.Spec.Template = *tpl.DeepCopy()
			updated, err := deps.Update(ctx, dep, metav1.UpdateOptions{})
			if err == nil {
				dep = updated
				return nil
			}
			if apierrors.IsConflict(err) {
				if latest, gerr := deps.Get(ctx, in.Service, metav1.GetOptions{}); gerr == nil {
					dep = latest
				}
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("roll %s/%s back to generation %s: %w", ns, in.Service, keep, err)
		}
		d.log.WarnContext(ctx, "rolled back", "tenant", in.Tenant, "service", in.Service, "generation", in.Keep, "replicaSet", rs.Name)
	}
	grace := in.StopTimeout.D()
	if grace <= 0 {
		grace = 10 * time.Second
	}
	deadline := time.Now().Add(grace + d.rolloutBudget(spec.Environment{}))
	if dl, ok := ctx.Deadline(); ok && dl.Add(-time.Second).Before(deadline) {
		// Say where the rollout stands before the activity times out; the
		// retry waits on.
		deadline = dl.Add(-time.Second)
	}
	svc := spec.Service{Name: in.Service, Generation: in.Keep}
	var why string
	fresh := true // the first check reads the Deployment just updated
	done, err := d.waitUntil(ctx, deadline, nil, func() (done bool, err error) {
		if !fresh {
			if dep, err = deps.Get(ctx, in.Service, metav1.GetOptions{}); err != nil {
				return false, fmt.Errorf("get deployment %s/%s: %w", ns, in.Service, err)
			}
		}
		fresh = false
		done, why, err = d.rolledOut(ctx, dep, svc, false)
		return done, err
	})
	if err == nil && !done {
		err = fmt.Errorf("deployment %s/%s not back on generation %s: %s", ns, in.Service, keep, why)
	}
	return err
}

// replicaSetOf finds the Deployment's ReplicaSet of one generation (the
// newest revision if several).
func (d *Driver) replicaSetOf(ctx context.Context, dep *appsv1.Deployment, gen string) (*appsv1.ReplicaSet, error) {
	sel := metav1.FormatLabelSelector(&metav1.LabelSelector{MatchLabels: map[string]string{
		LabelTenant: dep.Labels[LabelTenant], LabelService: dep.Name, LabelGeneration: gen}})
	list, err := d.kube.AppsV1().ReplicaSets(dep.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list replica sets of %s/%s: %w", dep.Namespace, dep.Name, err)
	}
	var best *appsv1.ReplicaSet
	bestRev := -1
	for i := range list.Items {
		rs := &list.Items[i]
		if !metav1.IsControlledBy(rs, dep) {
			continue
		}
		rev, _ := strconv.Atoi(rs.Annotations["deployment.kubernetes.io/revision"])
		if rev > bestRev {
			best, bestRev = rs, rev
		}
	}
	if best == nil {
		msg := fmt.Sprintf("deployment %s/%s has no replica set of generation %s to roll back to", dep.Namespace, dep.Name, gen)
		return nil, temporal.NewNonRetryableApplicationError(msg, ErrRolloutFailed, nil)
	}
	return best, nil
}
