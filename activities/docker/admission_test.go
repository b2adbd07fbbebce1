package docker

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/runtimes"
)

// clock is a settable time for the admission's leases.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestAdmission(limit int) (*admission, *clock) {
	c := &clock{t: time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)}
	a := newAdmission(limit)
	a.now = c.now
	return a, c
}

func place(t *testing.T, a *admission, tenant string) runtimes.Admission {
	t.Helper()
	st, err := a.admit(context.Background(), tenant, false, nil)
	require.NoError(t, err)
	return st
}

// At most the limit start at once; the others are admitted first come
// first as those starting end, and asking again never loses a place.
func TestAdmissionIsFirstComeFirstAdmitted(t *testing.T) {
	a, _ := newTestAdmission(2)
	require.True(t, place(t, a, "a").Admitted)
	require.True(t, place(t, a, "b").Admitted)
	require.Equal(t, runtimes.Admission{Ahead: 0, Starting: 2, Limit: 2}, place(t, a, "c"))
	require.Equal(t, runtimes.Admission{Ahead: 1, Starting: 2, Limit: 2}, place(t, a, "d"))
	require.Equal(t, 0, place(t, a, "c").Ahead, "asking again keeps the place")
	require.True(t, place(t, a, "a").Admitted, "an admitted tenant stays admitted")

	a.leave("b")
	require.False(t, place(t, a, "d").Admitted, "d is behind c")
	require.True(t, place(t, a, "c").Admitted)
	a.leave("a")
	require.True(t, place(t, a, "d").Admitted)
}

// A tenant waiting is admitted as soon as one starting ends, and reports
// its place while it waits.
func TestAWaitingTenantIsAdmittedWhenOneEnds(t *testing.T) {
	a, _ := newTestAdmission(1)
	require.True(t, place(t, a, "a").Admitted)
	var mu sync.Mutex
	var seen []runtimes.Admission
	done := make(chan runtimes.Admission)
	go func() {
		st, err := a.admit(context.Background(), "b", true, func(st runtimes.Admission) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, st)
		})
		require.NoError(t, err)
		done <- st
	}()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) > 0 }, 5*time.Second, time.Millisecond)
	select {
	case <-done:
		t.Fatal("admitted while a was starting")
	case <-time.After(50 * time.Millisecond):
	}
	a.leave("a")
	select {
	case st := <-done:
		require.True(t, st.Admitted)
	case <-time.After(5 * time.Second):
		t.Fatal("not admitted after a ended")
	}
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, runtimes.Admission{Ahead: 0, Starting: 1, Limit: 1}, seen[0])
}

// A tenant that stops asking gives its place back: admitted, after its
// lease (renewed by its steps); queued, after it stops asking.
func TestAbandonedPlacesAreGivenBack(t *testing.T) {
	a, c := newTestAdmission(1)
	require.True(t, place(t, a, "a").Admitted)
	require.Equal(t, 0, place(t, a, "b").Ahead)
	require.Equal(t, 1, place(t, a, "c").Ahead)

	c.add(admissionLease - time.Second)
	a.renew("a", admissionLease)
	require.False(t, place(t, a, "c").Admitted, "a renewed its lease")
	require.Equal(t, 0, place(t, a, "c").Ahead, "b stopped asking: dropped from the queue")

	c.add(admissionLease + time.Second)
	require.True(t, place(t, a, "c").Admitted, "a's lease ended")
}

// While the engine stalls on the probes of those starting, no one more is
// admitted; with none starting, one is, whatever the engine.
func TestAStalledEnginePausesAdmission(t *testing.T) {
	a, c := newTestAdmission(4)
	a.stalled()
	require.True(t, place(t, a, "a").Admitted, "none starting: one is admitted")
	require.False(t, place(t, a, "b").Admitted, "the engine stalls")
	c.add(stallPause + time.Second)
	require.True(t, place(t, a, "b").Admitted, "the pause is over")
}

// Leaving the queue (a provisioning undone while queued) gives its place
// to those behind.
func TestLeavingTheQueue(t *testing.T) {
	a, _ := newTestAdmission(1)
	require.True(t, place(t, a, "a").Admitted)
	require.Equal(t, 0, place(t, a, "b").Ahead)
	require.Equal(t, 1, place(t, a, "c").Ahead)
	a.leave("b")
	require.Equal(t, 0, place(t, a, "c").Ahead)
}

// A waiting tenant's context ends its wait.
func TestAWaitEndsWithItsContext(t *testing.T) {
	a, _ := newTestAdmission(1)
	require.True(t, place(t, a, "a").Admitted)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	st, err := a.admit(ctx, "b", true, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, st.Admitted)
}

// Once its services started, an admitted tenant keeps its place only
// briefly unless its health wait runs here; while that runs, it keeps it
// however long the wait.
func TestAHealthWaitHoldsThePlace(t *testing.T) {
	a, c := newTestAdmission(1)
	require.True(t, place(t, a, "a").Admitted)
	require.Equal(t, 0, place(t, a, "b").Ahead)
	a.renew("a", startedLease)
	c.add(startedLease + time.Second)
	require.True(t, place(t, a, "b").Admitted, "a's health wait ran elsewhere: its place lapsed")

	a.hold("b")
	require.Equal(t, 0, place(t, a, "c").Ahead)
	c.add(time.Hour)
	a.renew("b", startedLease)
	require.False(t, place(t, a, "c").Admitted, "b's wait still runs")
	a.leave("b")
	require.True(t, place(t, a, "c").Admitted)
}
