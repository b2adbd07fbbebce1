// Package reconcile is the drift reconcile: one workflow ("reconcile")
// that, every round, compares each engine (every fleet host's, and the
// shared engine of the main workers), the proxy's routes and the DNS
// records with what the tenants' own states expect, and acts on what
// differs:
//
//   - orphan: an object of a tenant that does not exist, of another run
//     than the tenant's provisioning, of a decommissioned tenant (its
//     containers, network, route, record), or not where the tenant runs.
//     Orphans are reported; those of a finished run (the tenant is gone,
//     or its provisioning is another run) are removed once seen for the
//     grace period, never a volume: data is never destroyed here.
//   - missing: a container, network, volume, route or record of an active
//     tenant is gone.
//   - stopped: an active tenant's container exists but does not run.
//
// Missing and stopped objects are repaired by the tenant's own workflow
// (the repair Update, workflows/tenant/repair.go): it starts them again,
// or shows the tenant degraded with why. The last round is the answer of
// the "reconcile" query (GET /v1/reconcile) and sets the metrics
// tenantflow_drift_objects{kind}, tenantflow_drift_repairs_total{outcome}
// and tenantflow_drift_orphans_removed_total.
package reconcile

import "time"

// The workflow's names.
const (
	WorkflowType   = "Reconcile"
	WorkflowID     = "reconcile"
	QueryReconcile = "reconcile"
)

// Defaults of the input.
const (
	DefaultEvery = 5 * time.Minute
	DefaultGrace = time.Hour
	// rounds bounds a run's history: it continues as new after.
	rounds = 100
)

// Input starts the reconcile, and carries what it knows across runs.
type Input struct {
	// Every is the time between rounds (DefaultEvery when 0).
	Every time.Duration `json:"every,omitempty"`
	// Grace is how long an orphan of a finished run is reported before
	// it is removed (DefaultGrace when 0).
	Grace time.Duration `json:"grace,omitempty"`
	// Seen is when each finding still present was first seen, by key.
	Seen map[string]time.Time `json:"seen,omitempty"`
	// Last is the last round's report.
	Last *Report `json:"last,omitempty"`
}

// Kind is what a finding is.
type Kind string

// Kinds of findings.
const (
	KindOrphan  Kind = "orphan"
	KindMissing Kind = "missing"
	KindStopped Kind = "stopped"
)

// Kinds lists every kind (each has its gauge, zero included).
var Kinds = []Kind{KindOrphan, KindMissing, KindStopped}

// Objects the reconcile compares besides the runtime's (container,
// network, volume).
const (
	ObjectRoute = "route"
	ObjectDNS   = "dns"
)

// SharedEngine names the main workers' engine in a report (hosts are
// named as registered).
const SharedEngine = "(shared)"

// Actions taken on a finding.
const (
	ActionReported        = "reported"
	ActionRemoved         = "removed"
	ActionKept            = "reported; volumes are never removed"
	ActionRepairRequested = "repair requested"
	ActionRepairUnderWay  = "repair under way"
)

// Finding is one difference between what runs and what is expected.
type Finding struct {
	Kind Kind `json:"kind"`
	// Object is container, network, volume, route or dns; Name and ID
	// name it.
	Object string `json:"object"`
	Name   string `json:"name"`
	ID     string `json:"id,omitempty"`
	// Host is where it was found (SharedEngine: the main workers');
	// empty for routes and records.
	Host    string `json:"host,omitempty"`
	Tenant  string `json:"tenant"`
	Owner   string `json:"owner,omitempty"`
	Service string `json:"service,omitempty"`
	Reason  string `json:"reason"`
	// OwnerFinished: the run that made it is over (an orphan of it is
	// removed after the grace period).
	OwnerFinished bool      `json:"ownerFinished,omitempty"`
	FirstSeen     time.Time `json:"firstSeen"`
	Action        string    `json:"action"`
}

// key identifies a finding across rounds (for its first-seen time).
func (f Finding) key() string {
	return string(f.Kind) + "|" + f.Object + "|" + f.Host + "|" + f.Tenant + "|" + f.Name + "|" + f.ID
}

// HostReport is what one engine's scan found.
type HostReport struct {
	Host    string `json:"host"`
	Scanned bool   `json:"scanned"`
	// Problem says why it was not scanned.
	Problem string       `json:"problem,omitempty"`
	Objects int          `json:"objects"`
	Counts  map[Kind]int `json:"counts"`
}

// Report is one round's findings.
type Report struct {
	At      time.Time    `json:"at"`
	TookMs  int64        `json:"tookMs"`
	Every   string       `json:"every"`
	Grace   string       `json:"grace"`
	Tenants int          `json:"tenants"`
	Hosts   []HostReport `json:"hosts"`
	// Counts are the findings by kind; Removed the orphans removed and
	// Repairs the repairs requested this round.
	Counts   map[Kind]int `json:"counts"`
	Removed  int          `json:"removed"`
	Repairs  int          `json:"repairs"`
	Findings []Finding    `json:"findings"`
	// Notes say what was not compared (proxy or DNS unreadable, …).
	Notes []string `json:"notes,omitempty"`
}
