package backup

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// keeper is an InPlace runtime whose volumes the test lists; the real one
// (activities/openshift) is tested against a Kubernetes API server.
type keeper struct {
	kept     []KeptVolume
	changed  bool // CheckKept finds a volume changed
	released int
}

func (k *keeper) KeepVolumes(context.Context, string, string) ([]KeptVolume, error) {
	return k.kept, nil
}
func (k *keeper) CheckKept(_ context.Context, _, _ string, kept []KeptVolume) error {
	if k.changed {
		return temporal.NewNonRetryableApplicationError("claim tf-acme/data no longer holds volume pv-1", ErrVerificationFailed, nil)
	}
	return nil
}
func (k *keeper) ReleaseVolumes(context.Context, string, string) error { k.released++; return nil }
func (k *keeper) KeepLocation(tenant string) string                    { return "https://api.test/ns/tf-" + tenant }

// A runtime that keeps volumes in place needs no backup location: its
// backup is the kept volumes, pinned by their checksum, and says so.
func TestInPlaceBackup(t *testing.T) {
	k := &keeper{kept: []KeptVolume{{Volume: "data", Claim: "tf-acme/data", ClaimUID: "u1", PersistentVolume: "pv-1", ReclaimPolicy: "Retain"}}}
	a := &Activities{InPlace: map[string]InPlace{"openshift": k}}
	ctx := context.Background()

	require.NoError(t, a.DumpServices(ctx, DumpInput{Tenant: "acme", ID: "d1", Runtime: "openshift"}), "the db's data stays on its volume")
	b, err := a.BackupVolumes(ctx, BackupInput{Tenant: "acme", ID: "d1", Runtime: "openshift", Volumes: []string{"data"}})
	require.NoError(t, err)
	require.Equal(t, KindInPlace, b.Kind)
	require.Equal(t, "https://api.test/ns/tf-acme", b.Location)
	require.Contains(t, b.Note, "storage layer")
	require.Equal(t, k.kept, b.Kept)
	require.Len(t, b.ManifestSHA256, 64)

	ref := BackupRef{Tenant: "acme", ID: "d1", Runtime: "openshift", ManifestSHA256: b.ManifestSHA256, Kept: b.Kept}
	_, err = a.VerifyBackup(ctx, ref)
	require.NoError(t, err)
	_, err = a.RestoreVolumes(ctx, ref)
	require.NoError(t, err)
	require.NoError(t, a.LoadDumps(ctx, ref))

	// The kept list is pinned by its checksum, and the runtime's own check
	// is final.
	tampered := ref
	tampered.Kept = []KeptVolume{{Volume: "data", Claim: "tf-acme/data", ClaimUID: "u1", PersistentVolume: "pv-2", ReclaimPolicy: "Retain"}}
	_, err = a.VerifyBackup(ctx, tampered)
	harness.RequireNonRetryable(t, err, ErrVerificationFailed)
	k.changed = true
	_, err = a.RestoreVolumes(ctx, ref)
	harness.RequireNonRetryable(t, err, ErrVerificationFailed)

	require.NoError(t, a.RemoveBackup(ctx, ref))
	require.Equal(t, 1, k.released)

	// A Docker tenant on this worker finds no backup location.
	_, err = a.BackupVolumes(ctx, BackupInput{Tenant: "acme", ID: "d1", Volumes: []string{"data"}})
	harness.RequireNonRetryable(t, err, "BackupNotConfigured")
	require.NoError(t, Location{Config: a.Config}.Check(ctx), "nothing to check without a location")
}
