// Package release is the Release workflow and its contract (type, Update,
// Query and Signal names, payloads, typed states): one image rolled out
// to the fleet, staging first, prod once promoted, each tenant cut over
// by its own entity workflow.
package release

import (
	"time"

	"github.com/tenantflow/tenantflow/activities/analysis"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// WorkflowType is the registered type name of a release.
const WorkflowType = "Release"

// WorkflowID is the id of a release's workflow, release:<id>; the
// release id is what the API and the CLI name.
func WorkflowID(id string) string { return "release:" + id }

// Release Updates and the promote Signal. promote is both: an Update for
// callers that want the verdict (REST), and a Signal so that
// `temporal workflow signal --name promote` works from the CLI.
const (
	UpdatePromote = "promote"
	SignalPromote = "promote"
	UpdatePause   = "pause"
	UpdateResume  = "resume"
	UpdateAbort   = "abort"
	// UpdateOverrideWindow lets tenants be cut over outside their
	// maintenance windows (an emergency fix): who, why, which tenants.
	UpdateOverrideWindow = "overrideWindow"
	QueryRelease         = "release"
	// QueryTenants answers a page of the release's tenants (TenantsPage).
	QueryTenants = "tenants"
	// QuerySummary answers the release without its tenants, counted by
	// status (Summary): what a poll of a release of thousands needs.
	QuerySummary = "summary"
)

// Failure types of rejected release requests.
const (
	ErrPromoteRejected        = "PromoteRejected"
	ErrReleaseControlRejected = "ReleaseControlRejected"
)

// TenantSelector picks the tenants a release covers: every tenant, the
// tenants of one stage, or a list of names (exactly one of the three).
type TenantSelector struct {
	All   bool     `json:"all,omitempty"`
	Stage string   `json:"stage,omitempty"`
	Names []string `json:"names,omitempty"`
}

// Plan says how a release rolls out.
type Plan struct {
	Tenants TenantSelector `json:"tenants"`
	// Canary prod tenants are updated first, alone in their wave.
	Canary int `json:"canary"`
	// BatchSize tenants form each later wave; MaxParallel of them are cut
	// over at the same time.
	BatchSize   int `json:"batchSize"`
	MaxParallel int `json:"maxParallel"`
	// MaxPerHost, when set, is how many of a wave's cut-overs may run at
	// once on one fleet host, so that cut-overs do not saturate one host's
	// CPU; the wave's other slots go to tenants of other hosts. Tenants
	// not placed on the fleet have no per-host limit. Zero: none beyond
	// MaxParallel (left out of histories, which keeps old ones decoding
	// the same).
	MaxPerHost int `json:"maxPerHost,omitempty"`
	// HealthTimeout is how long a new instance may take to become healthy
	// (zero: the template's checks decide); Drain is how long in-flight
	// requests get on the old instance after the route switched, before it
	// gets SIGTERM (zero: none; the API's default is DefaultDrain).
	HealthTimeout spec.Duration `json:"healthTimeout,omitempty"`
	Drain         spec.Duration `json:"drain,omitempty"`
	// FailureThreshold is how many tenants may fail (be rolled back) before
	// the release pauses for ops.
	FailureThreshold int `json:"failureThreshold"`
	// PromotionDeadline, when set, ends a release that was not promoted
	// within it after staging as not promoted.
	PromotionDeadline spec.Duration `json:"promotionDeadline,omitempty"`
	// BackupBefore makes each tenant's cut-over take a backup first (a
	// new version may migrate the database); the release lists it per
	// tenant, and the tenant can be put back to it.
	BackupBefore bool `json:"backupBefore,omitempty"`
	// Analysis, when set, watches the canaries once they are cut over
	// and compares them with tenants still on the old image; a
	// regression rolls the canaries back and pauses the release. It
	// needs Canary > 0.
	Analysis *AnalysisPlan `json:"analysis,omitempty"`
}

// AnalysisPlan is a canary analysis' period and thresholds. A zero
// threshold takes its default.
type AnalysisPlan struct {
	// Period is how long the canaries are watched after their cut-over.
	Period spec.Duration `json:"period"`
	// Delay is how long after the canaries' cut-over their probes start
	// to count (default 10s): the monitoring must first follow the new
	// instances (Prometheus applies file_sd changes in batches every 5 s,
	// and a probe of the retired instance fails).
	Delay spec.Duration `json:"delay,omitempty"`
	// MaxErrorRate is how much higher than the baseline's the canaries'
	// share of failed probes may be (default 0.05: five points).
	MaxErrorRate float64 `json:"maxErrorRate,omitempty"`
	// MaxLatencyRatio is how many times the baseline's mean latency the
	// canaries' may reach (default 1.5) once it is also MinLatencyRise
	// higher (default 100ms), so that noise on fast pages is no
	// regression.
	MaxLatencyRatio float64       `json:"maxLatencyRatio,omitempty"`
	MinLatencyRise  spec.Duration `json:"minLatencyRise,omitempty"`
	// MinProbes is how many probes of the canaries the verdict needs
	// (default 5); fewer make the analysis inconclusive.
	MinProbes int `json:"minProbes,omitempty"`
}

// Canary analysis defaults and bounds.
const (
	DefaultMaxErrorRate    = 0.05
	DefaultMaxLatencyRatio = 1.5
	DefaultMinLatencyRise  = 100 * time.Millisecond
	DefaultMinProbes       = 5
	DefaultAnalysisDelay   = 10 * time.Second
	MaxAnalysisDelay       = time.Hour
	MinAnalysisPeriod      = 10 * time.Second
	MaxAnalysisPeriod      = 24 * time.Hour
	// MaxBaselineTenants bounds the tenants on the old image the
	// canaries are compared with.
	MaxBaselineTenants = 20
)

// Defaults of a plan's unset numbers.
const (
	DefaultBatchSize = 5
	DefaultDrain     = 2 * time.Second
)

// Input starts (or continues as new) a release.
type Input struct {
	ID    string `json:"id"`
	Image string `json:"image"` // repo@sha256:…
	// Images overrides Image per tenant: a rollback release puts each
	// tenant back on the image it had before.
	Images map[string]string `json:"images,omitempty"`
	// Restores names, per tenant, the backup a rollback release puts its
	// data back to (the one the rolled-back release took before cutting
	// it over): a new version may have migrated the data.
	Restores    map[string]string `json:"restores,omitempty"`
	Plan        Plan              `json:"plan"`
	RequestedBy string            `json:"requestedBy,omitempty"`
	RollbackOf  string            `json:"rollbackOf,omitempty"`
	// Carried across continue-as-new: the state without its tenants, and
	// the tenants packed (see summary.go). A run continued before packing
	// existed carries them in State.
	State         *Release `json:"state,omitempty"`
	PackedTenants []byte   `json:"packedTenants,omitempty"`
	Cursor        *Cursor  `json:"cursor,omitempty"`
}

// Tenant is one tenant's part in a release.
type Tenant struct {
	Name       string       `json:"name"`
	Stage      Phase        `json:"stage"`
	Wave       int          `json:"wave"`
	Status     TenantStatus `json:"status"`
	From       string       `json:"from,omitempty"`
	To         string       `json:"to,omitempty"`
	Error      string       `json:"error,omitempty"`
	StartedAt  *time.Time   `json:"startedAt,omitempty"`
	FinishedAt *time.Time   `json:"finishedAt,omitempty"`
	// Host is the fleet host the tenant ran on when listed (empty when
	// not placed on the fleet, or when the plan sets no maxPerHost, which
	// is the only reason hosts are asked for).
	Host string `json:"host,omitempty"`
	// CutoverMillis is how long the tenant's cut-over took.
	CutoverMillis int64 `json:"cutoverMillis,omitempty"`
	// Backup is the backup the cut-over took first (plan.backupBefore, or
	// the safety backup of a restore).
	Backup string `json:"backup,omitempty"`
	// Restore is the backup the cut-over puts the tenant's data back to
	// (a rollback with restoreData); Restored says it did.
	Restore  string `json:"restore,omitempty"`
	Restored bool   `json:"restored,omitempty"`
	// WindowOpensAt is when the maintenance window of a tenant waiting
	// for it opens (TenantWaitingWindow); Override is ops' leave to cut
	// it over outside its window.
	WindowOpensAt *time.Time             `json:"windowOpensAt,omitempty"`
	Override      *tenant.WindowOverride `json:"override,omitempty"`
	// Deferred counts the times the tenant's window was closed when its
	// turn came.
	Deferred int `json:"deferred,omitempty"`
	// Canary: the tenant is in prod's canary wave, cut over before the
	// rest of prod (waiting for its window if need be).
	Canary bool `json:"canary,omitempty"`
	// Retried counts the times a canary was cut over again after a failed
	// analysis rolled it back and ops resumed.
	Retried int `json:"retried,omitempty"`
}

// Promotion records who promoted a release to prod.
type Promotion struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// Release is a release as the API shows it (the release query's answer).
type Release struct {
	ID          string     `json:"id"`
	Image       string     `json:"image"`
	RollbackOf  string     `json:"rollbackOf,omitempty"`
	Plan        Plan       `json:"plan"`
	RequestedBy string     `json:"requestedBy,omitempty"`
	State       State      `json:"state"`
	Phase       Phase      `json:"phase"`
	PauseReason string     `json:"pauseReason,omitempty"`
	Promotion   *Promotion `json:"promotion,omitempty"`
	Wave        int        `json:"wave"` // wave under way (1-based; 0 before the first)
	// Tenants is every tenant's part (the release query); a summary (an
	// Update's or the workflow's result) has Counts by status instead.
	Tenants  []Tenant             `json:"tenants"`
	Counts   map[TenantStatus]int `json:"counts,omitempty"`
	Progress flow.Progress        `json:"progress"`
	// Failures counts rolled-back and failed tenants; StagingFailed is set
	// when any staging tenant failed, which bars promotion.
	Failures      int    `json:"failures"`
	StagingFailed bool   `json:"stagingFailed,omitempty"`
	Error         string `json:"error,omitempty"`
	// PromoteRejected is why the last promote Signal was refused: a Signal
	// has no answer, so a CLI user reads it here.
	PromoteRejected string     `json:"promoteRejected,omitempty"`
	StartedAt       time.Time  `json:"startedAt"`
	FinishedAt      *time.Time `json:"finishedAt,omitempty"`
	// NextWindowAt is, while every tenant left waits for its maintenance
	// window, when the first of them opens; Overrides are the windows ops
	// overrode.
	NextWindowAt *time.Time `json:"nextWindowAt,omitempty"`
	Overrides    []Override `json:"overrides,omitempty"`
	// Analysis is the canary analysis (plan.analysis): under way, or its
	// verdict with the figures it was based on.
	Analysis *Analysis `json:"analysis,omitempty"`
}

// Analysis is one round of canary analysis.
type Analysis struct {
	// Round counts the analyses of this release (a failed one is run
	// again when ops resume).
	Round  int            `json:"round"`
	Status AnalysisStatus `json:"status"`
	// Canaries are the canary tenants cut over to the new image; Baseline
	// the tenants on the old image they are compared with over the same
	// time, or, when no tenant is left on it, empty: the canaries are
	// then compared with themselves over the period before their
	// cut-over (BaselineUntil).
	Canaries []string `json:"canaries"`
	Baseline []string `json:"baseline,omitempty"`
	// From and Until bound the probes that count: from the plan's delay
	// after the canaries' cut-over, for its period.
	From          time.Time  `json:"from"`
	Until         time.Time  `json:"until"`
	BaselineUntil *time.Time `json:"baselineUntil,omitempty"`
	// FirstCutover is when the first canary of the first round began its
	// cut-over: the probes before it are the old image's.
	FirstCutover *time.Time `json:"firstCutover,omitempty"`
	// CanaryFigures and BaselineFigures are what the probes saw.
	CanaryFigures   *analysis.Figures `json:"canaryFigures,omitempty"`
	BaselineFigures *analysis.Figures `json:"baselineFigures,omitempty"`
	// Verdict says why it passed, failed, or could not decide.
	Verdict string `json:"verdict,omitempty"`
}

// MaxOverrideTenants bounds the names one override lists (the release
// records them).
const MaxOverrideTenants = 1000

// Override records ops overriding maintenance windows: who, why, when,
// and which tenants (every tenant left when empty).
type Override struct {
	tenant.WindowOverride
	Tenants []string `json:"tenants,omitempty"`
}

// OverrideInput is the overrideWindow Update's argument: the tenants to
// cut over outside their windows (empty: every tenant the release has
// not cut over yet), who and why (required).
type OverrideInput struct {
	// Tenants are at most MaxOverrideTenants names.
	Tenants []string `json:"tenants,omitempty"`
	By      string   `json:"by"`
	Reason  string   `json:"reason"`
}

// PromoteInput is the promote Update's and Signal's argument. Release, when
// set, must name this release (a developer promoting the wrong release by
// id is told so instead of promoting this one).
type PromoteInput struct {
	Release string `json:"release,omitempty"`
	By      string `json:"by,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// ControlInput is the argument of pause, resume and abort.
type ControlInput struct {
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}
