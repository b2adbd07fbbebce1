package imagebuild

import "github.com/tenantflow/tenantflow/workflows/flow"

// State is where a build stands, as GET /v1/builds/{id} shows it.
type State string

// Build states.
const (
	StatePending   State = "pending"
	StateBuilding  State = "building"
	StateSucceeded State = "succeeded"
	StateFailed    State = "failed"
)

// stateNew is where a build begins.
const stateNew State = ""

// stateMoves: a build found in the registry succeeds without building.
var stateMoves = flow.Moves[State]{
	stateNew:      {StatePending},
	StatePending:  {StateBuilding, StateSucceeded, StateFailed},
	StateBuilding: {StateSucceeded, StateFailed},
}

// To is the move of a build in state s to next.
func (s State) To(next State) (State, error) { return stateMoves.Check("build state", s, next) }
