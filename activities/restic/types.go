// Package restic backs tenants up with restic (https://restic.net) while
// they serve: one encrypted, deduplicated repository per tenant, with its
// own key, an off-site copy on a restic REST server, retention, restore
// drills and crypto-erasure.
//
// Layout:
//
//	<Repos>/<tenant>/      the tenant's repository (restic init)
//	<Keys>/<tenant>.key    its password: 32 random bytes, hex; mode 0600
//	<Keys>/<tenant>.lock   flock held by every activity that writes the
//	                       repository on this worker
//	<OffsiteURL><user>/<tenant>-<key digest>/  the off-site repository (see OffsiteName), same password,
//	                       same chunker parameters (restic init
//	                       --copy-chunker-params), so copies deduplicate
//
// One backup is a set of restic snapshots sharing the tag
// "backup:<id>": one per volume ("volume:<name>", the volume's directory
// backed up in place), one per dumped service ("dump:<service>", the
// service's own dump streamed into restic backup --stdin), and last a
// manifest ("manifest", the JSON of Backup on stdin) that makes the
// backup complete. Snapshots are taken with --host tenantflow, so the
// parent of each part is the same part of the previous backup whichever
// worker runs it: a backup of unchanged data adds almost nothing.
//
// Every activity is idempotent: a retry of TakeBackup returns the
// complete backup if its manifest exists, and otherwise forgets the
// parts an earlier attempt left and takes them again (deduplication
// makes that cheap). Stale restic locks left by a killed worker are
// removed (restic unlock, which removes only locks whose process is gone
// or that are older than 30 minutes) while this worker holds the tenant's
// flock, so never while another of our activities uses the repository.
//
// The workers cannot delete off site: the off-site copies are pruned by
// Pruner, in a process of its own that holds the only delete credential.
package restic

import (
	"time"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// Failure types of the activities.
const (
	// ErrInvalidInput: a tenant, volume, service or backup id that is not
	// valid (non-retryable).
	ErrInvalidInput = "InvalidBackupInput"
	// ErrNotConfigured: scheduled backups (or off-site copies) are not
	// configured on this worker (non-retryable).
	ErrNotConfigured = "BackupsNotConfigured"
	// ErrBackupNotFound: no complete backup has the id (non-retryable).
	ErrBackupNotFound = "BackupNotFound"
	// ErrDrillFailed: a drill found the backup unrestorable or different
	// from what was backed up (non-retryable: the message says what).
	ErrDrillFailed = "DrillFailed"
	// ErrRepositoryDamaged: restic read back data of the repository that
	// is not what it wrote (non-retryable: a retry reads the same bytes).
	// A drill reports it as ErrDrillFailed, a restore as
	// ErrRestoreFailed.
	ErrRepositoryDamaged = "BackupRepositoryDamaged"
	// ErrUnreadable: restic could not read every file of a volume on
	// several attempts (non-retryable).
	ErrUnreadable = "BackupFilesUnreadable"
	// ErrKeyGone: the tenant's key was erased; its backups are unreadable
	// (non-retryable).
	ErrKeyGone = "BackupKeyErased"
)

// Kinds of a backup's parts.
const (
	PartVolume = "volume"
	PartDump   = "dump"
)

// BackupInput asks for a backup of the tenant under ID.
type BackupInput struct {
	Tenant string `json:"tenant"`
	// Owner is the run that owns the tenant's runtime objects (its
	// volumes); empty: any.
	Owner   string `json:"owner,omitempty"`
	Runtime string `json:"runtime,omitempty"`
	// ID names the backup: [a-z0-9][a-z0-9.-]*, at most 128 characters.
	ID string `json:"id"`
	// Volumes are the tenant's volumes (logical names) backed up as
	// files; a volume of a dumped service is left out by the caller.
	Volumes []string `json:"volumes"`
	// Dumps are the services backed up by their own dump command
	// (spec.Service.Backup), as rendered for the tenant: they carry its
	// secrets, so the input travels encrypted.
	Dumps []spec.Service `json:"dumps,omitempty"`
	// Reason is recorded in the manifest: "scheduled", "on-demand",
	// "before-release", "before-restore", "final".
	Reason string `json:"reason,omitempty"`
	// Quiesce, when set, holds a service's writes while the volumes are
	// backed up: Pause runs in it before the first volume, Resume after
	// the last, whatever happened.
	Quiesce *Quiesce `json:"quiesce,omitempty"`
}

// Quiesce is the template's quiesce hook (spec.Quiesce) with its service
// rendered for the tenant.
type Quiesce struct {
	Service spec.Service `json:"service"`
	Pause   []string     `json:"pause"`
	Resume  []string     `json:"resume"`
}

// Part is one snapshot of a backup.
type Part struct {
	Kind string `json:"kind"` // PartVolume or PartDump
	Name string `json:"name"` // the volume or the service
	// Snapshot is restic's snapshot id (full, 64 hex digits); empty for
	// an empty volume, of which restic takes no snapshot.
	Snapshot string `json:"snapshot"`
	Files    int    `json:"files"`
	// Bytes is the part's size; Added what it added to the repository
	// (after deduplication and compression).
	Bytes int64 `json:"bytes"`
	Added int64 `json:"added"`
	// SHA256 is the dump's checksum (dumps only): a drill that restores
	// the dump into a scratch instance and dumps it again must get it.
	SHA256 string `json:"sha256,omitempty"`
}

// empty reports a volume part that was empty when backed up: it has no
// snapshot, restores to an empty volume and drills trivially.
func (p Part) empty() bool { return p.Kind == PartVolume && p.Snapshot == "" }

// Backup is a complete backup: what travels through history and what
// the API lists.
type Backup struct {
	ID        string    `json:"id"`
	Tenant    string    `json:"tenant"`
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	Parts     []Part    `json:"parts"`
	// Bytes is the backup's size; Added what it added to the repository.
	Bytes int64 `json:"bytes"`
	Added int64 `json:"added"`
	// Manifest is the snapshot id of the manifest, which makes it
	// complete.
	Manifest string `json:"manifest"`
	// RepositoryBytes is the repository's size after the backup (restic
	// stats --mode raw-data).
	RepositoryBytes int64 `json:"repositoryBytes"`
	// Took is the backup's duration.
	Took time.Duration `json:"took"`
}

// Ref names a backup of a tenant.
type Ref struct {
	Tenant string `json:"tenant"`
	ID     string `json:"id"`
}

// OffsiteCopy is the outcome of CopyOffsite.
type OffsiteCopy struct {
	// Snapshots copied by this call (0 when an earlier attempt did).
	Copied   int       `json:"copied"`
	CopiedAt time.Time `json:"copiedAt"`
	// Prune is the task queue of the off-site pruner, whose
	// (*Pruner).PruneOffsite applies the retention to the off-site
	// copy after the local one (Config.OffsitePruner); empty: nobody
	// prunes it.
	Prune string `json:"prune,omitempty"`
}

// RetentionInput asks for the tenant's backups to be pruned to Keep.
type RetentionInput struct {
	Tenant string    `json:"tenant"`
	Keep   spec.Keep `json:"keep"`
	// TimeZone places days, weeks and months (IANA; empty: UTC).
	TimeZone string `json:"timezone,omitempty"`
	// Pinned backups are kept whatever Keep says (the safety backup of
	// a restore, the final backup of a decommission).
	Pinned []string `json:"pinned,omitempty"`
	// Now is the workflow's time: the newest day, week and month.
	Now time.Time `json:"now"`
}

// Retention is what a prune did.
type Retention struct {
	Kept      []string `json:"kept"`
	Forgotten []string `json:"forgotten"`
	// RepositoryBytes is the local repository's size after the prune
	// (what its files take on disk). PruneOffsite leaves it 0: the
	// off-site size is the server's to tell, and restic stats would
	// read every tree of the copy once more for it.
	RepositoryBytes int64 `json:"repositoryBytes"`
}

// DrillInput asks for a restore drill of one backup.
type DrillInput struct {
	Tenant string `json:"tenant"`
	ID     string `json:"id"`
	// Offsite drills the off-site copy instead of the local repository.
	Offsite bool `json:"offsite,omitempty"`
	// Dumps are the backup's dumped services, rendered for the tenant:
	// each dump is loaded into a scratch instance without network, which
	// must pass its health check and dump back to the same SHA-256.
	Dumps []spec.Service `json:"dumps,omitempty"`
}

// Drill is a drill's outcome; a failed drill is an ErrDrillFailed error.
type Drill struct {
	ID        string        `json:"id"`
	Offsite   bool          `json:"offsite,omitempty"`
	Files     int           `json:"files"`
	Bytes     int64         `json:"bytes"`
	Took      time.Duration `json:"took"`
	CheckedAt time.Time     `json:"checkedAt"`
}

// EraseInput asks for every copy of the tenant's backups to be made
// unreadable: its key is deleted, and its local repository removed.
type EraseInput struct {
	Tenant string `json:"tenant"`
}
