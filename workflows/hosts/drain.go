package hosts

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/workflows/flow"
)

// A drain empties a host: one workflow per host (DrainWorkflowID) sets it
// draining, so nothing new is placed there, then moves its tenants away a
// few at a time, each through the tenant's own move Update; the registry
// chooses each target. The host stays draining at the end: ops uncordon it.
const (
	DrainWorkflowType = "DrainHost"
	QueryDrain        = "drain"
)

// DrainWorkflowID is the id of a host's drain: one runs at a time, a new
// one may start once it ended.
func DrainWorkflowID(host string) string { return "drain:" + host }

// EvacuateWorkflowType and EvacuateWorkflowID name a lost host's
// evacuation: the drain's course, each tenant brought back elsewhere
// from its newest off-site backup instead of moved.
const EvacuateWorkflowType = "EvacuateHost"

// EvacuateWorkflowID is the id of host's evacuation.
func EvacuateWorkflowID(host string) string { return "evacuate:" + host }

// How many tenants a drain moves at once (DrainInput.MaxParallel).
const (
	DefaultDrainParallel = 2
	MaxDrainParallel     = 10
)

// The drain's activities, methods of activities/placement.Activities.
// That package imports this one, so the workflow names them by string;
// its tests check they resolve.
const (
	ActivitySetHostState = "SetHostState"
	ActivityHostTenants  = "HostTenants"
	ActivityMoveTenant   = "MoveTenant"
)

// ErrDrainFailed is the failure type of a drain that could not start
// moving (the host could not be set draining or listed).
const ErrDrainFailed = "DrainFailed"

// DrainInput starts a drain. MaxParallel 0 is DefaultDrainParallel.
type DrainInput struct {
	Host        string `json:"host"`
	By          string `json:"by"`
	Reason      string `json:"reason,omitempty"`
	MaxParallel int    `json:"maxParallel,omitempty"`
	// Evacuate: the host is lost; its tenants are brought back elsewhere
	// from their off-site backups (EvacuateWorkflow sets it).
	Evacuate bool `json:"evacuate,omitempty"`
}

// CheckDrain names the first bad field of a drain's input.
func CheckDrain(in DrainInput) (field, problem string) {
	switch {
	case !hostName.MatchString(in.Host):
		return "host", "a host name is 1-40 lowercase letters, digits and inner '-'"
	case in.By == "":
		return "by", "a drain needs who asks"
	case in.MaxParallel < 0 || in.MaxParallel > MaxDrainParallel:
		return "maxParallel", fmt.Sprintf("must be 1 to %d (0: %d)", MaxDrainParallel, DefaultDrainParallel)
	}
	return "", ""
}

// MoveTenantInput asks MoveTenant to move a tenant off Host. UpdateID
// makes a retried activity join the move it asked for instead of queueing
// another.
type MoveTenantInput struct {
	Tenant   string `json:"tenant"`
	Host     string `json:"host"`
	By       string `json:"by"`
	UpdateID string `json:"updateId"`
	// Evacuate asks for an evacuation (tenant.MoveRequest.Evacuate).
	Evacuate bool `json:"evacuate,omitempty"`
}

// TenantMove is the tenant's move (workflows/tenant.Move) as the drain
// reads it from the tenant's state: workflows/tenant imports this
// package, so the fields it needs are copied here with the same JSON
// names (activities/placement's tests check them against the original).
type TenantMove struct {
	From        string     `json:"from"`
	To          string     `json:"to"`
	By          string     `json:"by"`
	Phase       string     `json:"phase"`
	RequestedAt time.Time  `json:"requestedAt"`
	StartedAt   *time.Time `json:"startedAt,omitempty"`
	FinishedAt  *time.Time `json:"finishedAt,omitempty"`
	StoppedAt   *time.Time `json:"stoppedAt,omitempty"`
	ServingAt   *time.Time `json:"servingAt,omitempty"`
	Error       string     `json:"error,omitempty"`
	// An evacuation's backup and recovery point.
	Backup        string     `json:"backup,omitempty"`
	RecoveryPoint *time.Time `json:"recoveryPoint,omitempty"`
	RecoveryAgeMs int64      `json:"recoveryAgeMs,omitempty"`
}

// MovePhaseDone is the phase of a move that succeeded (tenant.MoveDone).
const MovePhaseDone = "done"

// DrainPhase is where a drain stands.
type DrainPhase string

// Phases of a drain.
const (
	DrainRunning DrainPhase = "running"
	DrainDone    DrainPhase = "done"   // every tenant tried; failures are listed
	DrainFailed  DrainPhase = "failed" // the host could not be set draining or listed
)

// String is the phase's name.
func (p DrainPhase) String() string { return string(p) }

// DrainOutcome is where one tenant of a drain stands.
type DrainOutcome string

// Outcomes of a tenant in a drain.
const (
	TenantPending DrainOutcome = "pending"
	TenantMoving  DrainOutcome = "moving"
	TenantMoved   DrainOutcome = "moved"
	TenantFailed  DrainOutcome = "failed" // it stays on the host (Error says why)
)

// String is the outcome's name.
func (o DrainOutcome) String() string { return string(o) }

// DrainTenant is one tenant of a drain: when the drain asked for its
// move and saw it end, where it went and how long it did not serve.
type DrainTenant struct {
	Tenant     string       `json:"tenant"`
	Outcome    DrainOutcome `json:"outcome"`
	To         string       `json:"to,omitempty"`
	StartedAt  *time.Time   `json:"startedAt,omitempty"`
	FinishedAt *time.Time   `json:"finishedAt,omitempty"`
	Error      string       `json:"error,omitempty"`
	// StoppedAt and ServingAt are the move's interruption: the source
	// stopped, the route switched to the target.
	StoppedAt      *time.Time `json:"stoppedAt,omitempty"`
	ServingAt      *time.Time `json:"servingAt,omitempty"`
	InterruptionMs *int64     `json:"interruptionMs,omitempty"`
	// An evacuated tenant's backup, its time (the recovery point) and how
	// much older it is than the host's loss.
	Backup        string     `json:"backup,omitempty"`
	RecoveryPoint *time.Time `json:"recoveryPoint,omitempty"`
	RecoveryAgeMs *int64     `json:"recoveryAgeMs,omitempty"`
}

// DrainCounts counts a drain's tenants by outcome.
type DrainCounts struct {
	Total   int `json:"total"`
	Pending int `json:"pending"`
	Moving  int `json:"moving"`
	Moved   int `json:"moved"`
	Failed  int `json:"failed"`
}

// Drain is the drain's state (the drain query's answer and the
// workflow's result).
type Drain struct {
	Host        string        `json:"host"`
	Evacuate    bool          `json:"evacuate,omitempty"`
	By          string        `json:"by"`
	Reason      string        `json:"reason,omitempty"`
	MaxParallel int           `json:"maxParallel"`
	Phase       DrainPhase    `json:"phase"`
	StartedAt   time.Time     `json:"startedAt"`
	FinishedAt  *time.Time    `json:"finishedAt,omitempty"`
	Tenants     []DrainTenant `json:"tenants"`
	Counts      DrainCounts   `json:"counts"`
	// Left are the tenants the host still held when the drain looked
	// again at the end (those whose move failed, mostly).
	Left  []string `json:"left,omitempty"`
	Error string   `json:"error,omitempty"`
}

// Registry calls are outside calls (see flow.OutsideCall). A move is
// long: the tenant copies its data, so MoveTenant heartbeats while it
// polls the tenant, and a retry joins the move it asked for.
var (
	drainRegistryOptions = flow.OutsideCall
	moveTenantOptions    = workflow.ActivityOptions{
		StartToCloseTimeout: 6 * time.Hour,
		HeartbeatTimeout:    30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    10,
		},
	}
)

// drain is the workflow's state.
type drain struct {
	in    DrainInput
	state Drain
}

// DrainWorkflow drains a host (see DrainWorkflowType): set draining,
// move its tenants MaxParallel at a time, look once more for tenants
// left, end done with the failures listed.
func DrainWorkflow(ctx workflow.Context, in DrainInput) (Drain, error) {
	if field, problem := CheckDrain(in); field != "" {
		return Drain{}, temporal.NewNonRetryableApplicationError(field+": "+problem, ErrInvalid, nil)
	}
	if in.MaxParallel == 0 {
		in.MaxParallel = DefaultDrainParallel
	}
	d := &drain{in: in, state: Drain{Host: in.Host, Evacuate: in.Evacuate, By: in.By, Reason: in.Reason, MaxParallel: in.MaxParallel,
		Phase: DrainRunning, StartedAt: workflow.Now(ctx), Tenants: []DrainTenant{}}}
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryDrain, func() (Drain, error) { return d.view(), nil },
		workflow.QueryHandlerOptions{Description: "The drain: its phase and each tenant's move"}); err != nil {
		return Drain{}, err
	}
	return d.run(ctx)
}

// EvacuateWorkflow evacuates a lost host: DrainWorkflow with Evacuate.
func EvacuateWorkflow(ctx workflow.Context, in DrainInput) (Drain, error) {
	in.Evacuate = true
	return DrainWorkflow(ctx, in)
}

func (d *drain) run(ctx workflow.Context) (Drain, error) {
	if err := d.setDraining(ctx); err != nil {
		return d.fail(ctx, "set the host draining", err)
	}
	first, err := d.hostTenants(ctx)
	if err != nil {
		return d.fail(ctx, "list the host's tenants", err)
	}
	d.moveAll(ctx, first)
	// Nothing new is placed on a draining host, but a move towards it
	// decided before may have landed, and a failed move leaves its tenant.
	again, err := d.hostTenants(ctx)
	if err != nil {
		return d.fail(ctx, "list the host's tenants again", err)
	}
	d.moveAll(ctx, d.untried(again))
	d.state.Left = d.notMoved(again)
	return d.finish(ctx), nil
}

func (d *drain) setDraining(ctx workflow.Context) error {
	if d.in.Evacuate {
		return nil // lost already: nothing is placed there
	}
	reason := d.in.Reason
	if reason == "" {
		reason = "drain"
	}
	in := SetStateInput{Host: d.in.Host, State: StateDraining, By: d.in.By, Reason: reason}
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, drainRegistryOptions), ActivitySetHostState, in).Get(ctx, nil)
}

func (d *drain) hostTenants(ctx workflow.Context) ([]string, error) {
	var names []string
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, drainRegistryOptions), ActivityHostTenants, d.in.Host).Get(ctx, &names)
	return names, err
}

// moveAll adds names to the drain and moves them, MaxParallel at a time:
// that many coroutines take the next pending tenant until none is left.
func (d *drain) moveAll(ctx workflow.Context, names []string) {
	queue := make([]int, 0, len(names))
	for _, n := range names {
		queue = append(queue, len(d.state.Tenants))
		d.state.Tenants = append(d.state.Tenants, DrainTenant{Tenant: n, Outcome: TenantPending})
	}
	g := flow.NewGroup(ctx)
	for range min(d.in.MaxParallel, len(queue)) {
		g.Go(func(ctx workflow.Context) error {
			for len(queue) > 0 {
				i := queue[0]
				queue = queue[1:]
				d.moveOne(ctx, i)
			}
			return nil
		})
	}
	_ = g.Wait(ctx) // moveOne records each failure; none is returned
}

// moveOne moves the i-th tenant and records how it went.
func (d *drain) moveOne(ctx workflow.Context, i int) {
	name := d.state.Tenants[i].Tenant
	d.state.Tenants[i].Outcome, d.state.Tenants[i].StartedAt = TenantMoving, timePtr(workflow.Now(ctx))
	what := "drain"
	if d.in.Evacuate {
		what = "evacuation"
	}
	in := MoveTenantInput{Tenant: name, Host: d.in.Host, By: fmt.Sprintf("%s of %s by %s", what, d.in.Host, d.in.By),
		UpdateID: what + ":" + workflow.GetInfo(ctx).WorkflowExecution.RunID + ":" + name, Evacuate: d.in.Evacuate}
	var m TenantMove
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, moveTenantOptions), ActivityMoveTenant, in).Get(ctx, &m)
	e := &d.state.Tenants[i]
	e.FinishedAt = timePtr(workflow.Now(ctx))
	e.record(m, err)
	workflow.GetLogger(ctx).Info("drain: tenant move ended", "host", d.in.Host, "tenant", name, "outcome", e.Outcome, "to", e.To, "error", e.Error)
}

// record takes the move's outcome: MoveTenant failing, or the move it
// saw end.
func (e *DrainTenant) record(m TenantMove, err error) {
	e.To, e.StoppedAt, e.ServingAt = m.To, m.StoppedAt, m.ServingAt
	if m.RecoveryPoint != nil {
		e.Backup, e.RecoveryPoint, e.RecoveryAgeMs = m.Backup, m.RecoveryPoint, &m.RecoveryAgeMs
	}
	if m.StoppedAt != nil && m.ServingAt != nil {
		ms := m.ServingAt.Sub(*m.StoppedAt).Milliseconds()
		e.InterruptionMs = &ms
	}
	switch {
	case err != nil:
		e.Outcome, e.Error = TenantFailed, flow.ErrorMessage(err)
	case m.Phase != MovePhaseDone:
		e.Outcome, e.Error = TenantFailed, fmt.Sprintf("the move ended %s: %s", m.Phase, m.Error)
	default:
		e.Outcome = TenantMoved
	}
}

// untried are the names the drain has not tried to move yet.
func (d *drain) untried(names []string) []string {
	var out []string
	for _, n := range names {
		if d.entry(n) == nil {
			out = append(out, n)
		}
	}
	return out
}

// notMoved are the names the drain did not move away.
func (d *drain) notMoved(names []string) []string {
	var out []string
	for _, n := range names {
		if e := d.entry(n); e == nil || e.Outcome != TenantMoved {
			out = append(out, n)
		}
	}
	return out
}

func (d *drain) entry(name string) *DrainTenant {
	for i := range d.state.Tenants {
		if d.state.Tenants[i].Tenant == name {
			return &d.state.Tenants[i]
		}
	}
	return nil
}

func (d *drain) finish(ctx workflow.Context) Drain {
	d.state.Phase, d.state.FinishedAt = DrainDone, timePtr(workflow.Now(ctx))
	v := d.view()
	workflow.GetLogger(ctx).Info("drain done", "host", d.in.Host, "moved", v.Counts.Moved, "failed", v.Counts.Failed, "left", v.Left)
	return v
}

func (d *drain) fail(ctx workflow.Context, what string, err error) (Drain, error) {
	msg := what + ": " + flow.ErrorMessage(err)
	d.state.Phase, d.state.FinishedAt, d.state.Error = DrainFailed, timePtr(workflow.Now(ctx)), msg
	workflow.GetLogger(ctx).Error("drain failed", "host", d.in.Host, "error", msg)
	return d.view(), temporal.NewNonRetryableApplicationError(msg, ErrDrainFailed, err)
}

// view is the state with its counts.
func (d *drain) view() Drain {
	v := d.state
	v.Counts = DrainCounts{Total: len(v.Tenants)}
	for _, e := range v.Tenants {
		switch e.Outcome {
		case TenantPending:
			v.Counts.Pending++
		case TenantMoving:
			v.Counts.Moving++
		case TenantMoved:
			v.Counts.Moved++
		case TenantFailed:
			v.Counts.Failed++
		}
	}
	return v
}

func timePtr(t time.Time) *time.Time { return &t }
