package workflows

import (
	"time"

	"github.com/tenantflow/tenantflow/activities/backup"
)

// Updates of the Tenant workflow that decommission and restore a tenant.
// Decommission is two-step: a request records who asked and why, and a
// confirmation (or the request's force flag, for ops) lets it run.
const (
	UpdateRequestDecommission = "requestDecommission"
	UpdateConfirmDecommission = "confirmDecommission"
	UpdateCancelDecommission  = "cancelDecommission"
	UpdateRestore             = "restore"
)

// StateRestoring is the tenant's state while it is brought back from its
// backup during retention.
const StateRestoring = "restoring"

// Phases of a decommission, as GET /v1/tenants/{name} shows them.
const (
	PhaseAwaitingConfirmation = "awaiting-confirmation"
	PhaseConfirmed            = "confirmed" // queued behind the operation under way
	PhaseStopping             = "stopping"  // traffic off, services stopping
	PhaseBackingUp            = "backing-up"
	PhaseVerifying            = "verifying"
	PhaseTearingDown          = "tearing-down"
	PhaseRetained             = "retained" // decommissioned; data kept until RetentionUntil
	PhaseRestoreRequested     = "restore-requested"
	PhaseRestoring            = "restoring"
	PhaseRestored             = "restored"
	PhasePurging              = "purging"
	PhasePurged               = "purged"
	PhaseCancelled            = "cancelled"
	// PhaseFailed: stopped before the backup was verified; the tenant was
	// put back in service as it was.
	PhaseFailed = "failed"
)

// Failure types of refused decommission and restore Updates (HTTP 409).
const (
	ErrDecommissionRefused = "DecommissionRefused"
	ErrRestoreRefused      = "RestoreRefused"
)

// DecommissionRequest asks for a tenant to be decommissioned.
type DecommissionRequest struct {
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
	// Force skips the confirmation (ops only; the API checks the role).
	Force bool `json:"force,omitempty"`
}

// DecommissionConfirmation confirms (or cancels) a pending request.
type DecommissionConfirmation struct {
	By string `json:"by"`
}

// RestoreRequest asks for a decommissioned tenant to be brought back.
type RestoreRequest struct {
	By string `json:"by"`
}

// Decommission is the story of the tenant's decommission, kept in its
// state: who asked and confirmed, where the verified backup is, until when
// the data is kept, and what went wrong.
type Decommission struct {
	Phase       string     `json:"phase"`
	RequestedBy string     `json:"requestedBy"`
	Reason      string     `json:"reason,omitempty"`
	RequestedAt time.Time  `json:"requestedAt"`
	Force       bool       `json:"force,omitempty"`
	ConfirmedBy string     `json:"confirmedBy,omitempty"`
	ConfirmedAt *time.Time `json:"confirmedAt,omitempty"`
	CancelledBy string     `json:"cancelledBy,omitempty"`
	StartedAt   *time.Time `json:"startedAt,omitempty"`
	// Backup is where the tenant's data is: its location, the SHA-256 of
	// its manifest (the backup's checksum) and its sizes.
	Backup           *backup.Backup `json:"backup,omitempty"`
	VerifiedAt       *time.Time     `json:"verifiedAt,omitempty"`
	DecommissionedAt *time.Time     `json:"decommissionedAt,omitempty"`
	// RetentionUntil is when volumes, directory accounts and the backup
	// are deleted, unless the tenant is restored before.
	RetentionUntil *time.Time `json:"retentionUntil,omitempty"`
	// RestoredBy asked for the restore; RestoredAt is when it succeeded.
	RestoredBy string     `json:"restoredBy,omitempty"`
	RestoredAt *time.Time `json:"restoredAt,omitempty"`
	PurgedAt   *time.Time `json:"purgedAt,omitempty"`
	Error      string     `json:"error,omitempty"`
}
