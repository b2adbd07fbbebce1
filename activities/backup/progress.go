package backup

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tenantflow/tenantflow/activities/internal/beat"
)

// heartbeatEvery bounds how often progress is reported: often enough that
// a lost worker is noticed quickly, rarely enough to cost nothing.
const heartbeatEvery = 200 * time.Millisecond

// progress counts the data bytes a stage has moved. A ticker reports it, so
// an activity also heartbeats while it waits on a lock or a long fsync.
type progress struct {
	done atomic.Int64

	mu    sync.Mutex
	label string
	total int64
}

// stage starts counting a new stage (one volume's data) from zero.
func (p *progress) stage(label string, total int64) {
	p.mu.Lock()
	p.label, p.total = label, total
	p.mu.Unlock()
	p.done.Store(0)
}

func (p *progress) add(n int) { p.done.Add(int64(n)) }

// current is the stage's label and total.
func (p *progress) current() (string, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.label, p.total
}

func (p *progress) String() string {
	p.mu.Lock()
	label, total := p.label, p.total
	p.mu.Unlock()
	return fmt.Sprintf("%s: %d/%d MB", label, p.done.Load()>>20, total>>20)
}

// track heartbeats the progress every heartbeatEvery until stop is called;
// without a Heartbeat func it only counts.
func (a *Activities) track(ctx context.Context, label string) (p *progress, stop func()) {
	p = &progress{label: label}
	return p, beat.Every(ctx, heartbeatEvery, a.Heartbeat, func() any { return p.String() })
}
