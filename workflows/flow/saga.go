package flow

import (
	"errors"

	"go.temporal.io/sdk/workflow"
)

// compensation undoes one step of a failed operation.
type compensation struct {
	name string
	run  func(ctx workflow.Context) error
}

// Saga collects compensations as steps begin (a step that fails half-way
// may have made something) and runs them in reverse order.
type Saga []compensation

// Add registers the undo of a step about to begin.
func (s *Saga) Add(name string, run func(ctx workflow.Context) error) {
	*s = append(*s, compensation{name: name, run: run})
}

// Compensate runs every compensation, latest first, on a disconnected
// context so that a cancelled workflow still cleans up. It goes on past a
// failing compensation and reports all failures.
func (s Saga) Compensate(ctx workflow.Context) error {
	ctx, cancel := workflow.NewDisconnectedContext(ctx)
	defer cancel()
	var errs error
	for i := len(s) - 1; i >= 0; i-- {
		if err := s[i].run(ctx); err != nil {
			workflow.GetLogger(ctx).Error("compensation failed", "step", s[i].name, "error", err)
			errs = errors.Join(errs, errors.New(s[i].name+": "+ErrorMessage(err)))
		}
	}
	return errs
}

// Undo compensates and returns msg, the failure that made the operation
// undo itself, with what could not be undone appended ("; <what>
// incomplete: …"), for the tenant's error and the Web UI.
func (s Saga) Undo(ctx workflow.Context, msg, what string) string {
	if err := s.Compensate(ctx); err != nil {
		return msg + "; " + what + " incomplete: " + err.Error()
	}
	return msg
}
