package hosts

import "github.com/tenantflow/tenantflow/workflows/flow"

// HostState is where a host stands in the fleet.
type HostState string

// States of a host.
const (
	StateActive   HostState = "active"   // takes new tenants
	StateCordoned HostState = "cordoned" // serves its tenants, takes no new one
	StateDraining HostState = "draining" // cordoned, its tenants moving away
	StateLost     HostState = "lost"     // unreachable past the threshold; fenced until evacuated and brought back
)

// String is the state's name.
func (s HostState) String() string { return string(s) }

// hostMoves is a host's lifecycle: any state may be found lost; a lost
// host comes back cordoned (fenced: nothing is placed on it until ops
// uncordon it).
var hostMoves = flow.Moves[HostState]{
	StateActive:   {StateCordoned, StateDraining, StateLost},
	StateCordoned: {StateActive, StateDraining, StateLost},
	StateDraining: {StateCordoned, StateActive, StateLost},
	StateLost:     {StateCordoned},
}

// To is the move of a host in state s to next, or an error when the
// lifecycle does not allow it.
func (s HostState) To(next HostState) (HostState, error) {
	return hostMoves.Check("host state", s, next)
}
