// Package beat heartbeats a long activity's progress while it runs, so
// that Temporal sees it alive and the Web UI shows how far it is.
package beat

import (
	"context"
	"sync"
	"time"
)

// Every records heartbeat(ctx, detail()) every interval until stop is
// called or ctx ends; stop returns once the last heartbeat is done.
// Without a heartbeat func (activities called directly) it does nothing.
func Every(ctx context.Context, interval time.Duration, heartbeat func(context.Context, ...any), detail func() any) (stop func()) {
	if heartbeat == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				heartbeat(ctx, detail())
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// Latest records heartbeat(ctx, last) every interval, last being the
// latest value given to set (first until then), until stop is called or
// ctx ends: for an activity whose progress arrives unevenly and may stop
// arriving for longer than its heartbeat timeout. Without a heartbeat
// func it does nothing.
func Latest(ctx context.Context, interval time.Duration, heartbeat func(context.Context, ...any), first any) (set func(any), stop func()) {
	var mu sync.Mutex
	last := first
	stop = Every(ctx, interval, heartbeat, func() any {
		mu.Lock()
		defer mu.Unlock()
		return last
	})
	return func(v any) {
		mu.Lock()
		defer mu.Unlock()
		last = v
	}, stop
}
