package tenant

import (
	"time"

	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/activities/volsync"
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// WorkflowType is the registered workflow type name shown in the Web UI.
const WorkflowType = "Tenant"

// WorkflowID is the id of a tenant's entity workflow: starting it a
// second time for the same name is rejected by the server.
func WorkflowID(name string) string { return "tenant:" + name }

// QueryState is the query that returns the Tenant.
const QueryState = "state"

// Stages a tenant can be in; releases reach staging first.
var Stages = []string{"staging", "prod"}

// Spec is what a client asks for when creating a tenant.
type Spec struct {
	Name        string `json:"name"`
	Template    string `json:"template"`
	Stage       string `json:"stage"`
	RequestedBy string `json:"requestedBy,omitempty"`
	// Backups overrides fields of the template's backup policy.
	Backups *spec.Backups `json:"backups,omitempty"`
	// Placement, when set, places the tenant on a Docker host of the
	// fleet (the host registry, workflows/hosts); nil: the one engine
	// every worker reaches.
	Placement *PlacementRequest `json:"placement,omitempty"`
	// MaintenanceWindow, when set, is when a release may cut the tenant
	// over (spec.Window, canonical form); empty: at any time.
	MaintenanceWindow string `json:"maintenanceWindow,omitempty"`
	// Plan is the template plan the tenant was sized with (the Input's
	// template carries its sizes); empty: the template has no plans.
	Plan string `json:"plan,omitempty"`
}

// UpdateChangePlan resizes the tenant to another of its template's plans
// (PATCH /v1/tenants/{name} {"plan"}): accepted at once, it runs as the
// tenant's next operation.
const UpdateChangePlan = "changePlan"

// ErrPlanRefused is the failure type of a refused plan change (HTTP 409).
const ErrPlanRefused = "PlanRefused"

// ChangePlanRequest names the plan and who asks.
type ChangePlanRequest struct {
	Plan string `json:"plan"`
	By   string `json:"by"`
}

// PlanPhase is where a plan (or settings) change stands.
type PlanPhase string

// Plan and settings change phases.
const (
	PlanQueued  PlanPhase = "queued"
	PlanRunning PlanPhase = "running"
	PlanDone    PlanPhase = "done"
	PlanFailed  PlanPhase = "failed"
)

// PlanChange is one change of the tenant's plan.
type PlanChange struct {
	From string `json:"from"`
	To   string `json:"to"`
	Change
}

// Change is the course of a change that runs as the tenant's next
// operation (a plan, settings): who asked, when, and where it stands.
type Change struct {
	By          string     `json:"by"`
	Phase       PlanPhase  `json:"phase"`
	RequestedAt time.Time  `json:"requestedAt"`
	StartedAt   *time.Time `json:"startedAt,omitempty"`
	FinishedAt  *time.Time `json:"finishedAt,omitempty"`
	Error       string     `json:"error,omitempty"`
}

// UpdateChangeSettings changes the tenant's env settings (PATCH
// /v1/tenants/{name} {"settings"}): accepted at once, it runs as the
// tenant's next operation, a cut-over of its public service.
const UpdateChangeSettings = "changeSettings"

// Failure types of a refused settings change: ErrSettingsRefused (HTTP
// 409) when the tenant cannot change now, ErrSettingInvalid (HTTP 400)
// for a setting its template does not have or a value it does not allow;
// its details name the setting.
const (
	ErrSettingsRefused = "SettingsRefused"
	ErrSettingInvalid  = "SettingInvalid"
)

// ChangeSettingsRequest names the settings to change (a nil value goes
// back to the template's default) and who asks.
type ChangeSettingsRequest struct {
	Settings map[string]*string `json:"settings"`
	By       string             `json:"by"`
}

// SettingsChange is one change of the tenant's settings.
type SettingsChange struct {
	Settings map[string]*string `json:"settings"`
	Change
}

// UpdateAddDomain asks for a custom domain (POST
// /v1/tenants/{name}/domains); UpdateRemoveDomain takes one off (DELETE
// …/domains/{host}). Both answer the Domain.
const (
	UpdateAddDomain    = "addDomain"
	UpdateRemoveDomain = "removeDomain"
)

// Failure types of refused domain requests (HTTP 409 and 404).
const (
	ErrDomainRefused  = "DomainRefused"
	ErrDomainNotFound = "DomainNotFound"
)

// DomainRequest names a custom domain and who asks.
type DomainRequest struct {
	Host string `json:"host"`
	By   string `json:"by"`
}

// DomainStatus is where a custom domain stands.
type DomainStatus string

// Custom domain statuses.
const (
	// DomainVerifying: waiting for the customer's TXT record.
	DomainVerifying DomainStatus = "verifying"
	// DomainIssuing: the route serves it; waiting for a valid
	// certificate over HTTPS.
	DomainIssuing DomainStatus = "issuing"
	// DomainActive: it answers over HTTPS with a valid certificate.
	DomainActive DomainStatus = "active"
	// DomainFailed: never verified, or served by another route (Error
	// says); ask again to retry.
	DomainFailed DomainStatus = "failed"
	// DomainRemoving: being taken off the route.
	DomainRemoving DomainStatus = "removing"
	// DomainRemoved is only an answer of removeDomain: it is gone.
	DomainRemoved DomainStatus = "removed"
)

// routed tells a domain the route may serve.
func (s DomainStatus) routed() bool {
	return s == DomainIssuing || s == DomainActive || s == DomainRemoving
}

// pending tells a domain with a check to come.
func (s DomainStatus) pending() bool {
	return s == DomainVerifying || s == DomainIssuing || s == DomainRemoving || s == DomainActive
}

// DomainRecord is the DNS record the customer adds to prove they control
// the domain for this tenant.
type DomainRecord struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Domain is one custom domain of the tenant.
type Domain struct {
	Host        string       `json:"host"`
	Status      DomainStatus `json:"status"`
	Record      DomainRecord `json:"record"`
	RequestedBy string       `json:"requestedBy"`
	RequestedAt time.Time    `json:"requestedAt"`
	VerifiedAt  *time.Time   `json:"verifiedAt,omitempty"`
	ActiveAt    *time.Time   `json:"activeAt,omitempty"`
	// NextCheckAt is when the record, or the certificate, is looked at
	// again; Checks counts the looks.
	NextCheckAt *time.Time `json:"nextCheckAt,omitempty"`
	Checks      int        `json:"checks,omitempty"`
	// Found are the TXT values seen at the record's name, to tell a
	// customer who added another one.
	Found []string `json:"found,omitempty"`
	// Issuer is who signed the certificate it answers with.
	Issuer string `json:"issuer,omitempty"`
	// RecordMissingSince is when the daily look found an active
	// domain's record gone; it leaves the route after a grace period.
	RecordMissingSince *time.Time `json:"recordMissingSince,omitempty"`
	Error              string     `json:"error,omitempty"`
}

// PlacementRequest asks for a host: any that fits, or the one pinned.
type PlacementRequest struct {
	Pin string `json:"pin,omitempty"`
}

// Input starts (or continues as new) a tenant's entity workflow.
type Input struct {
	Spec Spec `json:"spec"`
	// Template is the template as it was when the tenant was created; later
	// edits of the file do not change existing tenants behind their back.
	Template spec.Template `json:"template"`
	// Carried across continue-as-new; empty on the first run.
	State   *Tenant           `json:"state,omitempty"`
	Secrets map[string]string `json:"secrets,omitempty"`
}

// Tenant is the tenant as the API shows it (the state query's answer). It never holds secrets.
type Tenant struct {
	Name     string `json:"name"`
	State    State  `json:"state"`
	Stage    string `json:"stage"`
	Template string `json:"template"`
	// Runtime runs the tenant (docker, openshift); empty for tenants from
	// before runtimes were named (Docker).
	Runtime string `json:"runtime,omitempty"`
	// ProvisionID is the run that provisioned the tenant; its runtime
	// objects carry it as their owner.
	ProvisionID string `json:"provisionId,omitempty"`
	// Image is what the public service runs; Release the release that put
	// it there (empty: the template's image since provisioning), and
	// PreviousImage what ran before, for a rollback release.
	Image         string `json:"image,omitempty"`
	Release       string `json:"release,omitempty"`
	PreviousImage string `json:"previousImage,omitempty"`
	// Decommission, once requested: its phase, the verified backup and
	// the end of retention.
	Decommission *Decommission `json:"decommission,omitempty"`
	// Generation of the public service's instance (see spec.Service).
	Generation int                      `json:"generation,omitempty"`
	URL        string                   `json:"url,omitempty"`      // public URL (through the proxy when routing is on)
	Endpoint   string                   `json:"endpoint,omitempty"` // the runtime's own address of the public service
	Progress   flow.Progress            `json:"progress"`
	Error      string                   `json:"error,omitempty"`
	Services   []runtimes.ServiceStatus `json:"services,omitempty"`
	Resources  []Resource               `json:"resources,omitempty"`
	Accounts   []Account                `json:"accounts,omitempty"`
	// When and by whom the first account's password was handed out; it is
	// handed out once and then forgotten.
	CredentialsFetchedAt *time.Time `json:"credentialsFetchedAt,omitempty"`
	CredentialsFetchedBy string     `json:"credentialsFetchedBy,omitempty"`
	CreatedAt            time.Time  `json:"createdAt"`
	UpdatedAt            time.Time  `json:"updatedAt"`
	// Backups is the tenant's data protection: nil for a tenant without
	// a backup policy that was never backed up on demand.
	Backups *Backups `json:"backups,omitempty"`
	// Placement is the fleet host the tenant runs on, and why it was
	// chosen (nil: not placed on the fleet).
	Placement *hosts.Placement `json:"placement,omitempty"`
	// Move is the move to another host under way, or the last one.
	Move *Move `json:"move,omitempty"`
	// Degraded says why the tenant cannot serve as it should: its host
	// was found lost, or a repair failed (nil: nothing known wrong).
	Degraded *Degraded `json:"degraded,omitempty"`
	// Repair is the repair the drift reconcile asked for, under way or
	// the last one (see repair.go).
	Repair *Repair `json:"repair,omitempty"`
	// Suspension is the tenant's suspension, under way or the last one
	// (see suspend.go).
	Suspension *Suspension `json:"suspension,omitempty"`
	// PlanChange is the plan change under way, or the last one.
	PlanChange *PlanChange `json:"planChange,omitempty"`
	// Plan is the template plan the tenant is sized with.
	Plan string `json:"plan,omitempty"`
	// Settings are the tenant's env settings, every one its template
	// declares (its value or the default); SettingsChange the change
	// under way, or the last one. See settings.go.
	Settings       map[string]string `json:"settings,omitempty"`
	SettingsChange *SettingsChange   `json:"settingsChange,omitempty"`
	// MaintenanceWindow is when a release may cut the tenant over
	// (spec.Window, canonical form); empty: at any time. See window.go.
	MaintenanceWindow string `json:"maintenanceWindow,omitempty"`
	// Domains are the tenant's custom domains (see domains.go).
	Domains []Domain `json:"domains,omitempty"`
}

// UpdateMove moves a placed tenant to another Docker host with its data
// (POST /v1/tenants/{name}/move); it is accepted at once and runs as the
// tenant's next operation.
const UpdateMove = "move"

// ErrMoveRefused is the failure type of a refused move (HTTP 409; the
// API answers 404 naming "to" for an unknown host itself).
const ErrMoveRefused = "MoveRefused"

// MoveRequest asks for a move: to a host, or (To empty) to the active
// host with room the registry chooses, never the source.
type MoveRequest struct {
	To string `json:"to,omitempty"`
	By string `json:"by"`
	// Evacuate brings a tenant whose host is lost back on another host
	// from its newest off-site backup.
	Evacuate bool `json:"evacuate,omitempty"`
}

// Degraded is what is known wrong with a tenant.
type Degraded struct {
	Host   string    `json:"host"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason"`
	// Cause is CauseDrift when a repair failed ("": the host is lost).
	Cause string `json:"cause,omitempty"`
}

// MovePhase is where a move stands.
type MovePhase string

// Phases of a move.
const (
	MoveQueued    MovePhase = "queued"
	MovePreparing MovePhase = "preparing" // room reserved, network, volumes and databases made on the target
	MovePreCopy   MovePhase = "pre-copy"  // the volumes copied live to the target while the source serves
	MoveSyncing   MovePhase = "syncing"   // every service stopped: what changed since copied and verified
	MoveStarting  MovePhase = "starting"  // the services start on the target, route switched when healthy
	MoveRetiring  MovePhase = "retiring"  // the target serves: the source's containers and volumes go
	MoveDone      MovePhase = "done"
	MoveFailed    MovePhase = "failed" // the tenant serves on the source, as before
)

// Move is a move of the tenant between hosts.
type Move struct {
	From        string     `json:"from"`
	To          string     `json:"to"`
	By          string     `json:"by"`
	Phase       MovePhase  `json:"phase"`
	RequestedAt time.Time  `json:"requestedAt"`
	StartedAt   *time.Time `json:"startedAt,omitempty"`
	FinishedAt  *time.Time `json:"finishedAt,omitempty"`
	// StoppedAt and ServingAt bound the interruption: the source stopped,
	// the route switched to the target.
	StoppedAt *time.Time `json:"stoppedAt,omitempty"`
	ServingAt *time.Time `json:"servingAt,omitempty"`
	// Evacuation: the source host was lost; the data came from Backup,
	// the newest off-site copy. RecoveryPoint is when that backup was
	// taken, RecoveryAgeMs how much older it is than the loss (what the
	// lost host may have held that the tenant no longer has).
	Evacuation    bool       `json:"evacuation,omitempty"`
	Backup        string     `json:"backup,omitempty"`
	RecoveryPoint *time.Time `json:"recoveryPoint,omitempty"`
	RecoveryAgeMs int64      `json:"recoveryAgeMs,omitempty"`
	// Direct: the data travelled host to host (Copies); before moves
	// copied directly, through restic backups (Backups).
	Direct bool             `json:"direct,omitempty"`
	Copies []volsync.Pushed `json:"copies,omitempty"`
	// Backups are the pre-copy and final backups that carried the data.
	Backups []string `json:"backups,omitempty"`
	Error   string   `json:"error,omitempty"`
}

// Resource is one thing an outside system holds for the tenant, as the API
// lists it.
type Resource struct {
	Kind   ResourceKind `json:"kind"`
	ID     string       `json:"id"`
	Detail string       `json:"detail,omitempty"`
}

// Account is a directory account handed to the distributor.
type Account struct {
	Username string `json:"username"`
	DN       string `json:"dn"`
}

// UpdateFetchCredentials hands out the tenant's first directory account
// with its password, once. It is an Update rather than a query because it
// changes the tenant: the password is forgotten and who took it is recorded.
const UpdateFetchCredentials = "fetchCredentials"

// Failure types of a rejected credentials fetch.
const (
	ErrCredentialsAlreadyFetched = "CredentialsAlreadyFetched"
	ErrCredentialsUnavailable    = "CredentialsUnavailable"
)

// FetchCredentialsInput says who fetches.
type FetchCredentialsInput struct {
	By string `json:"by"`
}

// Credentials are the first account of the tenant's directory.
type Credentials struct {
	Username string `json:"username"`
	DN       string `json:"dn"`
	Password string `json:"password"`
	URL      string `json:"url,omitempty"`
}

// UpdateApplyRelease asks the tenant to run a release's image (a
// cut-over); SignalCancelRelease tells it that a release was aborted.
const (
	UpdateApplyRelease  = "applyRelease"
	SignalCancelRelease = "cancelRelease"
)

// ErrTenantUnavailable is the failure type of an applyRelease the tenant
// refuses: it is not active (provisioning, failed, being decommissioned).
const ErrTenantUnavailable = "TenantUnavailable"

// ApplyInput asks a tenant to run an image: the applyRelease Update's
// argument.
type ApplyInput struct {
	Release       string        `json:"release"`
	Image         string        `json:"image"`
	HealthTimeout spec.Duration `json:"healthTimeout,omitempty"`
	Drain         spec.Duration `json:"drain,omitempty"`
	// BackupBefore takes a backup of the tenant before the cut-over; if
	// it fails, the tenant is not cut over (rolled-back, the old image
	// serving).
	BackupBefore bool `json:"backupBefore,omitempty"`
	// RestoreBackup puts the tenant's data back as this backup took it
	// while the image changes: a rollback of a release whose new version
	// migrated the data. It takes a safety backup first and is not
	// zero-downtime (see rollbackdata.go).
	RestoreBackup string `json:"restoreBackup,omitempty"`
	// Override cuts the tenant over outside its maintenance window: ops
	// said who and why (an emergency fix), or an abort puts it back.
	Override *WindowOverride `json:"override,omitempty"`
}

// Outcome of applying a release to one tenant.
type Outcome string

// Outcomes of applying a release to one tenant.
const (
	OutcomeUpdated    Outcome = "updated"     // now runs the release's image
	OutcomeUnchanged  Outcome = "unchanged"   // already ran it
	OutcomeRolledBack Outcome = "rolled-back" // the new instance never became healthy; the old one kept serving
	OutcomeSkipped    Outcome = "skipped"     // not active (provisioning failed, decommissioned, gone)
	// OutcomeOutsideWindow: the tenant's maintenance window is closed;
	// nothing changed, and the result says when it opens.
	OutcomeOutsideWindow Outcome = "outside-window"
)

// ApplyResult is the tenant's answer to ApplyInput.
type ApplyResult struct {
	Tenant     string    `json:"tenant"`
	Outcome    Outcome   `json:"outcome"`
	From       string    `json:"from,omitempty"`
	To         string    `json:"to,omitempty"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	// Backup is the backup taken before the cut-over (BackupBefore, or
	// the safety backup of a RestoreBackup).
	Backup string `json:"backup,omitempty"`
	// Restored is the backup whose data the tenant runs on after the
	// cut-over (RestoreBackup, once it succeeded).
	Restored string `json:"restored,omitempty"`
	// WindowOpensAt is when the tenant's maintenance window next opens
	// (OutcomeOutsideWindow).
	WindowOpensAt *time.Time `json:"windowOpensAt,omitempty"`
}

// CancelInput asks a tenant to stop the cut-over of a release: the
// cancelRelease Signal's argument.
type CancelInput struct {
	Tenant  string `json:"tenant"`
	Release string `json:"release"`
	// Image is the release's image for the tenant: a revert of the same
	// release (back to the previous image) is not cancelled.
	Image  string `json:"image"`
	Reason string `json:"reason,omitempty"`
}

// Updates of the Tenant workflow that decommission and restore a tenant.
// Decommission is two-step: a request records who asked and why, and a
// confirmation (or the request's force flag, for ops) lets it run.
const (
	UpdateRequestDecommission = "requestDecommission"
	UpdateConfirmDecommission = "confirmDecommission"
	UpdateCancelDecommission  = "cancelDecommission"
	UpdateRestore             = "restore"
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
	Phase       Phase      `json:"phase"`
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
	Backup *backup.Backup `json:"backup,omitempty"`
	// Final is the final backup in the tenant's restic repository, for a
	// tenant with a backup policy (then Backup is empty): drilled before
	// the teardown, erased with the repository's key at the end of the
	// retention.
	Final            *BackupRecord `json:"final,omitempty"`
	VerifiedAt       *time.Time    `json:"verifiedAt,omitempty"`
	DecommissionedAt *time.Time    `json:"decommissionedAt,omitempty"`
	// RetentionUntil is when volumes, directory accounts and the backup
	// are deleted, unless the tenant is restored before.
	RetentionUntil *time.Time `json:"retentionUntil,omitempty"`
	// RestoredBy asked for the restore; RestoredAt is when it succeeded.
	RestoredBy string     `json:"restoredBy,omitempty"`
	RestoredAt *time.Time `json:"restoredAt,omitempty"`
	PurgedAt   *time.Time `json:"purgedAt,omitempty"`
	Error      string     `json:"error,omitempty"`
	// Suspended: the tenant was suspended when the decommission began. Its
	// databases were started for their dump only, and a failure leaves it
	// suspended, its maintenance page served.
	Suspended bool `json:"suspended,omitempty"`
}

// UpdateBackup asks for a backup of the tenant now (POST
// /v1/tenants/{name}/backups). It is accepted at once and runs as the
// tenant's next operation; the answer says whether it waits for another.
const UpdateBackup = "backup"

// ErrBackupRefused is the failure type of a refused backup request (HTTP
// 409): the tenant is not active.
const ErrBackupRefused = "BackupRefused"

// Reasons a backup is taken.
const (
	ReasonScheduled = "scheduled"
	ReasonOnDemand  = "on-demand"
)

// BackupRequest asks for an on-demand backup.
type BackupRequest struct {
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
}

// BackupAccepted answers a BackupRequest: the backup's id, and whether it
// waits for another operation of the tenant.
type BackupAccepted struct {
	ID         string `json:"id"`
	Queued     bool   `json:"queued"`
	WaitingFor string `json:"waitingFor,omitempty"`
}

// Backups is the tenant's data protection as the API shows it: its
// policy, when the next backup and drill are due, the backups the
// retention keeps (newest last) and the last drill.
type Backups struct {
	Policy      spec.Backups `json:"policy"`
	NextAt      *time.Time   `json:"nextAt,omitempty"`
	NextDrillAt *time.Time   `json:"nextDrillAt,omitempty"`
	// Pending are requested backups waiting for their turn; Running the
	// one under way.
	Pending []PendingBackup `json:"pending,omitempty"`
	Running string          `json:"running,omitempty"`
	List    []BackupRecord  `json:"list,omitempty"`
	// LastDrill is the newest drill, passed or failed.
	LastDrill *DrillRecord `json:"lastDrill,omitempty"`
	// NewestOffsiteAt is when the newest backup that reached the off-site
	// server was taken.
	NewestOffsiteAt *time.Time `json:"newestOffsiteAt,omitempty"`
	// LastError is the last failed backup's reason, cleared by a success.
	LastError string `json:"lastError,omitempty"`
	// Seq numbers the backups of the tenant (part of their ids).
	Seq int `json:"seq"`
	// Restore is the restore to a backup under way, or the last one.
	Restore *BackupRestore `json:"restore,omitempty"`
	// Pinned are backups the retention keeps whatever it says: the one
	// being restored, and the safety backup of the last restore.
	Pinned []string `json:"pinned,omitempty"`
	// OffsitePrune is the off-site copy's retention, when an off-site
	// pruner runs (restic.Config.OffsitePruner).
	OffsitePrune *OffsitePrune `json:"offsitePrune,omitempty"`
}

// OffsitePrune is the state of the off-site copy's retention. The
// worker's credential cannot delete off-site: a pruner of its own, on
// Queue, holds the one that can.
type OffsitePrune struct {
	Queue string `json:"queue"`
	// Due: the local retention forgot backups the off-site copy still
	// holds (or the last off-site prune failed).
	Due      bool       `json:"due,omitempty"`
	PrunedAt *time.Time `json:"prunedAt,omitempty"`
	// Forgotten is what the last prune forgot off-site.
	Forgotten []string `json:"forgotten,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// PendingBackup is a backup waiting for its turn.
type PendingBackup struct {
	ID          string    `json:"id"`
	Reason      string    `json:"reason"`
	By          string    `json:"by,omitempty"`
	Note        string    `json:"note,omitempty"`
	RequestedAt time.Time `json:"requestedAt"`
}

// BackupRecord is one backup of the tenant, as the API lists it.
type BackupRecord struct {
	ID        string    `json:"id"`
	Reason    string    `json:"reason"`
	By        string    `json:"by,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// Bytes is the backup's size, Added what it added to the repository
	// (deduplicated, compressed), RepositoryBytes the repository's size
	// after it.
	Bytes           int64 `json:"bytes"`
	Added           int64 `json:"added"`
	RepositoryBytes int64 `json:"repositoryBytes"`
	// OffsiteAt is when the copy to the off-site server completed;
	// OffsiteError why it did not.
	OffsiteAt    *time.Time `json:"offsiteAt,omitempty"`
	OffsiteError string     `json:"offsiteError,omitempty"`
	// Drill is the newest drill of this backup.
	Drill *DrillRecord `json:"drill,omitempty"`
}

// Drill outcomes.
const (
	DrillPassed = "passed"
	DrillFailed = "failed"
)

// DrillRecord is a restore drill's outcome.
type DrillRecord struct {
	Backup  string        `json:"backup"`
	At      time.Time     `json:"at"`
	Outcome string        `json:"outcome"`
	Offsite bool          `json:"offsite,omitempty"`
	Took    time.Duration `json:"took"`
	Error   string        `json:"error,omitempty"`
}

// UpdateRestoreBackup asks for an active tenant's data to be put back as
// one of its backups was (POST /v1/tenants/{name}/restore {"backup"}).
// It is accepted at once and runs as the tenant's next operation: a
// safety backup first, then a drill of the chosen backup, then the
// restore; a failure puts the safety backup back.
const UpdateRestoreBackup = "restoreBackup"

// ErrBackupNotFound is the failure type of a restore naming a backup the
// tenant does not have (HTTP 404, field backup).
const ErrBackupNotFound = "BackupNotFound"

// Reasons of the backups that other operations take first.
const (
	ReasonBeforeRestore = "before-restore" // a restore's safety backup
	ReasonBeforeRelease = "before-release" // a cut-over's (plan.backupBefore)
	ReasonFinal         = "final"          // a decommission's
)

// RestoreBackupRequest names the backup to restore.
type RestoreBackupRequest struct {
	Backup string `json:"backup"`
	By     string `json:"by"`
}

// Phases of a restore to a backup.
const (
	RestoreQueued       = "queued"
	RestoreSafetyBackup = "safety-backup"
	RestoreProving      = "proving"
	RestoreRestoring    = "restoring"
	RestoreRollingBack  = "rolling-back"
	RestoreSucceeded    = "succeeded"
	RestoreFailed       = "failed"
)

// BackupRestore is a restore of the tenant to one of its backups: the
// one under way or the last.
type BackupRestore struct {
	Backup      string    `json:"backup"`
	By          string    `json:"by"`
	RequestedAt time.Time `json:"requestedAt"`
	Phase       string    `json:"phase"`
	// SafetyBackup is the backup of the tenant as it was just before; it
	// is kept whatever the retention says, and put back if the restore
	// fails.
	SafetyBackup string     `json:"safetyBackup,omitempty"`
	StartedAt    *time.Time `json:"startedAt,omitempty"`
	FinishedAt   *time.Time `json:"finishedAt,omitempty"`
	Error        string     `json:"error,omitempty"`
}
