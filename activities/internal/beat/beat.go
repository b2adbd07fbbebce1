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
