package tenant

import (
	"errors"
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// A fleet host whose worker and engine stay unreachable is found lost by
// the host watch (workflows/hosts), which signals each tenant placed on
// it: the tenant shows degraded, with why, and takes no operation but an
// evacuation. An evacuation is a move from the tenant's newest off-site
// backup onto a healthy host (the lost host cannot be read): the target
// is prepared as for a move, the databases start, the backup is restored
// from the off-site copy, the rest starts, and the route switches once
// healthy. The move records the backup and the recovery point: what the
// lost host may have held that the tenant no longer has. The lost host
// keeps what it held (never destroyed before its replacement is proven);
// its worker, once back, stops the containers of tenants no longer
// placed on it and refuses work while the host is lost.
//
// If the host comes back before an evacuation, the watch signals that:
// the tenant is active again on it.

// listenForHosts records the host watch's signals in the tenant's state;
// live applies them between operations.
func (t *entity) listenForHosts(ctx workflow.Context) {
	lost := workflow.GetSignalChannel(ctx, hosts.SignalHostLost)
	back := workflow.GetSignalChannel(ctx, hosts.SignalHostBack)
	workflow.Go(ctx, func(ctx workflow.Context) {
		for {
			s := workflow.NewSelector(ctx)
			s.AddReceive(lost, func(c workflow.ReceiveChannel, _ bool) {
				var in hosts.HostSignal
				c.Receive(ctx, &in)
				if p := t.state.Placement; p != nil && p.Host == in.Host && t.state.Degraded == nil {
					t.state.Degraded = &Degraded{Host: in.Host, Since: in.Since, Reason: "host " + in.Host + " is lost: " + in.Reason}
					t.logger(ctx).Warn("the tenant's host is lost", "host", in.Host, "since", in.Since)
				}
			})
			s.AddReceive(back, func(c workflow.ReceiveChannel, _ bool) {
				var in hosts.HostSignal
				c.Receive(ctx, &in)
				if d := t.state.Degraded; d != nil && d.Host == in.Host {
					t.state.Degraded = nil
					t.logger(ctx).Info("the tenant's host is back", "host", in.Host)
				}
			})
			s.Select(ctx)
		}
	})
}

// degradeDue: the tenant's state does not yet say what its host's
// signals said.
func (t *entity) degradeDue() bool {
	switch t.state.State {
	case StateActive:
		return t.state.Degraded != nil
	case StateDegraded:
		return t.state.Degraded == nil && !t.evacuationQueued()
	}
	return false
}

// degrade shows the host's loss (or its return) in the tenant's state.
func (t *entity) degrade(ctx workflow.Context) {
	if d := t.state.Degraded; d != nil {
		t.setState(ctx, StateDegraded, d.Reason)
		return
	}
	t.setState(ctx, StateActive, "")
}

func (t *entity) evacuationQueued() bool {
	m := t.state.Move
	return m != nil && m.Evacuation && m.Phase == MoveQueued
}

// validateEvacuation checks an evacuation request (MoveRequest.Evacuate).
func (t *entity) validateEvacuation() error {
	switch {
	case t.state.State != StateDegraded || t.state.Degraded == nil:
		return flow.Refuse(ErrMoveRefused, "tenant %s is %s: only a tenant whose host is lost is evacuated", t.spec.Name, t.state.State)
	case t.newestOffsite() == nil:
		return flow.Refuse(ErrMoveRefused, "tenant %s has no backup copied off-site: nothing to bring it back from", t.spec.Name)
	}
	return nil
}

// newestOffsite is the newest backup that reached the off-site copy.
func (t *entity) newestOffsite() *BackupRecord {
	b := t.state.Backups
	if b == nil {
		return nil
	}
	for i := len(b.List) - 1; i >= 0; i-- {
		if b.List[i].OffsiteAt != nil {
			return &b.List[i]
		}
	}
	return nil
}

// evacuate runs the queued evacuation (see above).
func (t *entity) evacuate(ctx workflow.Context) {
	m, started := t.state.Move, workflow.Now(ctx)
	m.StartedAt, m.StoppedAt = timePtr(started), timePtr(t.state.Degraded.Since)
	t.setState(ctx, StateMoving, "")
	t.state.Progress = flow.Progress{Total: 3}
	services := slices.Clone(t.state.Services)
	err := t.evacuateTo(ctx, m)
	m.FinishedAt = timePtr(workflow.Now(ctx))
	t.step("")
	if err != nil {
		m.Phase, m.Error = MoveFailed, err.Error()
		t.state.Services = services
		t.logger(ctx).Error("evacuation failed; the tenant stays degraded", "from", m.From, "error", err)
		t.setState(ctx, StateDegraded, t.state.Degraded.Reason)
		t.countOperation(ctx, "evacuate", "failed", started)
		return
	}
	m.Phase, t.state.Degraded = MoveDone, nil
	t.logger(ctx).Info("tenant evacuated", "from", m.From, "to", m.To, "backup", m.Backup, "recoveryPoint", m.RecoveryPoint, "recoveryAgeMs", m.RecoveryAgeMs)
	t.setState(ctx, StateActive, "")
	t.countOperation(ctx, "evacuate", "succeeded", started)
}

// evacuateTo brings the tenant up on another host from its newest
// off-site backup, undoing the target on failure, then gives the lost
// host's room back.
func (t *entity) evacuateTo(ctx workflow.Context, m *Move) error {
	src := *t.state.Placement
	b := t.newestOffsite()
	if b == nil {
		return errors.New("no backup was copied off-site")
	}
	m.Backup, m.RecoveryPoint = b.ID, timePtr(b.CreatedAt)
	m.RecoveryAgeMs = max(0, t.state.Degraded.Since.Sub(b.CreatedAt).Milliseconds())
	env, _ := t.liveEnv() // rendered at provisioning already: cannot fail now
	var undo flow.Saga
	target, err := t.prepareTarget(ctx, m, env, &undo)
	if err == nil {
		err = t.restoreOn(ctx, m, env, target, &undo)
	}
	if err != nil {
		return errors.New(undo.Undo(ctx, flow.ErrorMessage(err), "evacuation roll-back"))
	}
	t.state.Placement = &target
	if err := t.releaseHost(workflow.WithActivityOptions(ctx, integrationOptions), src.Host); err != nil {
		t.logger(ctx).Error("the lost host's room was not released", "host", src.Host, "error", err)
	}
	return nil
}

// restoreOn restores the backup onto the prepared target and switches
// the route to it once healthy.
func (t *entity) restoreOn(ctx workflow.Context, m *Move, env spec.Environment, target hosts.Placement, undo *flow.Saga) error {
	m.Phase = MoveSyncing
	t.step("restore " + m.Backup + " on " + target.Host)
	dumped := func(s spec.Service) bool { return s.Backup != nil }
	if err := t.startServicesOn(ctx, target.Queue, env, dumped); err != nil {
		return err
	}
	var restored restic.Restored
	if err := workflow.ExecuteActivity(onQueue(workflow.WithActivityOptions(ctx, backupOptions), target.Queue), rs.RestoreBackup, restic.RestoreInput{
		Tenant: t.spec.Name, Owner: t.state.ProvisionID, Runtime: t.template.Runtime, ID: m.Backup, Dumps: dumpedServices(env), Offsite: true,
	}).Get(ctx, &restored); err != nil {
		return err
	}
	t.stepDone()

	return t.startAndSwitch(ctx, m, env, target, func(s spec.Service) bool { return s.Backup == nil }, undo)
}
