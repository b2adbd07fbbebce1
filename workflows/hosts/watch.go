package hosts

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// The host watch (one workflow, "hosts-watch") finds lost hosts. Every
// round it asks each host's own worker to ping its engine (an activity
// on the host's queue that must start within a few seconds: a worker
// that does not take it is unreachable), and when the worker does not
// answer it pings the engine at its registered endpoint itself. A host
// whose worker and engine both stay unreachable for LostAfter is set
// lost, and each tenant placed on it is signalled (SignalHostLost): it
// shows degraded, and ops evacuate it (POST /v1/hosts/{name}/evacuate).
// A lost host that answers again is signalled back to the tenants still
// placed on it; the host itself stays lost (fenced: its worker refuses
// work and stops the containers of tenants no longer placed on it) until
// ops cordon it.

// The watch's names.
const (
	WatchWorkflowType = "HostWatch"
	WatchWorkflowID   = "hosts-watch"
	QueryWatch        = "watch"
	// Activities of the watch: ListHosts, ProbeEngine and NotifyTenants on
	// the shared queue, PingHost on each host's own.
	ActivityListHosts     = "ListHosts"
	ActivityPingHost      = "PingHost"
	ActivityProbeEngine   = "ProbeEngine"
	ActivityNotifyTenants = "NotifyTenants"
)

// Defaults of the watch.
const (
	DefaultLostAfter = time.Minute
	// watchRounds bounds a run's history: it continues as new after.
	watchRounds = 300
)

// WatchInput starts the watch (and carries its findings across runs).
type WatchInput struct {
	// LostAfter is how long a host's worker and engine stay unreachable
	// before it is lost.
	LostAfter time.Duration `json:"lostAfter"`
	// Hosts are the findings so far, by host.
	Hosts map[string]*HostHealth `json:"hosts,omitempty"`
}

// every is the watch's round: a quarter of LostAfter, 1 to 15 s.
func (in WatchInput) every() time.Duration {
	return min(max(in.LostAfter/4, time.Second), 15*time.Second)
}

// HostHealth is what the watch knows of a host.
type HostHealth struct {
	// Worker: the host's worker took the last ping; Engine: its engine
	// answered (through the worker, or directly).
	Worker    bool       `json:"worker"`
	Engine    bool       `json:"engine"`
	CheckedAt time.Time  `json:"checkedAt"`
	LastSeen  *time.Time `json:"lastSeen,omitempty"`
	// UnreachableSince is when worker and engine both stopped answering.
	UnreachableSince *time.Time `json:"unreachableSince,omitempty"`
	// LostAt is when the watch set the host lost; BackAt when a lost
	// host answered again (its tenants were told).
	LostAt  *time.Time `json:"lostAt,omitempty"`
	BackAt  *time.Time `json:"backAt,omitempty"`
	Problem string     `json:"problem,omitempty"`
}

// PingResult is a host worker's answer to PingHost.
type PingResult struct {
	Engine bool   `json:"engine"`
	Error  string `json:"error,omitempty"`
}

// ProbeInput asks the watch's own worker to ping a host's engine.
type ProbeInput struct {
	Host   string `json:"host"`
	Docker string `json:"docker"`
}

// NotifyInput signals every tenant reserved on Host.
type NotifyInput struct {
	Host   string     `json:"host"`
	Signal string     `json:"signal"`
	Event  HostSignal `json:"event"`
}

var (
	watchRegistryOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second, MaximumAttempts: 5},
	}
	// A ping is never retried: the next round asks again.
	pingOptions = workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Second,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	}
)

// WatchWorkflow is the host watch (see above).
func WatchWorkflow(ctx workflow.Context, in WatchInput) error {
	if in.LostAfter <= 0 {
		in.LostAfter = DefaultLostAfter
	}
	if in.Hosts == nil {
		in.Hosts = map[string]*HostHealth{}
	}
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryWatch, func() (WatchInput, error) { return in, nil },
		workflow.QueryHandlerOptions{Description: "What the watch knows of each host: worker and engine reachable, since when not, lost and back"}); err != nil {
		return err
	}
	for range watchRounds {
		if err := watchRound(ctx, &in); err != nil {
			workflow.GetLogger(ctx).Error("host watch round failed", "error", err)
		}
		if err := workflow.Sleep(ctx, in.every()); err != nil {
			return err
		}
	}
	return workflow.NewContinueAsNewError(ctx, WatchWorkflowType, in)
}

// watchRound pings every host and acts on what it finds.
func watchRound(ctx workflow.Context, in *WatchInput) error {
	var list []Host
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, watchRegistryOptions), ActivityListHosts).Get(ctx, &list); err != nil {
		return err
	}
	seen := map[string]bool{}
	found := make([]*HostHealth, len(list))
	wg := workflow.NewWaitGroup(ctx)
	for i, h := range list {
		seen[h.Name] = true
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			found[i] = probe(ctx, h, in.every())
		})
	}
	wg.Wait(ctx)
	var errs error
	for i, h := range list {
		errs = errors.Join(errs, judge(ctx, in, h, found[i]))
	}
	for _, name := range workflow.DeterministicKeys(in.Hosts) {
		if !seen[name] {
			delete(in.Hosts, name)
		}
	}
	return errs
}

// probe asks the host's worker to ping its engine, and pings the engine
// directly when the worker does not answer.
func probe(ctx workflow.Context, h Host, wait time.Duration) *HostHealth {
	now := workflow.Now(ctx)
	out := &HostHealth{CheckedAt: now}
	opts := pingOptions
	opts.TaskQueue, opts.ScheduleToStartTimeout = TaskQueue(h.Name), min(wait, 5*time.Second)
	var pong PingResult
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, opts), ActivityPingHost).Get(ctx, &pong)
	if err == nil {
		out.Worker, out.Engine, out.Problem = true, pong.Engine, pong.Error
		return out
	}
	out.Problem = "the worker did not answer: " + err.Error()
	var engineErr string
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, pingOptions), ActivityProbeEngine,
		ProbeInput{Host: h.Name, Docker: h.Docker}).Get(ctx, &engineErr); err != nil {
		out.Problem += "; the engine could not be probed: " + err.Error()
		return out
	}
	out.Engine = engineErr == ""
	if !out.Engine {
		out.Problem += "; the engine does not answer: " + engineErr
	}
	return out
}

// judge records what the round found of h and sets it lost, or tells
// its tenants it is back.
func judge(ctx workflow.Context, in *WatchInput, h Host, now *HostHealth) error {
	prev := in.Hosts[h.Name]
	if prev == nil {
		prev = &HostHealth{}
	}
	now.LastSeen, now.UnreachableSince, now.LostAt, now.BackAt = prev.LastSeen, prev.UnreachableSince, prev.LostAt, prev.BackAt
	in.Hosts[h.Name] = now
	at := now.CheckedAt
	lost := h.State == StateLost
	defer func() { gauges(ctx, h.Name, now.Worker || now.Engine, lost) }()
	if now.Worker || now.Engine {
		now.LastSeen, now.UnreachableSince = &at, nil
		if h.State == StateLost && now.BackAt == nil {
			now.BackAt = &at
			workflow.GetLogger(ctx).Info("a lost host answers again", "host", h.Name)
			return notify(ctx, h.Name, SignalHostBack, HostSignal{Host: h.Name, Since: at})
		}
		return nil
	}
	if now.UnreachableSince == nil {
		now.UnreachableSince = &at
	}
	since := *now.UnreachableSince
	if h.State == StateLost || at.Sub(since) < in.LostAfter {
		return nil
	}
	reason := fmt.Sprintf("worker and engine unreachable since %s", since.UTC().Format(time.RFC3339))
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, watchRegistryOptions), ActivitySetHostState,
		SetStateInput{Host: h.Name, State: StateLost, By: "host watch", Reason: reason}).Get(ctx, nil); err != nil {
		return err
	}
	now.LostAt, now.BackAt, lost = &at, nil, true
	workflow.GetLogger(ctx).Warn("host lost", "host", h.Name, "since", since)
	return notify(ctx, h.Name, SignalHostLost, HostSignal{Host: h.Name, Since: since, Reason: reason})
}

// gauges publish what the round found of a host: tenantflow_host_reachable
// (its worker or its engine answered) and tenantflow_host_lost.
func gauges(ctx workflow.Context, host string, reachable, lost bool) {
	m := workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"host": host})
	m.Gauge("tenantflow_host_reachable").Update(one(reachable))
	m.Gauge("tenantflow_host_lost").Update(one(lost))
}

func one(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func notify(ctx workflow.Context, host, signal string, ev HostSignal) error {
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, watchRegistryOptions), ActivityNotifyTenants,
		NotifyInput{Host: host, Signal: signal, Event: ev}).Get(ctx, nil)
}
