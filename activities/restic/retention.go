package restic

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// orphanAge is how old the parts of a backup without a manifest must be
// before a prune forgets them: younger ones may belong to a backup that
// another worker still takes.
const orphanAge = time.Hour

// dated is a complete backup as retention sees it.
type dated struct {
	ID string
	At time.Time
}

// retain chooses the backups that keep survives, as restic's forget
// policy does: walking from the newest, a backup is kept when it is among
// the Last newest, or when it is the newest of its day, ISO week or month
// (in loc) while fewer than Daily days, Weekly weeks or Monthly months
// have been kept; periods without backups do not count. Pinned backups
// are kept whatever the policy says. Both lists are oldest first.
func retain(backups []dated, keep spec.Keep, loc *time.Location, pinned []string) (kept, forgotten []string) {
	sorted := slices.Clone(backups)
	slices.SortFunc(sorted, func(x, y dated) int { // newest first
		return cmp.Or(y.At.Compare(x.At), cmp.Compare(y.ID, x.ID))
	})
	type bucket struct {
		left   int
		period func(t time.Time, nr int) int
		last   int
	}
	buckets := []*bucket{
		{keep.Last, func(_ time.Time, nr int) int { return nr }, -1},
		{keep.Daily, func(t time.Time, _ int) int { return t.Year()*10000 + int(t.Month())*100 + t.Day() }, -1},
		{keep.Weekly, func(t time.Time, _ int) int { y, w := t.ISOWeek(); return y*100 + w }, -1},
		{keep.Monthly, func(t time.Time, _ int) int { return t.Year()*100 + int(t.Month()) }, -1},
	}
	for nr, b := range sorted {
		t := b.At.In(loc)
		keepIt := slices.Contains(pinned, b.ID)
		for _, bk := range buckets {
			if bk.left <= 0 {
				continue
			}
			if p := bk.period(t, nr); p != bk.last {
				keepIt = true
				bk.last = p
				bk.left--
			}
		}
		if keepIt {
			kept = append(kept, b.ID)
		} else {
			forgotten = append(forgotten, b.ID)
		}
	}
	slices.Reverse(kept)
	slices.Reverse(forgotten)
	return kept, forgotten
}

// ApplyRetention forgets the tenant's backups that in.Keep (spec.DefaultKeep
// when it keeps nothing) does not keep, and the parts that failed
// backups left more than an hour ago, then prunes the repository. Only
// the local repository: the worker's off-site credential cannot delete,
// so the off-site copy is pruned by (*Pruner).PruneOffsite, in a
// process of its own, with the same input. A retry forgets what is
// left to forget; restic prune is itself resumable.
func (a *Activities) ApplyRetention(ctx context.Context, in RetentionInput) (Retention, error) {
	if err := a.enabled(); err != nil {
		return Retention{}, err
	}
	pol, err := in.policy()
	if err != nil {
		return Retention{}, err
	}
	p, stop := a.track(ctx, "retention of "+in.Tenant)
	defer stop()
	unlock, err := a.lockTenant(ctx, in.Tenant, p)
	if err != nil {
		return Retention{}, err
	}
	defer unlock()
	repo, ok, err := a.existingLocal(in.Tenant)
	if err != nil || !ok {
		return emptyRetention(), err
	}
	if err := a.unlockStale(ctx, repo); err != nil {
		return Retention{}, err
	}
	r, err := a.applyPolicy(ctx, repo, pol, p)
	if err != nil {
		return Retention{}, err
	}
	if r.RepositoryBytes, err = a.repositoryBytes(ctx, repo); err != nil {
		return Retention{}, err
	}
	a.log().Info("retention applied", "tenant", in.Tenant, "repository", repo.name,
		"kept", len(r.Kept), "forgotten", len(r.Forgotten), "repositoryBytes", r.RepositoryBytes)
	return r, nil
}

// policy is a RetentionInput checked, with its defaults.
type policy struct {
	tenant string
	keep   spec.Keep
	loc    *time.Location
	now    time.Time
	pinned []string
}

// policy checks the input and fills in its defaults: spec.DefaultKeep
// when Keep keeps nothing, UTC, the clock.
func (in RetentionInput) policy() (policy, error) {
	if err := validTenant(in.Tenant); err != nil {
		return policy{}, err
	}
	pol := policy{tenant: in.Tenant, keep: in.Keep, loc: time.UTC, now: in.Now, pinned: in.Pinned}
	if k := pol.keep; k.Last < 0 || k.Daily < 0 || k.Weekly < 0 || k.Monthly < 0 {
		return policy{}, invalid("retention of tenant %s: counts must not be negative: %+v", in.Tenant, k)
	}
	if pol.keep.Total() == 0 {
		pol.keep = spec.DefaultKeep
	}
	if in.TimeZone != "" {
		l, err := time.LoadLocation(in.TimeZone)
		if err != nil {
			return policy{}, invalid("retention of tenant %s: %q is not a known time zone", in.Tenant, in.TimeZone)
		}
		pol.loc = l
	}
	if pol.now.IsZero() {
		pol.now = time.Now()
	}
	return pol, nil
}

// applyPolicy forgets in repo the complete backups that pol does not
// keep and the parts of backups without a manifest whose newest is
// older than orphanAge, then prunes repo when it forgot anything. Both
// the local repository and the off-site copy go through it: in one, the
// parts of a backup that failed; in the other, those of a copy that was
// interrupted between the parts and the manifest (restic copy runs
// twice, and the tenant's workflow never prunes between the two). The
// caller keeps our other writers away from repo. RepositoryBytes is
// left to the caller.
func (a *Activities) applyPolicy(ctx context.Context, repo repository, pol policy, p *progress) (Retention, error) {
	log := a.log().With("tenant", pol.tenant, "repository", repo.name)
	snaps, err := a.snapshots(ctx, repo, "")
	if err != nil {
		return Retention{}, err
	}
	byBackup := map[string][]snapshot{}
	var backups []dated
	for _, s := range snaps {
		id := s.tag(tagBackup)
		if id == "" {
			continue // not ours: left alone
		}
		byBackup[id] = append(byBackup[id], s)
		if s.has(tagManifest) {
			backups = append(backups, dated{ID: id, At: s.Time})
		}
	}
	kept, forgotten := retain(backups, pol.keep, pol.loc, pol.pinned)
	var ids []string
	for _, id := range forgotten {
		ids = append(ids, snapshotIDs(byBackup[id])...)
	}
	for id, parts := range byBackup {
		if _, complete := manifestOf(parts); complete {
			continue
		}
		newest := slices.MaxFunc(parts, func(x, y snapshot) int { return x.Time.Compare(y.Time) })
		if pol.now.Sub(newest.Time) > orphanAge {
			ids = append(ids, snapshotIDs(parts)...)
			log.Info("forgetting the parts of a backup that never completed", "backup", id, "snapshots", len(parts))
		}
	}
	if len(ids) > 0 {
		label := p.current()
		p.stage(label + ": forget")
		if err := a.forget(ctx, repo, ids); err != nil {
			return Retention{}, err
		}
		// Only after a forget: a prune reads every tree of the
		// repository, which is not worth it when nothing was forgotten.
		// What killed attempts left unreferenced waits for the next one.
		p.stage(label + ": prune")
		if _, err := a.run(ctx, command{repo: repo, args: []string{"prune"}}); err != nil {
			return Retention{}, err
		}
	}
	r := emptyRetention()
	r.Kept = append(r.Kept, kept...)
	r.Forgotten = append(r.Forgotten, forgotten...)
	return r, nil
}

// emptyRetention is the outcome of a retention with nothing to look at;
// its lists are empty, not null, in JSON.
func emptyRetention() Retention {
	return Retention{Kept: []string{}, Forgotten: []string{}}
}
