package openshift

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"go.temporal.io/sdk/temporal"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/tenantflow/tenantflow/activities/backup"
)

// Annotations on a PersistentVolume a decommission keeps.
const (
	// AnnotationKeptFor names the claim (<namespace>/<claim>) the volume
	// is kept for.
	AnnotationKeptFor = "tenantflow.io/kept-for"
	// AnnotationReclaimPolicy is the volume's reclaim policy before it was
	// kept, given back when the retention ends or the tenant is restored.
	AnnotationReclaimPolicy = "tenantflow.io/reclaim-policy"
)

// The OpenShift driver keeps a decommissioned tenant's data in place.
var _ backup.InPlace = (*Driver)(nil)

// KeepLocation says where a tenant's kept data is.
func (d *Driver) KeepLocation(tenant string) string {
	return d.server + "/api/v1/namespaces/" + d.Namespace(tenant) + "/persistentvolumeclaims"
}

// KeepVolumes protects the data of every claim of the tenant where it is:
// each bound PersistentVolume gets reclaim policy Retain (its former policy
// noted), so neither the end of the project nor a deleted claim deletes the
// storage. Nothing is copied: a copy off the cluster is the storage layer's
// (CSI snapshots, Velero), which is why the decommission reports the backup
// as kept in place. Idempotent: a kept volume is reported as it is.
func (d *Driver) KeepVolumes(ctx context.Context, tenant, owner string) ([]backup.KeptVolume, error) {
	claims, err := d.liveClaims(ctx, tenant, owner)
	if err != nil {
		return nil, err
	}
	ns := d.Namespace(tenant)
	var out []backup.KeptVolume
	for _, c := range claims {
		if c.Spec.VolumeName == "" {
			// Never bound (a WaitForFirstConsumer class and no pod ever
			// mounted it): no storage, no data; listed as kept with no
			// volume, and verified as still unbound.
			out = append(out, backup.KeptVolume{Volume: c.Labels[LabelVolume], Claim: ns + "/" + c.Name, ClaimUID: string(c.UID)})
			continue
		}
		pv, err := d.kube.CoreV1().PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			return nil, fmt.Errorf("get persistent volume %s of %s/%s: %w", c.Spec.VolumeName, ns, c.Name, err)
		}
		if pv.Annotations[AnnotationKeptFor] == "" {
			prev := pv.Spec.PersistentVolumeReclaimPolicy
			patch := map[string]any{
				"metadata": map[string]any{
					"labels":      map[string]string{LabelTenant: tenant, LabelVolume: c.Labels[LabelVolume], LabelManaged: managedBy},
					"annotations": map[string]string{AnnotationKeptFor: ns + "/" + c.Name, AnnotationReclaimPolicy: string(prev)},
				},
				"spec": map[string]any{"persistentVolumeReclaimPolicy": corev1.PersistentVolumeReclaimRetain},
			}
			b, err := jsonMerge(patch)
			if err != nil {
				return nil, err
			}
			if pv, err = d.kube.CoreV1().PersistentVolumes().Patch(ctx, pv.Name, "application/merge-patch+json", b, metav1.PatchOptions{}); err != nil {
				return nil, fmt.Errorf("keep persistent volume %s of %s/%s: %w", pv.Name, ns, c.Name, err)
			}
		}
		out = append(out, keptVolume(&c, pv))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Volume < out[j].Volume })
	d.log.InfoContext(ctx, "volumes kept in place", "tenant", tenant, "namespace", ns, "volumes", len(out))
	return out, nil
}

func keptVolume(c *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume) backup.KeptVolume {
	q := pv.Spec.Capacity[corev1.ResourceStorage]
	return backup.KeptVolume{
		Volume: c.Labels[LabelVolume], Claim: c.Namespace + "/" + c.Name, ClaimUID: string(c.UID),
		PersistentVolume: pv.Name, Capacity: q.String(), ReclaimPolicy: string(pv.Spec.PersistentVolumeReclaimPolicy),
	}
}

// CheckKept verifies the volumes are still what KeepVolumes reported: the
// same claims, bound to the same volumes, which keep reclaim policy Retain.
func (d *Driver) CheckKept(ctx context.Context, tenant, owner string, kept []backup.KeptVolume) error {
	claims, err := d.liveClaims(ctx, tenant, owner)
	if err != nil {
		return err
	}
	byName := map[string]*corev1.PersistentVolumeClaim{}
	for i := range claims {
		byName[claims[i].Namespace+"/"+claims[i].Name] = &claims[i]
	}
	var errs []error
	for _, k := range kept {
		c := byName[k.Claim]
		if c == nil || string(c.UID) != k.ClaimUID || c.Spec.VolumeName != k.PersistentVolume {
			errs = append(errs, fmt.Errorf("claim %s no longer holds volume %q", k.Claim, k.PersistentVolume))
			continue
		}
		if k.PersistentVolume == "" {
			continue // never bound: nothing to protect
		}
		pv, err := d.kube.CoreV1().PersistentVolumes().Get(ctx, k.PersistentVolume, metav1.GetOptions{})
		if err != nil {
			if apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("persistent volume %s of %s is gone", k.PersistentVolume, k.Claim))
				continue
			}
			return fmt.Errorf("get persistent volume %s: %w", k.PersistentVolume, err)
		}
		if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimRetain {
			errs = append(errs, fmt.Errorf("persistent volume %s of %s has reclaim policy %s, not Retain", pv.Name, k.Claim, pv.Spec.PersistentVolumeReclaimPolicy))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), backup.ErrVerificationFailed, nil)
	}
	return nil
}

// ReleaseVolumes gives every kept volume of the tenant its former reclaim
// policy back: a restored tenant's volumes are ordinary again, and at the
// end of retention deleting the claims deletes the storage.
func (d *Driver) ReleaseVolumes(ctx context.Context, tenant, owner string) error {
	claims, err := d.liveClaims(ctx, tenant, owner)
	if err != nil {
		return err
	}
	return d.releaseVolumes(ctx, tenant, claims)
}

func (d *Driver) releaseVolumes(ctx context.Context, tenant string, claims []corev1.PersistentVolumeClaim) error {
	for _, c := range claims {
		if c.Spec.VolumeName != "" {
			if err := d.releaseVolume(ctx, tenant, c.Spec.VolumeName); err != nil {
				return err
			}
		}
	}
	return nil
}

// releaseVolume undoes KeepVolumes on one volume; a volume not kept (or
// not the tenant's) is left alone.
func (d *Driver) releaseVolume(ctx context.Context, tenant, name string) error {
	pv, err := d.kube.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get persistent volume %s: %w", name, err)
	}
	if pv.Annotations[AnnotationKeptFor] == "" || pv.Labels[LabelTenant] != tenant {
		return nil
	}
	policy := pv.Annotations[AnnotationReclaimPolicy]
	if policy == "" {
		policy = string(corev1.PersistentVolumeReclaimDelete)
	}
	patch := map[string]any{
		"metadata": map[string]any{"annotations": map[string]any{AnnotationKeptFor: nil, AnnotationReclaimPolicy: nil}},
		"spec":     map[string]any{"persistentVolumeReclaimPolicy": policy},
	}
	b, err := jsonMerge(patch)
	if err != nil {
		return err
	}
	if _, err := d.kube.CoreV1().PersistentVolumes().Patch(ctx, name, "application/merge-patch+json", b, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("release persistent volume %s: %w", name, err)
	}
	return nil
}
