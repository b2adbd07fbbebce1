package flow

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/workflow"
)

// Group runs independent steps side by side, each in its own workflow
// coroutine, and collects their failures.
type Group struct {
	ctx  workflow.Context
	wg   workflow.WaitGroup
	errs error
}

// NewGroup starts a group whose steps run on ctx (cancel it to stop them).
func NewGroup(ctx workflow.Context) *Group {
	return &Group{ctx: ctx, wg: workflow.NewWaitGroup(ctx)}
}

// Go runs fn beside the group's other steps; its error is kept as it is.
func (g *Group) Go(fn func(ctx workflow.Context) error) {
	g.wg.Add(1)
	workflow.Go(g.ctx, func(ctx workflow.Context) {
		defer g.wg.Done()
		if err := fn(ctx); err != nil {
			g.errs = errors.Join(g.errs, err)
		}
	})
}

// Run is Go for a named step: its failure reads "what: cause".
func (g *Group) Run(what string, fn func(ctx workflow.Context) error) {
	g.Go(func(ctx workflow.Context) error {
		if err := fn(ctx); err != nil {
			return fmt.Errorf("%s: %s", what, ErrorMessage(err))
		}
		return nil
	})
}

// Wait returns once every step ended, with their failures joined.
func (g *Group) Wait(ctx workflow.Context) error {
	g.wg.Wait(ctx)
	return g.errs
}
