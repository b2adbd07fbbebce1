package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
)

// KindInPlace marks a backup whose data was not copied: the runtime's
// storage layer keeps the tenant's volumes where they are.
const KindInPlace = "in-place"

// InPlace is a runtime whose volumes Tenantflow cannot read (OpenShift:
// PersistentVolumes on the cluster's storage). A decommission there keeps
// the volumes, protected from deletion, for the retention period instead
// of archiving them; copies off the cluster are the storage layer's job,
// and the backup record says so.
type InPlace interface {
	// KeepVolumes protects every volume of the tenant against deletion
	// and reports them.
	KeepVolumes(ctx context.Context, tenant, owner string) ([]KeptVolume, error)
	// CheckKept verifies the volumes are still the ones reported, still
	// protected (a non-retryable ErrVerificationFailed when not).
	CheckKept(ctx context.Context, tenant, owner string, kept []KeptVolume) error
	// ReleaseVolumes lifts the protection (restore done, or retention
	// over: then the volumes are deleted with their data).
	ReleaseVolumes(ctx context.Context, tenant, owner string) error
	// KeepLocation names where the tenant's kept volumes are.
	KeepLocation(tenant string) string
}

// KeptVolume is one volume kept in place.
type KeptVolume struct {
	Volume           string `json:"volume"`
	Claim            string `json:"claim"` // <namespace>/<claim>
	ClaimUID         string `json:"claimUid"`
	PersistentVolume string `json:"persistentVolume"`
	Capacity         string `json:"capacity,omitempty"`
	ReclaimPolicy    string `json:"reclaimPolicy"`
}

// inPlaceNote is what ops read in the tenant's backup record.
const inPlaceNote = "data kept in place on the tenant's persistent volumes (reclaim policy Retain) until the retention ends; no copy was made: off-cluster copies are the storage layer's (CSI snapshots, Velero)"

// inPlace is the runtime's InPlace, nil for runtimes whose volumes are
// archived (Docker, and "": tenants from before runtimes were named).
func (a *Activities) inPlace(runtimeName string) InPlace { return a.InPlace[runtimeName] }

// keptSum pins the kept volumes the way a manifest checksum pins archives.
func keptSum(kept []KeptVolume) string {
	b, _ := json.Marshal(kept)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (a *Activities) keepVolumes(ctx context.Context, ip InPlace, in BackupInput) (Backup, error) {
	if err := validName(in.Tenant, in.ID); err != nil {
		return Backup{}, err
	}
	kept, err := ip.KeepVolumes(ctx, in.Tenant, in.Owner)
	if err != nil {
		return Backup{}, passOn(err, "keep volumes of %s", in.Tenant)
	}
	b := Backup{ID: in.ID, Kind: KindInPlace, Location: ip.KeepLocation(in.Tenant), Note: inPlaceNote,
		ManifestSHA256: keptSum(kept), Kept: kept, CreatedAt: time.Now().UTC(), Volumes: []VolumeSummary{}}
	a.log().Info("volumes kept in place", "tenant", in.Tenant, "backup", in.ID, "volumes", len(kept), "location", b.Location)
	return b, nil
}

func (a *Activities) checkKept(ctx context.Context, ip InPlace, ref BackupRef) (Verification, error) {
	start := time.Now()
	if err := ref.validate(true); err != nil {
		return Verification{}, err
	}
	if keptSum(ref.Kept) != ref.ManifestSHA256 {
		msg := fmt.Sprintf("kept volumes of backup %s do not match its checksum %s", ref.ID, ref.ManifestSHA256)
		return Verification{}, temporal.NewNonRetryableApplicationError(msg, ErrVerificationFailed, nil)
	}
	if err := ip.CheckKept(ctx, ref.Tenant, ref.Owner, ref.Kept); err != nil {
		return Verification{}, passOn(err, "check kept volumes of %s", ref.Tenant)
	}
	return Verification{Took: time.Since(start)}, nil
}
