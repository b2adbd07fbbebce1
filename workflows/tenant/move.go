package tenant

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/activities/volsync"
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
// the tenant serves on the source as before. The source's volumes go
// only once the target serves.
//
// The data travels directly from the source host's worker to the
// target's (activities/volsync, like rsync): a live pre-copy of every
// volume, then, with every service stopped, a final pass that sends only
// what changed and is verified entry by entry. Databases travel as their
// files, stopped cleanly, so the target starts on exactly the source's
// data. Moves recorded before that (version DefaultVersion of
// moveDirectCopy) carried the data through restic backups, and replay so.

// ReasonMove is the reason of the backups that carried a move's data
// before moves copied directly.
const ReasonMove = "move"

// moveDirectCopy is the version of the move that copies host to host.
const moveDirectCopy = "move-direct-copy"

// moveDue: a move waits to run.
func (t *entity) moveDue() bool {
	m := t.state.Move
	if m == nil || m.Phase != MoveQueued {
		return false
	}
	if m.Evacuation {
		return t.state.State == StateDegraded
	}
	return t.state.State == StateActive && t.state.Degraded == nil
}

// requestMove queues the move; it runs as the tenant's next operation.
func (t *entity) requestMove(ctx workflow.Context, in MoveRequest) (Move, error) {
	t.state.Move = &Move{From: t.state.Placement.Host, To: in.To, By: in.By, Phase: MoveQueued, RequestedAt: workflow.Now(ctx), Evacuation: in.Evacuate}
	t.logger(ctx).Info("move requested", "from", t.state.Placement.Host, "to", in.To, "by", in.By, "queued behind an operation", t.busy)
	return *t.state.Move, nil
}

func (t *entity) validateMove(ctx workflow.Context, in MoveRequest) error {
	m := t.state.Move
	switch {
	case in.By == "":
		return flow.Refuse(ErrMoveRefused, "a move needs a requester (by)")
	case t.state.Placement == nil:
		return flow.Refuse(ErrMoveRefused, "tenant %s is not placed on a fleet host: it runs on the workers' shared engine", t.spec.Name)
	case m != nil && m.FinishedAt == nil:
		return flow.Refuse(ErrMoveRefused, "tenant %s is moving to %s already (asked by %s)", t.spec.Name, m.To, m.By)
	case in.Evacuate:
		return t.validateEvacuation()
	case t.state.State != StateActive:
		return flow.Refuse(ErrMoveRefused, "tenant %s is %s: only an active tenant moves", t.spec.Name, t.state.State)
	case in.To == t.state.Placement.Host:
		return flow.Refuse(ErrMoveRefused, "tenant %s runs on %s already", t.spec.Name, in.To)
	}
	return nil
}

// move runs the queued move (see above).
func (t *entity) move(ctx workflow.Context) {
	if t.state.Move.Evacuation {
		t.evacuate(ctx)
		return
	}
	m, started := t.state.Move, workflow.Now(ctx)
	m.StartedAt = timePtr(started)
	t.setState(ctx, StateMoving, "")
	t.state.Progress = flow.Progress{Total: 4}
	services := slices.Clone(t.state.Services)
	m.Direct = workflow.GetVersion(ctx, moveDirectCopy, workflow.DefaultVersion, 1) == 1
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
	t.step("prepare " + cmp.Or(m.To, "a host"))
	p, err := t.reserveTarget(ctx, m, env)
	if err != nil {
		return p, err
	}
	if m.To == "" {
		m.To = p.Host
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
	if m.Direct || m.Evacuation {
		if p.Sync == "" && !m.Evacuation {
			return p, fmt.Errorf("host %s has no sync address: register it with \"sync\" (its worker's %s) to move tenants onto it", p.Host, volsync.EnvListen)
		}
		// Made now, started once the data is there: the start is all
		// that stays in the interruption.
		if err := t.createServicesOn(ctx, p.Queue, env); err != nil {
			return p, err
		}
		t.stepDone()
		return p, nil
	}
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
	if err := t.carry(ctx, m, env, target, false); err != nil {
		return err
	}
	t.stepDone()

	m.Phase = MoveSyncing
	t.step("final sync to " + m.To)
	public := env.Services[t.svcIndex()].Name
	stopped := append(slices.DeleteFunc(t.fileServices(env), func(s string) bool { return s == public }), public)
	if m.Direct {
		stopped = t.allServices(env)
	}
	undo.Add("start the services on "+m.From+" again", func(ctx workflow.Context) error { return t.restartServices(ctx, env) })
	if err := t.stopServices(ctx, stopped); err != nil {
		return err
	}
	m.StoppedAt = timePtr(workflow.Now(ctx))
	if err := t.carry(ctx, m, env, target, true); err != nil {
		return err
	}
	t.stepDone()

	return t.startAndSwitch(ctx, m, env, target, func(s spec.Service) bool { return m.Direct || s.Backup == nil }, undo)
}

// startAndSwitch starts the services which names on the target, waits
// until it is healthy and switches the route and probes to it: the end
// of the interruption.
func (t *entity) startAndSwitch(ctx workflow.Context, m *Move, env spec.Environment, target hosts.Placement, which func(spec.Service) bool, undo *flow.Saga) error {
	m.Phase = MoveStarting
	t.step("start on " + target.Host)
	if err := t.startServicesOn(ctx, target.Queue, env, which); err != nil {
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

// carry copies the tenant's data to the target: its volumes, directly
// (final: with every service stopped, verified); before moves copied
// directly, a backup on the source restored on the target.
func (t *entity) carry(ctx workflow.Context, m *Move, env spec.Environment, target hosts.Placement, final bool) error {
	if m.Direct {
		opts := copyOptions
		if final {
			opts = finalCopyOptions
		}
		var pushed volsync.Pushed
		err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, opts)), vs.PushVolumes, volsync.PushInput{
			Tenant: t.spec.Name, Owner: t.state.ProvisionID, Volumes: env.Volumes, To: target.Sync, Final: final,
		}).Get(ctx, &pushed)
		if err == nil {
			m.Copies = append(m.Copies, pushed)
		}
		return err
	}
	what := "pre-copy"
	if final {
		what = "final"
	}
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

// reserveTarget reserves the move's room: on m.To, or (m.To empty) on
// the host the registry chooses, never the source. A move copying
// directly names itself in the reservation, so a later move of the same
// provisioning is a new reservation, not the replay of this one.
func (t *entity) reserveTarget(ctx workflow.Context, m *Move, env spec.Environment) (hosts.Placement, error) {
	if !m.Direct && !m.Evacuation {
		return t.reserveHost(ctx, env, hosts.ReserveInput{Pin: m.To})
	}
	return t.reserveHost(ctx, env, hosts.ReserveInput{Pin: m.To, From: m.From, Op: m.op() + "@" + m.RequestedAt.UTC().Format(time.RFC3339Nano)})
}

// allServices names every service, the public one first: a move stops
// them all, so every volume (a database's files too) is at rest.
func (t *entity) allServices(env spec.Environment) []string {
	public := env.Services[t.svcIndex()].Name
	out := []string{public}
	for _, s := range env.Services {
		if s.Name != public {
			out = append(out, s.Name)
		}
	}
	return out
}

// createServicesOn makes every service's instance on a host's queue,
// without starting it.
func (t *entity) createServicesOn(ctx workflow.Context, queue string, env spec.Environment) error {
	var futures []workflow.Future
	for _, svc := range env.Services {
		futures = append(futures, onHostQueue(ctx, queue, localStepOptions, rt.CreateService,
			runtimes.ServiceInput{Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: t.state.ProvisionID, Service: svc}))
	}
	var errs error
	for _, f := range futures {
		errs = errors.Join(errs, f.Get(ctx, nil))
	}
	return errs
}

// op names the move's kind in its reservation.
func (m *Move) op() string {
	if m.Evacuation {
		return "evacuate"
	}
	return "move"
}
