package tenant

import (
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// StepPlace is the provisioning step that chooses the tenant's host.
const StepPlace = "place on a host"

// A tenant placed on a Docker host of the fleet runs its runtime, backup
// and restic activities on that host's task queue, polled by the host's
// own worker (the only one that reaches its engine and volumes). Without
// a placement (one engine every worker reaches) they run as before: the
// short steps as local activities, the rest on the workflow's queue. The
// host is data in the tenant's state, never a branch of its own.

// hostQueue is the task queue of the tenant's host ("" when unplaced).
func (t *entity) hostQueue() string {
	if p := t.state.Placement; p != nil {
		return p.Queue
	}
	return ""
}

// onHost routes the activities of ctx to the tenant's host.
func (t *entity) onHost(ctx workflow.Context) workflow.Context { return onQueue(ctx, t.hostQueue()) }

// onQueue routes the activities of ctx to a host's queue ("" keeps ctx's).
func onQueue(ctx workflow.Context, q string) workflow.Context {
	if q != "" {
		return workflow.WithTaskQueue(ctx, q)
	}
	return ctx
}

// hostStartTimeout is how long a host step waits for the host's worker:
// past it, the host is likely down and the step fails (a lost host is
// evacuated, not waited for).
const hostStartTimeout = 5 * time.Minute

// onHostLocal runs a short runtime step: a local activity when the
// tenant is unplaced, an activity on its host's queue (with the same
// budget and retries) when it is placed.
func (t *entity) onHostLocal(ctx workflow.Context, opts workflow.LocalActivityOptions, fn any, args ...any) workflow.Future {
	return onHostQueue(ctx, t.hostQueue(), opts, fn, args...)
}

// onHostQueue is onHostLocal on a given host's queue (a move's target).
func onHostQueue(ctx workflow.Context, q string, opts workflow.LocalActivityOptions, fn any, args ...any) workflow.Future {
	if q == "" {
		return workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, opts), fn, args...)
	}
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:              q,
		ScheduleToCloseTimeout: opts.ScheduleToCloseTimeout,
		ScheduleToStartTimeout: min(hostStartTimeout, opts.ScheduleToCloseTimeout),
		StartToCloseTimeout:    opts.StartToCloseTimeout,
		RetryPolicy:            opts.RetryPolicy,
	}), fn, args...)
}

// place reserves room for the tenant on a fleet host when its spec asks
// for one (once: a retried provisioning keeps its placement), and
// registers the release of the reservation as the undo. The placement,
// with why it was chosen, is in the tenant's state and history.
func (t *entity) place(ctx workflow.Context, env spec.Environment, undo *flow.Saga) error {
	if t.spec.Placement == nil || t.state.Placement != nil {
		return nil
	}
	t.begin(StepPlace)
	defer t.end(StepPlace)
	p, err := t.reserveHost(ctx, env, hosts.ReserveInput{Pin: t.spec.Placement.Pin})
	if err != nil {
		return err
	}
	t.state.Placement = &p
	t.logger(ctx).Info("tenant placed", "host", p.Host, "zone", p.Zone, "reason", p.Reason)
	undo.Add("release host", func(ctx workflow.Context) error {
		err := t.releaseHost(workflow.WithActivityOptions(ctx, integrationOptions), p.Host)
		if err == nil {
			t.state.Placement = nil
		}
		return err
	})
	return nil
}

// reserveHost reserves the room env needs on a host for this
// provisioning's runtime objects; in says where (Pin), and for a move
// from where and as which operation (From, Op).
func (t *entity) reserveHost(ctx workflow.Context, env spec.Environment, in hosts.ReserveInput) (hosts.Placement, error) {
	in.Tenant, in.Owner, in.Need = t.spec.Name, t.state.ProvisionID, hosts.Need(limits(env)...)
	var p hosts.Placement
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), pl.ReserveHost, in).Get(ctx, &p)
	return p, err
}

// releaseHost gives this provisioning's room on host back; actx carries
// the activity options (a purge's retry longer than an undo's).
func (t *entity) releaseHost(actx workflow.Context, host string) error {
	return workflow.ExecuteActivity(actx, pl.ReleaseHost,
		hosts.ReleaseInput{Tenant: t.spec.Name, Owner: t.state.ProvisionID, Host: host}).Get(actx, nil)
}

func limits(env spec.Environment) []spec.Resources {
	out := make([]spec.Resources, len(env.Services))
	for i, s := range env.Services {
		out[i] = s.Resources
	}
	return out
}
