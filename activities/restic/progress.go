package restic

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tenantflow/tenantflow/activities/internal/beat"
)

// heartbeatEvery bounds how often progress is reported: often enough that
// a lost worker is noticed quickly, rarely enough to cost nothing (the SDK
// throttles heartbeats further).
const heartbeatEvery = time.Second

// progress is what a long activity reports: the stage it is in and how
// far that stage went. A ticker reports it, so an activity heartbeats
// while it waits on the tenant's lock or on a silent restic too.
type progress struct {
	mu          sync.Mutex
	label       string
	done, total int64
	percent     float64
}

// stage starts a new stage (one part of a backup, say) from zero.
func (p *progress) stage(label string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.label, p.done, p.total, p.percent = label, 0, 0, 0
}

// set records how far restic says it is.
func (p *progress) set(done, total int64, percent float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.total, p.percent = done, total, percent
}

// add counts bytes that went through the worker (a dump).
func (p *progress) add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += int64(n)
}

// current is the stage's label.
func (p *progress) current() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.label
}

func (p *progress) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.total > 0:
		return fmt.Sprintf("%s: %d/%d MB (%.0f%%)", p.label, p.done>>20, p.total>>20, 100*p.percent)
	case p.done > 0:
		return fmt.Sprintf("%s: %d MB", p.label, p.done>>20)
	}
	return p.label
}

// track heartbeats the progress every heartbeatEvery until stop is called;
// without a Heartbeat func it only records.
func (a *Activities) track(ctx context.Context, label string) (p *progress, stop func()) {
	p = &progress{label: label}
	return p, beat.Every(ctx, heartbeatEvery, a.Heartbeat, func() any { return p.String() })
}
