package tenant

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
)

// Scheduled backups run in the entity, on its own durable timer, rather
// than from a Temporal Schedule: a backup is an operation of the tenant
// and must wait for a release's cut-over or a decommission under way,
// which only the entity knows; the next slot is a pure function of the
// policy and the tenant (docs/adr/0007-backups.md).

// Steps of a backup operation, as the progress query shows them.
const (
	StepTakeBackup  = "take backup"
	StepOffsiteCopy = "off-site copy"
	StepRetention   = "retention"
	StepDrill       = "restore drill"
)

// backupPolicy is the tenant's backup policy (template, then the
// tenant's overrides); ok is false when neither sets one, and for an
// OpenShift tenant: its volumes are claims the worker cannot read, kept
// in place by the cluster's storage (ADR 0003) until restic backups of
// claims exist.
func (t *entity) backupPolicy() (p spec.Backups, ok bool) {
	if t.template.Backups == nil && t.spec.Backups == nil || t.template.Runtime == spec.OpenShift {
		return p, false
	}
	if t.template.Backups != nil {
		p = *t.template.Backups
	}
	return p.Merge(t.spec.Backups).WithDefaults(), true
}

// backups is the tenant's data protection state, made on first use.
func (t *entity) backups() *Backups {
	if t.state.Backups == nil {
		p, _ := t.backupPolicy()
		t.state.Backups = &Backups{Policy: p}
	}
	return t.state.Backups
}

// scheduleBackups plans the first scheduled backup of an active tenant
// with a policy. The slot is computed in a side effect: its time zone
// rules come from the worker's tzdata, which may change between a run
// and its replay.
func (t *entity) scheduleBackups(ctx workflow.Context) {
	p, ok := t.backupPolicy()
	if !ok || t.state.State != StateActive || (t.state.Backups != nil && t.state.Backups.NextAt != nil) {
		return
	}
	b := t.backups()
	b.Policy = p
	b.NextAt = t.nextSlot(ctx, time.Time{})
}

// nextSlot is the scheduled backup after last (zero: the first).
func (t *entity) nextSlot(ctx workflow.Context, last time.Time) *time.Time {
	p := t.backups().Policy
	var next time.Time
	err := workflow.SideEffect(ctx, func(workflow.Context) any {
		loc, err := time.LoadLocation(p.TimeZone)
		if err != nil {
			loc = time.UTC // validated at creation; a worker without the zone falls back
		}
		return p.NextBackup(t.spec.Name, t.state.CreatedAt, last, loc)
	}).Get(&next)
	if err != nil {
		t.logger(ctx).Error("backup schedule", "error", err)
		return nil
	}
	return &next
}

// nextWake is the earliest due backup or drill of an active tenant: the
// main loop wakes then (zero: nothing scheduled).
func (t *entity) nextWake() time.Time {
	b := t.state.Backups
	if b == nil || t.state.State != StateActive {
		return time.Time{}
	}
	var wake time.Time
	for _, at := range []*time.Time{b.NextAt, b.NextDrillAt} {
		if at != nil && (wake.IsZero() || at.Before(wake)) {
			wake = *at
		}
	}
	return wake
}

// protectionDue: an active tenant has a requested backup, or a scheduled
// backup or drill is due.
func (t *entity) protectionDue(ctx workflow.Context) bool {
	b := t.state.Backups
	if b == nil || t.state.State != StateActive {
		return false
	}
	if len(b.Pending) > 0 {
		return true
	}
	wake := t.nextWake()
	return !wake.IsZero() && !workflow.Now(ctx).Before(wake)
}

// protect runs what is due: the oldest requested backup, else a
// scheduled one; then a drill if one is due.
func (t *entity) protect(ctx workflow.Context) {
	b, now := t.backups(), workflow.Now(ctx)
	switch {
	case len(b.Pending) > 0:
		p := b.Pending[0]
		b.Pending = slices.Delete(b.Pending, 0, 1)
		_, _ = t.backUp(ctx, p) // recorded on the tenant
	case b.NextAt != nil && !now.Before(*b.NextAt):
		_, _ = t.backUp(ctx, t.newBackup(ctx, ReasonScheduled, "", ""))
		b.NextAt = t.nextSlot(ctx, workflow.Now(ctx))
	}
	if b.NextDrillAt != nil && !workflow.Now(ctx).Before(*b.NextDrillAt) {
		t.drill(ctx)
	}
	t.reportProtection(ctx)
}

// newBackup names the tenant's next backup: the time it was asked for and
// its number, unique for the tenant.
func (t *entity) newBackup(ctx workflow.Context, reason, by, note string) PendingBackup {
	b, now := t.backups(), workflow.Now(ctx)
	b.Seq++
	return PendingBackup{ID: fmt.Sprintf("%s-%d", now.UTC().Format("20060102t150405z"), b.Seq),
		Reason: reason, By: by, Note: note, RequestedAt: now}
}

// backUp takes one backup, copies it off-site if the policy says so and
// prunes the repository to the retention. A failure is recorded on the
// tenant (LastError) and counted; the tenant serves on, untouched.
func (t *entity) backUp(ctx workflow.Context, p PendingBackup) (BackupRecord, error) {
	b, started := t.backups(), workflow.Now(ctx)
	b.Running = p.ID
	defer func() { b.Running = "" }()
	t.state.Progress = flow.Progress{Step: StepTakeBackup, Total: 3}
	env, _ := t.liveEnv() // rendered at provisioning already: cannot fail now
	var res restic.Backup
	err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, backupOptions)), rs.TakeBackup, restic.BackupInput{
		Tenant: t.spec.Name, Owner: t.state.ProvisionID, Runtime: t.template.Runtime, ID: p.ID,
		Volumes: archivedVolumes(env), Dumps: dumpedServices(env), Reason: p.Reason, Quiesce: quiesceOf(b.Policy, env),
	}).Get(ctx, &res)
	if err != nil {
		b.LastError = fmt.Sprintf("backup %s: %s", p.ID, flow.ErrorMessage(err))
		t.logger(ctx).Error("backup failed", "backup", p.ID, "error", err)
		t.countOperation(ctx, "backup", "failed", started)
		return BackupRecord{}, err
	}
	t.stepDone()
	rec := BackupRecord{ID: p.ID, Reason: p.Reason, By: p.By, CreatedAt: res.CreatedAt,
		Bytes: res.Bytes, Added: res.Added, RepositoryBytes: res.RepositoryBytes}
	if b.Policy.Offsite {
		t.copyOffsite(ctx, &rec)
	}
	t.stepDone()
	b.List = append(b.List, rec)
	b.LastError = ""
	if b.NextDrillAt == nil && b.Policy.DrillEvery > 0 {
		b.NextDrillAt = timePtr(workflow.Now(ctx)) // the first backup is drilled at once
	}
	t.applyRetention(ctx)
	t.stepDone()
	t.logger(ctx).Info("backup taken", "backup", p.ID, "reason", p.Reason, "bytes", res.Bytes, "added", res.Added)
	t.countOperation(ctx, "backup", "succeeded", started)
	m := workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"template": t.spec.Template, "stage": t.spec.Stage})
	m.Counter("tenantflow_backup_added_bytes_total").Inc(res.Added)
	return rec, nil
}

// copyOffsite copies the backup to the off-site server; a failure is
// recorded on the backup, which stays a good local backup.
func (t *entity) copyOffsite(ctx workflow.Context, rec *BackupRecord) {
	t.step(StepOffsiteCopy)
	var out restic.OffsiteCopy
	err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, backupOptions)), rs.CopyOffsite,
		restic.Ref{Tenant: t.spec.Name, ID: rec.ID}).Get(ctx, &out)
	if err != nil {
		rec.OffsiteError = flow.ErrorMessage(err)
		t.logger(ctx).Error("off-site copy failed", "backup", rec.ID, "error", err)
		return
	}
	rec.OffsiteAt = timePtr(out.CopiedAt)
	b := t.backups()
	b.NewestOffsiteAt = timePtr(rec.CreatedAt)
	switch {
	case out.Prune == "":
		b.OffsitePrune = nil
	case b.OffsitePrune == nil:
		b.OffsitePrune = &OffsitePrune{Queue: out.Prune}
	default:
		b.OffsitePrune.Queue = out.Prune
	}
}

// applyRetention prunes the repository to the policy and drops the
// forgotten backups from the list. A failed prune keeps them all: the
// next backup tries again.
func (t *entity) applyRetention(ctx workflow.Context) {
	t.step(StepRetention)
	b := t.backups()
	keep := b.Policy.Keep
	if keep.Total() == 0 {
		keep = spec.DefaultKeep // on-demand backups of a tenant without a policy
	}
	var out restic.Retention
	err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, backupOptions)), rs.ApplyRetention, restic.RetentionInput{
		Tenant: t.spec.Name, Keep: keep, TimeZone: b.Policy.TimeZone, Now: workflow.Now(ctx), Pinned: b.Pinned,
	}).Get(ctx, &out)
	if err != nil {
		t.logger(ctx).Warn("retention failed; backups kept", "error", err)
		return
	}
	b.List = slices.DeleteFunc(b.List, func(r BackupRecord) bool { return slices.Contains(out.Forgotten, r.ID) })
	if p := b.OffsitePrune; p != nil && b.Policy.Offsite {
		p.Due = p.Due || len(out.Forgotten) > 0
		if p.Due {
			t.pruneOffsite(ctx, p, keep)
		}
	}
}

// pruneOffsite applies the same retention to the off-site copy, through
// the pruner's queue. A failure keeps it due for the next backup; the
// off-site copy then holds more than the policy asks, never less.
func (t *entity) pruneOffsite(ctx workflow.Context, p *OffsitePrune, keep spec.Keep) {
	started, b := workflow.Now(ctx), t.backups()
	opts := offsitePruneOptions
	opts.TaskQueue = p.Queue
	var out restic.Retention
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), pr.PruneOffsite, restic.RetentionInput{
		Tenant: t.spec.Name, Keep: keep, TimeZone: b.Policy.TimeZone, Now: started, Pinned: b.Pinned,
	}).Get(ctx, &out)
	if err != nil {
		p.Error = flow.ErrorMessage(err)
		t.logger(ctx).Error("off-site retention failed; the off-site copy keeps more than the policy asks", "queue", p.Queue, "error", err)
		t.countOperation(ctx, "offsite-prune", "failed", started)
		return
	}
	p.Due, p.Error, p.PrunedAt, p.Forgotten = false, "", timePtr(workflow.Now(ctx)), out.Forgotten
	t.countOperation(ctx, "offsite-prune", "succeeded", started)
}

// drill restores the newest backup into scratch volumes and a scratch
// instance without network, checks it, and records the outcome. The
// off-site copy is drilled when there is one: it is the copy that must
// survive the loss of this site.
func (t *entity) drill(ctx workflow.Context) {
	b, started := t.backups(), workflow.Now(ctx)
	b.NextDrillAt = timePtr(started.Add(b.Policy.DrillEvery.D()))
	if len(b.List) == 0 {
		return
	}
	rec := &b.List[len(b.List)-1]
	t.step(StepDrill)
	env, _ := t.liveEnv()
	in := restic.DrillInput{Tenant: t.spec.Name, ID: rec.ID, Offsite: rec.OffsiteAt != nil, Dumps: dumpedServices(env)}
	var out restic.Drill
	err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, backupOptions)), rs.DrillBackup, in).Get(ctx, &out)
	d := &DrillRecord{Backup: rec.ID, At: started, Offsite: in.Offsite, Took: workflow.Now(ctx).Sub(started), Outcome: DrillPassed}
	outcome := "succeeded"
	if err != nil {
		d.Outcome, d.Error, outcome = DrillFailed, flow.ErrorMessage(err), "failed"
		t.logger(ctx).Error("restore drill failed", "backup", rec.ID, "offsite", in.Offsite, "error", err)
	}
	rec.Drill, b.LastDrill = d, d
	t.countOperation(ctx, "drill", outcome, started)
}

// reportProtection sets the tenant's data protection gauges. Every
// backup operation sets them again, so they are back within a day of a
// worker restart (metrics are not replayed).
func (t *entity) reportProtection(ctx workflow.Context) {
	b := t.state.Backups
	m := workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"tenant": t.spec.Name, "template": t.spec.Template, "stage": t.spec.Stage})
	if n := len(b.List); n > 0 {
		m.Gauge("tenantflow_backup_newest_timestamp_seconds").Update(float64(b.List[n-1].CreatedAt.Unix()))
	}
	if b.NewestOffsiteAt != nil {
		m.Gauge("tenantflow_backup_newest_offsite_timestamp_seconds").Update(float64(b.NewestOffsiteAt.Unix()))
	}
	if d := b.LastDrill; d != nil {
		ok := 0.0
		if d.Outcome == DrillPassed {
			ok = 1
		}
		m.Gauge("tenantflow_backup_drill_passed").Update(ok)
	}
}

// requestBackup queues an on-demand backup and answers at once with its
// id; it runs as the tenant's next operation.
func (t *entity) requestBackup(ctx workflow.Context, in BackupRequest) (BackupAccepted, error) {
	p := t.newBackup(ctx, ReasonOnDemand, in.By, in.Reason)
	b := t.backups()
	b.Pending = append(b.Pending, p)
	out := BackupAccepted{ID: p.ID, Queued: t.busy || len(b.Pending) > 1}
	switch {
	case t.busy && t.state.Progress.Step != "":
		out.WaitingFor = "the operation under way (" + t.state.Progress.Step + ")"
	case t.busy:
		out.WaitingFor = "the operation under way"
	case len(b.Pending) > 1:
		out.WaitingFor = fmt.Sprintf("backups requested before it (%d)", len(b.Pending)-1)
	}
	t.logger(ctx).Info("backup requested", "backup", p.ID, "by", in.By, "queued", out.Queued)
	return out, nil
}

func (t *entity) validateRequestBackup(ctx workflow.Context, in BackupRequest) error {
	if t.template.Runtime == spec.OpenShift {
		return temporal.NewApplicationError(fmt.Sprintf("tenant %s runs on OpenShift: its volumes are kept in place by the cluster's storage, not backed up by Tenantflow", t.spec.Name), ErrBackupRefused)
	}
	if t.state.State != StateActive {
		return temporal.NewApplicationError(fmt.Sprintf("tenant %s is %s: only an active tenant is backed up on demand", t.spec.Name, t.state.State), ErrBackupRefused)
	}
	return nil
}

// quiesceOf is the policy's quiesce hook with its service as the tenant
// runs it; nil without a hook.
func quiesceOf(p spec.Backups, env spec.Environment) *restic.Quiesce {
	q := p.Quiesce
	if q == nil {
		return nil
	}
	for _, s := range env.Services {
		if s.Name == q.Service {
			return &restic.Quiesce{Service: s, Pause: q.Pause, Resume: q.Resume}
		}
	}
	return nil // validated with the template: cannot happen
}
