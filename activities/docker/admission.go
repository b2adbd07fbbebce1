package docker

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/tenantflow/tenantflow/activities/runtimes"
)

// Admission to the engine. A batch of tenants requested at once on one
// engine (200 of them, measured) swamps it: every start costs a mount, a
// network namespace and a port proxy, every health probe an exec, and
// the services themselves boot on the same cores. The engine then
// answers nothing in time, health budgets run out and tenants fail that
// the host could hold. So a tenant starts only once it is admitted: at
// most Config.StartingTenants are starting at a time (from admission
// until their health wait ends), and none more while the engine stalls
// on the probes of those starting. The others queue, first come first
// admitted, and wait for as long as the queue takes; their health
// budgets begin only once they start.
//
// The queue is the worker's own: two workers on one engine admit twice
// as many. A tenant admitted holds its place while its health wait runs
// on this worker, and otherwise for a lease after its last step here
// (admissionLease until its services start, startedLease after): a
// provisioning that stops between its steps (its worker gone, the
// workflow terminated) gives its place back without being told, and so
// does one whose health wait runs on another worker of the engine.
type admission struct {
	limit int
	now   func() time.Time

	mu       sync.Mutex
	starting map[string]time.Time // admitted tenants, until their lease ends (zero: held)
	queue    []string             // waiting tenants, first come first
	seen     map[string]time.Time // when each queued tenant last asked
	stallEnd time.Time            // no admission before this, unless none start
	changed  chan struct{}        // closed (and replaced) when anything changes
}

const (
	// admissionLease is how long an admitted tenant keeps its place
	// after its last step on the engine, until its services start: a
	// network create on a swamped engine can take minutes.
	admissionLease = 5 * time.Minute
	// startedLease is how long it keeps its place once a service started,
	// for its health wait to begin here.
	startedLease = 30 * time.Second
	// queueClaim is how long a queued tenant keeps its place without
	// asking again: a provisioning told to wait asks again at once,
	// waiting with heartbeats, and one whose worker died gives it up.
	queueClaim = time.Minute
	// stallPause is how long admission pauses after a probe of a
	// starting tenant stalled in the engine.
	stallPause = 5 * time.Second
	// admissionRecheck is how often a waiting tenant looks again
	// (a pause's end changes nothing else to wake it).
	admissionRecheck = time.Second
)

func newAdmission(limit int) *admission {
	return &admission{
		limit:    limit,
		now:      time.Now,
		starting: map[string]time.Time{},
		seen:     map[string]time.Time{},
		changed:  make(chan struct{}),
	}
}

// admit admits the tenant, or queues it: with wait it waits until its
// turn (reporting its place to progress as it changes) or ctx ends;
// without, it tells the tenant's place at once and keeps it for
// queueClaim. An admitted tenant asking again is admitted again.
func (a *admission) admit(ctx context.Context, tenant string, wait bool, progress func(runtimes.Admission)) (runtimes.Admission, error) {
	var last runtimes.Admission
	for {
		a.mu.Lock()
		now := a.now()
		a.expire(now)
		if _, ok := a.starting[tenant]; !ok && !slices.Contains(a.queue, tenant) {
			a.queue = append(a.queue, tenant)
		}
		a.seen[tenant] = now
		a.promote(now)
		st := a.state(tenant)
		if end := a.starting[tenant]; st.Admitted && !end.IsZero() {
			a.starting[tenant] = now.Add(admissionLease)
		}
		changed := a.changed
		a.mu.Unlock()
		if st.Admitted || !wait {
			return st, nil
		}
		if st != last && progress != nil {
			progress(st)
		}
		last = st
		timer := time.NewTimer(admissionRecheck)
		select {
		case <-ctx.Done():
			timer.Stop()
			return st, ctx.Err()
		case <-changed:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// state is the tenant's place (a.mu held).
func (a *admission) state(tenant string) runtimes.Admission {
	st := runtimes.Admission{Starting: len(a.starting), Limit: a.limit}
	if _, ok := a.starting[tenant]; ok {
		st.Admitted = true
		return st
	}
	st.Ahead = slices.Index(a.queue, tenant)
	return st
}

// promote admits queued tenants, first come first, while there is room
// and the engine keeps up (a.mu held).
func (a *admission) promote(now time.Time) {
	admitted := false
	for len(a.queue) > 0 && len(a.starting) < a.limit && (len(a.starting) == 0 || !now.Before(a.stallEnd)) {
		// Until it asks again, a tenant admitted holds its place only
		// as long as a queued one.
		a.starting[a.queue[0]] = now.Add(queueClaim)
		delete(a.seen, a.queue[0])
		a.queue = a.queue[1:]
		admitted = true
	}
	if admitted {
		a.signal()
	}
}

// expire drops the admitted tenants whose lease ended and the queued ones
// that stopped asking (a.mu held).
func (a *admission) expire(now time.Time) {
	dropped := false
	for t, end := range a.starting {
		if !end.IsZero() && now.After(end) {
			delete(a.starting, t)
			dropped = true
		}
	}
	kept := a.queue[:0]
	for _, t := range a.queue {
		if now.Sub(a.seen[t]) > queueClaim {
			delete(a.seen, t)
			dropped = true
			continue
		}
		kept = append(kept, t)
	}
	a.queue = kept
	if dropped {
		a.signal()
	}
}

// renew sets an admitted tenant's lease to d from now: it took a step
// and is still starting.
func (a *admission) renew(tenant string, d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if end, ok := a.starting[tenant]; ok && !end.IsZero() {
		a.starting[tenant] = a.now().Add(d)
	}
}

// hold keeps an admitted tenant's place, whatever the time, until it
// leaves: its health wait runs here.
func (a *admission) hold(tenant string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.starting[tenant]; ok {
		a.starting[tenant] = time.Time{}
	}
}

// leave ends the tenant's start (its health wait ended, or its
// provisioning is undone), making room for the next, or its place in
// the queue.
func (a *admission) leave(tenant string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, started := a.starting[tenant]
	queued := len(a.queue)
	delete(a.starting, tenant)
	delete(a.seen, tenant)
	a.queue = slices.DeleteFunc(a.queue, func(t string) bool { return t == tenant })
	switch {
	case started:
		a.promote(a.now())
		a.signal()
	case len(a.queue) != queued:
		a.signal() // those behind moved up
	}
}

// stalled tells that the engine did not run a starting service's probe
// in time: it is not keeping up, so admission pauses.
func (a *admission) stalled() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.stallEnd = a.now().Add(stallPause)
}

// signal wakes every waiting tenant (a.mu held).
func (a *admission) signal() {
	close(a.changed)
	a.changed = make(chan struct{})
}
