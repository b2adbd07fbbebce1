// Package fence keeps a fleet host that was found lost from serving
// twice what was brought back elsewhere. Its worker checks the host's
// registration every few seconds: while the host is lost, the worker
// refuses every activity but the watch's ping, and stops (never removes)
// the running containers of tenants no longer placed on it, which an
// evacuation restored on another host. Their volumes stay: ops remove
// them once nothing there is wanted.
package fence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	dockerclient "github.com/docker/docker/client"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/placement"
	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// ErrFenced is the failure type of an activity a fenced host refuses.
const ErrFenced = "HostFenced"

// Guard fences one host.
type Guard struct {
	Client client.Client
	Host   string
	Engine dockerclient.APIClient
	// Every is how often the registration is checked (zero: 5 s).
	Every time.Duration
	Log   *slog.Logger

	lost    atomic.Bool
	stopped atomic.Int64
}

// Lost reports whether the host's registration said lost at the last
// check.
func (g *Guard) Lost() bool { return g.lost.Load() }

// Stopped counts the containers the guard stopped.
func (g *Guard) Stopped() int64 { return g.stopped.Load() }

// Run checks until ctx ends.
func (g *Guard) Run(ctx context.Context) {
	every := g.Every
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := g.Check(ctx); err != nil && ctx.Err() == nil {
				g.log().Warn("fence check failed", "host", g.Host, "error", err)
			}
		}
	}
}

// Check reads the host's registration and, while it is lost, stops the
// containers of tenants not placed on it (by the run that owns them).
func (g *Guard) Check(ctx context.Context) error {
	list, ok, err := placement.Registered(ctx, g.Client)
	switch {
	case err != nil:
		return err
	case !ok:
		return errors.New("no host is registered: the host registry does not run")
	}
	i := slices.IndexFunc(list, func(h hosts.Host) bool { return h.Name == g.Host })
	if i < 0 {
		g.lost.Store(false)
		return nil
	}
	h := list[i]
	was := g.lost.Swap(h.State == hosts.StateLost)
	if h.State != hosts.StateLost {
		if was {
			g.log().Info("host no longer lost: the worker takes work again", "host", g.Host, "state", h.State)
		}
		return nil
	}
	if !was {
		g.log().Warn("host is lost: the worker refuses work and stops the tenants placed elsewhere", "host", g.Host)
	}
	return g.stopStrays(ctx, h)
}

func (g *Guard) stopStrays(ctx context.Context, h hosts.Host) error {
	list, err := g.Engine.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", docker.LabelTenant))})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	var errs error
	for _, c := range list {
		tenant, owner := c.Labels[docker.LabelTenant], c.Labels[docker.LabelOwner]
		if r, ok := h.Reservations[tenant]; ok && (owner == "" || r.Owner == owner) {
			continue
		}
		timeout := 10
		if err := g.Engine.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &timeout}); err != nil {
			errs = errors.Join(errs, fmt.Errorf("stop %s: %w", c.ID, err))
			continue
		}
		g.stopped.Add(1)
		g.log().Warn("fenced: stopped a container of a tenant placed elsewhere", "host", g.Host, "tenant", tenant, "container", firstName(c.Names))
	}
	return errs
}

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

func (g *Guard) log() *slog.Logger {
	if g.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return g.Log
}

// PingHost is the watch's ping (hosts.ActivityPingHost): it answers
// whether the engine does, even while the host is fenced.
func (g *Guard) PingHost(ctx context.Context) (hosts.PingResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := g.Engine.Ping(ctx); err != nil {
		return hosts.PingResult{Error: err.Error()}, nil
	}
	return hosts.PingResult{Engine: true}, nil
}

// Interceptor refuses every activity but PingHost while the host is
// lost.
func (g *Guard) Interceptor() interceptor.WorkerInterceptor { return &workerInterceptor{g: g} }

type workerInterceptor struct {
	interceptor.WorkerInterceptorBase
	g *Guard
}

func (w *workerInterceptor) InterceptActivity(ctx context.Context, next interceptor.ActivityInboundInterceptor) interceptor.ActivityInboundInterceptor {
	i := &activityInterceptor{g: w.g}
	i.Next = next
	return i
}

type activityInterceptor struct {
	interceptor.ActivityInboundInterceptorBase
	g *Guard
}

func (a *activityInterceptor) ExecuteActivity(ctx context.Context, in *interceptor.ExecuteActivityInput) (any, error) {
	if a.g.Lost() {
		if info := activityInfo(ctx); info != hosts.ActivityPingHost {
			return nil, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("host %s is lost: its worker refuses %s until ops cordon it", a.g.Host, info), ErrFenced, nil)
		}
	}
	return a.Next.ExecuteActivity(ctx, in)
}

func activityInfo(ctx context.Context) string { return activity.GetInfo(ctx).ActivityType.Name }
