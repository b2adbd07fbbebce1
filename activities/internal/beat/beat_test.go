package beat

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Heartbeats come every interval with the detail of the moment, and none
// after stop.
func TestEveryHeartbeatsUntilStopped(t *testing.T) {
	var n atomic.Int64
	var last atomic.Value
	stop := Every(context.Background(), 5*time.Millisecond, func(_ context.Context, d ...any) {
		n.Add(1)
		last.Store(d[0])
	}, func() any { return "step " + time.Now().Format("05.000") })
	require.Eventually(t, func() bool { return n.Load() >= 3 }, 5*time.Second, time.Millisecond)
	stop()
	after := n.Load()
	time.Sleep(30 * time.Millisecond)
	require.Equal(t, after, n.Load(), "nothing after stop")
	require.Contains(t, last.Load(), "step ")
	Every(context.Background(), time.Millisecond, nil, nil)() // no heartbeat func: nothing, no panic
}

// Latest heartbeats its first value until another is set, then the
// latest one, and nothing after stop.
func TestLatestHeartbeatsTheLatestValue(t *testing.T) {
	var mu sync.Mutex
	var beats []any
	set, stop := Latest(context.Background(), 5*time.Millisecond, func(_ context.Context, d ...any) {
		mu.Lock()
		defer mu.Unlock()
		beats = append(beats, d[0])
	}, "first")
	seen := func(v any) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return len(beats) > 0 && beats[len(beats)-1] == v }
	}
	require.Eventually(t, seen("first"), 5*time.Second, time.Millisecond)
	set("second")
	require.Eventually(t, seen("second"), 5*time.Second, time.Millisecond)
	stop()
	mu.Lock()
	n := len(beats)
	mu.Unlock()
	time.Sleep(30 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, beats, n, "nothing after stop")
}
