package restic

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A host runs at most Concurrency heavy operations at once; the next one
// waits, says so in its progress, and gives up with its context.
func TestBackupSlotsBoundAHostsWork(t *testing.T) {
	a := &Activities{Config: Config{Concurrency: 1}}
	p := &progress{}
	release, err := a.slot(context.Background(), p)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = a.slot(ctx, p)
	require.ErrorIs(t, err, context.DeadlineExceeded, "the second waits")
	require.Contains(t, p.String(), "waiting for one of the 1 backup slots")

	got := make(chan error, 1)
	go func() {
		r, err := a.slot(context.Background(), &progress{})
		if err == nil {
			r()
		}
		got <- err
	}()
	release()
	select {
	case err := <-got:
		require.NoError(t, err, "a released slot is taken")
	case <-time.After(5 * time.Second):
		t.Fatal("the waiter never got the released slot")
	}
	require.Equal(t, DefaultConcurrency, cap((&Activities{}).mustSlots()))
}

func (a *Activities) mustSlots() chan struct{} {
	r, _ := a.slot(context.Background(), &progress{})
	r()
	return a.slots
}
