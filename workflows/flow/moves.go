package flow

import "fmt"

// Moves is a state machine's table: for each state, the states it may
// move to. A state absent from the table is final.
type Moves[S ~string] map[S][]S

// Check returns to when the table allows the move from from, and an
// error naming both (and what was allowed) when it does not. what names
// the machine in the error ("tenant state", "release phase").
func (m Moves[S]) Check(what string, from, to S) (S, error) {
	for _, s := range m[from] {
		if s == to {
			return to, nil
		}
	}
	return from, fmt.Errorf("%s: %q may not move to %q (allowed: %q)", what, from, to, m[from])
}

// Must is a move inside a workflow: a move the table forbids is a bug in
// the workflow, so it panics, which fails the workflow task. Temporal
// retries that task, so the workflow stops where it was (visible in the
// Web UI) until a fixed worker is deployed, instead of carrying on in a
// state nobody designed.
func Must[S ~string](s S, err error) S {
	if err != nil {
		panic(err)
	}
	return s
}
