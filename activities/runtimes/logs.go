package runtimes

import (
	"context"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// LogReader reads a tenant's container logs (Docker containers, OpenShift
// pods). Only the tenant's own containers, of the
// provisioning Owner, are read: never another tenant's.
type LogReader interface {
	Logs(ctx context.Context, in LogsInput, emit func(LogLine) error) error
}

// LogsInput selects log lines: of one service or all, since a time, the
// last Tail lines (the tenant's last, not each container's; 0: all), and with Follow the lines
// that come after, until ctx ends.
type LogsInput struct {
	Tenant  string
	Owner   string
	Service string
	Since   time.Time
	Tail    int
	Follow  bool
}

// LogLine is one line a tenant's container wrote.
type LogLine struct {
	Time       time.Time `json:"time"`
	Service    string    `json:"service"`
	Generation int       `json:"generation"`
	Stream     string    `json:"stream"` // stdout or stderr
	Line       string    `json:"line"`
}

// LogSource reads one container's (or pod's) lines into out until it
// ends or ctx does.
type LogSource func(ctx context.Context, out func(LogLine) error) error

// MergeLogs reads a tenant's sources at once, as a LogReader answers:
// with Follow each line is emitted as it comes; without, once every source
// ended, in time order, the last Tail of them (the tenant's last lines,
// not each source's). A failing source fails the read, unless ctx ended.
func MergeLogs(ctx context.Context, in LogsInput, sources []LogSource, emit func(LogLine) error) error {
	var (
		mu    sync.Mutex
		lines []LogLine
	)
	out := func(l LogLine) error {
		mu.Lock()
		defer mu.Unlock()
		if in.Follow {
			return emit(l)
		}
		lines = append(lines, l)
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, src := range sources {
		g.Go(func() error { return src(gctx, out) })
	}
	if err := g.Wait(); err != nil && ctx.Err() == nil {
		return err
	}
	if in.Follow {
		return nil
	}
	slices.SortStableFunc(lines, func(a, b LogLine) int { return a.Time.Compare(b.Time) })
	if in.Tail > 0 && len(lines) > in.Tail {
		lines = lines[len(lines)-in.Tail:]
	}
	for _, l := range lines {
		if err := emit(l); err != nil {
			return err
		}
	}
	return nil
}
