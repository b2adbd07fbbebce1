package tenant

import (
	"errors"
	"fmt"
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// A move puts a placed tenant on another Docker host with its data:
//
//	reserve room on the target → network, volumes and databases there →
//	pre-copy: a live backup of the source, restored on the target →
//	stop the source's public service and those whose volumes are files
//	(the interruption starts) → final backup (what changed since),
//	restored on the target → the other services start there, healthy →
//	route and probes switch to the target (the interruption ends) →
//	retire the source: containers, network, volumes, and its room
//
// Until the route switched, a failure removes what the target got,
// starts the source's services again and gives the target's room back:
// the tenant serves on the source as before. The data travels through
// the tenant's restic repository (shared by the hosts' workers), so a
// move needs scheduled backups configured; the source's volumes go only
// once the target serves.

// ReasonMove is the reason of the backups that carry a move's data.
const ReasonMove = "move"

// moveDue: a move waits to run.
func (t *entity) moveDue() bool {
	m := t.state.Move
	return m != nil && m.Phase == MoveQueued && t.state.State == StateActive
}

// requestMove queues the move; it runs as the tenant's next operation.
func (t *entity) requestMove(ctx workflow.Context, in MoveRequest) (Move, error) {
	t.state.Move = &Move{From: t.state.Placement.Host, To: in.To, By: in.By, Phase: MoveQueued, RequestedAt: workflow.Now(ctx)}
	t.logger(ctx).Info("move requested", "from", t.state.Placement.Host, "to", in.To, "by", in.By, "queued behind an operation", t.busy)
	return *t.state.Move, nil
}

func (t *entity) validateMove(ctx workflow.Context, in MoveRequest) error {
	m := t.state.Move
	switch {
	case in.By == "" || in.To == "":
		return flow.Refuse(ErrMoveRefused, "a move needs a target host (to) and a requester (by)")
	case t.state.Placement == nil:
		return flow.Refuse(ErrMoveRefused, "tenant %s is not placed on a fleet host: it runs on the workers' shared engine", t.spec.Name)
	case t.state.State != StateActive:
		return flow.Refuse(ErrMoveRefused, "tenant %s is %s: only an active tenant moves", t.spec.Name, t.state.State)
	case in.To == t.state.Placement.Host:
		return flow.Refuse(ErrMoveRefused, "tenant %s runs on %s already", t.spec.Name, in.To)
	case m != nil && m.FinishedAt == nil:
		return flow.Refuse(ErrMoveRefused, "tenant %s is moving to %s already (asked by %s)", t.spec.Name, m.To, m.By)
	}
	return nil
}

// move runs the queued move (see above).
func (t *entity) move(ctx workflow.Context) {
	m, started := t.state.Move, workflow.Now(ctx)
	m.StartedAt = timePtr(started)
	t.setState(ctx, StateMoving, "")
	t.state.Progress = flow.Progress{Total: 4}
	services := slices.Clone(t.state.Services)
	err := t.moveData(ctx, m)
	m.FinishedAt = timePtr(workflow.Now(ctx))
	outcome := "succeeded"
	m.Phase = MoveDone
	if err != nil {
		outcome, m.Phase, m.Error = "failed", MoveFailed, err.Error()
		t.state.Services = services
		t.logger(ctx).Error("move failed; the tenant serves on its source", "from", m.From, "to", m.To, "error", err)
	} else {
		t.logger(ctx).Info("tenant moved", "from", m.From, "to", m.To, "interruptionMs", m.ServingAt.Sub(*m.StoppedAt).Milliseconds())
	}
	t.step("")
	t.setState(ctx, StateActive, "")
	t.countOperation(ctx, "move", outcome, started)
}

// moveData runs the move up to the route switch, undoing it on failure,
// then retires the source.
func (t *entity) moveData(ctx workflow.Context, m *Move) error {
	src := *t.state.Placement
	env, _ := t.liveEnv() // rendered at provisioning already: cannot fail now
	var undo flow.Saga
	target, err := t.prepareTarget(ctx, m, env, &undo)
	if err == nil {
		err = t.copyAndSwitch(ctx, m, env, target, &undo)
	}
	if err != nil {
		return errors.New(undo.Undo(ctx, flow.ErrorMessage(err), "move roll-back"))
	}
	t.retireSource(ctx, m, src, target)
	return nil
}

// prepareTarget reserves the target's room and makes the tenant's
// network, volumes and databases there.
func (t *entity) prepareTarget(ctx workflow.Context, m *Move, env spec.Environment, undo *flow.Saga) (hosts.Placement, error) {
	m.Phase = MovePreparing
	t.step("prepare " + m.To)
	p, err := t.reserveHost(ctx, env, m.To)
	if err != nil {
		return p, err
	}
	if p.Host != m.To {
		return p, fmt.Errorf("the registry placed the move on %s, not %s", p.Host, m.To)
	}
	undo.Add("release the room on "+p.Host, func(ctx workflow.Context) error {
		return t.releaseHost(workflow.WithActivityOptions(ctx, integrationOptions), p.Host)
	})
	ref := t.runtimeRef()
	for _, step := range []struct {
		name string
		make any
		undo any
		arg  any
	}{
		{"network", rt.CreateNetwork, rt.RemoveNetwork, ref},
		{"volumes", rt.CreateVolumes, rt.RemoveVolumes, runtimes.VolumesInput{Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: t.state.ProvisionID, Volumes: env.Volumes}},
	} {
		undo.Add("remove the "+step.name+" on "+p.Host, func(ctx workflow.Context) error {
			return onHostQueue(ctx, p.Queue, localStepOptions, step.undo, ref).Get(ctx, nil)
		})
		if err := onHostQueue(ctx, p.Queue, localStepOptions, step.make, step.arg).Get(ctx, nil); err != nil {
			return p, err
		}
	}
	undo.Add("remove the services on "+p.Host, func(ctx workflow.Context) error {
		return onHostQueue(ctx, p.Queue, localStepOptions, rt.RemoveServices, ref).Get(ctx, nil)
	})
	dumped := func(s spec.Service) bool { return s.Backup != nil }
	if err := t.startServicesOn(ctx, p.Queue, env, dumped); err != nil {
		return p, err
	}
	t.stepDone()
	return p, nil
}

// copyAndSwitch copies the data live, stops the source, copies what
// changed, starts the target and points the route at it.
func (t *entity) copyAndSwitch(ctx workflow.Context, m *Move, env spec.Environment, target hosts.Placement, undo *flow.Saga) error {
	m.Phase = MovePreCopy
	t.step("pre-copy to " + m.To)
	if err := t.carry(ctx, m, env, target, "pre-copy"); err != nil {
		return err
	}
	t.stepDone()

	m.Phase = MoveSyncing
	t.step("final sync to " + m.To)
	public := env.Services[t.svcIndex()].Name
	stopped := append(slices.DeleteFunc(t.fileServices(env), func(s string) bool { return s == public }), public)
	undo.Add("start the services on "+m.From+" again", func(ctx workflow.Context) error { return t.restartServices(ctx, env) })
	if err := t.stopServices(ctx, stopped); err != nil {
		return err
	}
	m.StoppedAt = timePtr(workflow.Now(ctx))
	if err := t.carry(ctx, m, env, target, "final"); err != nil {
		return err
	}
	t.stepDone()

	m.Phase = MoveStarting
	t.step("start on " + m.To)
	if err := t.startServicesOn(ctx, target.Queue, env, func(s spec.Service) bool { return s.Backup == nil }); err != nil {
		return err
	}
	var ep runtimes.Endpoint
	if err := workflow.ExecuteActivity(onQueue(workflow.WithActivityOptions(ctx, healthWaitOptions(env)), target.Queue), rt.WaitHealthy, env).Get(ctx, &ep); err != nil {
		return err
	}
	if err := t.switchTo(ctx, ep, undo); err != nil {
		return err
	}
	m.ServingAt = timePtr(workflow.Now(ctx))
	t.stepDone()
	return nil
}

// carry takes a backup on the source and restores it on the target.
func (t *entity) carry(ctx workflow.Context, m *Move, env spec.Environment, target hosts.Placement, what string) error {
	rec, err := t.backUp(ctx, t.newBackup(ctx, ReasonMove, m.By, "move to "+m.To+": "+what))
	if err != nil {
		return err
	}
	m.Backups = append(m.Backups, rec.ID)
	var restored restic.Restored
	return workflow.ExecuteActivity(onQueue(workflow.WithActivityOptions(ctx, backupOptions), target.Queue), rs.RestoreBackup, restic.RestoreInput{
		Tenant: t.spec.Name, Owner: t.state.ProvisionID, Runtime: t.template.Runtime, ID: rec.ID, Dumps: dumpedServices(env),
	}).Get(ctx, &restored)
}

// retireSource makes the target the tenant's host and removes what the
// source held. The target serves already: a failure here is logged and
// leaves stopped containers or volumes for ops, never an outage.
func (t *entity) retireSource(ctx workflow.Context, m *Move, src, target hosts.Placement) {
	m.Phase = MoveRetiring
	t.step("retire " + src.Host)
	t.state.Placement = &target
	ref := t.runtimeRef()
	for _, fn := range []any{rt.RemoveServices, rt.RemoveNetwork, rt.RemoveVolumes} {
		if err := onHostQueue(ctx, src.Queue, teardownLocalOptions, fn, ref).Get(ctx, nil); err != nil {
			t.logger(ctx).Error("source not fully retired", "host", src.Host, "error", err)
		}
	}
	if err := t.releaseHost(workflow.WithActivityOptions(ctx, integrationOptions), src.Host); err != nil {
		t.logger(ctx).Error("the source's room was not released", "host", src.Host, "error", err)
	}
	t.stepDone()
}
