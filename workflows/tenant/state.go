package tenant

import (
	"strings"

	"github.com/tenantflow/tenantflow/workflows/flow"
)

// State is a tenant's lifecycle state, as the API and the TenantState
// search attribute show it.
type State string

// Lifecycle states of a tenant.
const (
	StateProvisioning    State = "provisioning"
	StateActive          State = "active"
	StateUpdating        State = "updating" // a release's cut-over runs
	StateDecommissioning State = "decommissioning"
	StateDecommissioned  State = "decommissioned" // data kept until the retention ends, then purged
	StateRestoring       State = "restoring"      // brought back from its backup during retention, or put back to one while active
	StateMoving          State = "moving"         // its data and services go to another Docker host
	StateDegraded        State = "degraded"       // its host is lost (evacuate it, or wait for the host), or a repair failed
	StateFailed          State = "failed"         // provisioning failed; nothing is left of it
	StateSuspended       State = "suspended"      // services stopped, the maintenance page on its URL, data and accounts kept (disabled)
)

// States lists every lifecycle state (the values the TenantState search
// attribute takes).
var States = []State{
	StateProvisioning, StateActive, StateUpdating, StateDecommissioning,
	StateDecommissioned, StateRestoring, StateFailed, StateMoving, StateDegraded,
	StateSuspended,
}

// stateMoves is the tenant's lifecycle. A state moves to itself when
// the operation that set it records a new error message (provisioning
// starting, a purge ending).
var stateMoves = flow.Moves[State]{
	StateProvisioning:    {StateProvisioning, StateActive, StateFailed},
	StateActive:          {StateUpdating, StateDecommissioning, StateRestoring, StateMoving, StateDegraded, StateSuspended},
	StateSuspended:       {StateActive, StateSuspended, StateDecommissioning},
	StateMoving:          {StateActive, StateDegraded},
	StateDegraded:        {StateActive, StateMoving, StateDegraded},
	StateUpdating:        {StateActive},
	StateDecommissioning: {StateActive, StateDecommissioned, StateSuspended},
	StateDecommissioned:  {StateDecommissioned, StateRestoring},
	StateRestoring:       {StateActive, StateDecommissioned},
}

// To is the move of a tenant in state s to next, or an error when the
// lifecycle does not allow it.
func (s State) To(next State) (State, error) { return stateMoves.Check("tenant state", s, next) }

// Phase is where a decommission stands, as GET /v1/tenants/{name} shows
// it. A release's phases are another type (release.Phase).
type Phase string

// Phases of a decommission.
const (
	PhaseAwaitingConfirmation Phase = "awaiting-confirmation"
	PhaseConfirmed            Phase = "confirmed" // queued behind the operation under way
	PhaseStopping             Phase = "stopping"  // traffic off, services stopping
	PhaseBackingUp            Phase = "backing-up"
	PhaseVerifying            Phase = "verifying"
	PhaseTearingDown          Phase = "tearing-down"
	PhaseRetained             Phase = "retained" // decommissioned; data kept until RetentionUntil
	PhaseRestoreRequested     Phase = "restore-requested"
	PhaseRestoring            Phase = "restoring"
	PhaseRestored             Phase = "restored"
	PhasePurging              Phase = "purging"
	PhasePurged               Phase = "purged"
	PhaseCancelled            Phase = "cancelled"
	// PhaseFailed: stopped before the backup was verified; the tenant was
	// put back in service as it was.
	PhaseFailed Phase = "failed"
)

// phaseNew is where a decommission request begins: awaiting confirmation,
// or confirmed at once (force).
const phaseNew Phase = ""

// phaseMoves is a decommission's course. Until the backup is verified a
// failure ends it as failed (the tenant serves again); after, it only goes
// on. A failed restore leaves the tenant retained.
var phaseMoves = flow.Moves[Phase]{
	phaseNew:                  {PhaseAwaitingConfirmation, PhaseConfirmed},
	PhaseAwaitingConfirmation: {PhaseConfirmed, PhaseCancelled},
	PhaseConfirmed:            {PhaseStopping, PhaseFailed},
	PhaseStopping:             {PhaseBackingUp, PhaseFailed},
	PhaseBackingUp:            {PhaseBackingUp, PhaseVerifying, PhaseFailed},
	PhaseVerifying:            {PhaseTearingDown, PhaseFailed},
	PhaseTearingDown:          {PhaseRetained},
	PhaseRetained:             {PhaseRestoreRequested, PhasePurging},
	PhaseRestoreRequested:     {PhaseRestoring},
	PhaseRestoring:            {PhaseRestored, PhaseRetained},
	PhasePurging:              {PhasePurged},
}

// To is the move of a decommission in phase p to next, or an error when
// its course does not allow it.
func (p Phase) To(next Phase) (Phase, error) { return phaseMoves.Check("decommission phase", p, next) }

// ResourceKind names an outside system a tenant is registered in.
type ResourceKind string

// The outside systems a tenant is registered in, as its Resources name
// them.
const (
	KindRoute       ResourceKind = "route"
	KindDNS         ResourceKind = "dns"
	KindLDAP        ResourceKind = "ldap"
	KindCMDB        ResourceKind = "cmdb"
	KindSupervision ResourceKind = "supervision"
)

// moveTo moves the decommission to its next phase (see phaseMoves).
func (d *Decommission) moveTo(next Phase) { d.Phase = flow.Must(d.Phase.To(next)) }

// StatesText lists the lifecycle states for a message: "provisioning,
// active, …".
func StatesText() string {
	out := make([]string, len(States))
	for i, s := range States {
		out[i] = string(s)
	}
	return strings.Join(out, ", ")
}
