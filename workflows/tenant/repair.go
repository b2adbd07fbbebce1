package tenant

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
)

// The drift reconcile (workflows/reconcile) compares each engine, the
// proxy and DNS with the tenants, and asks a tenant whose runtime drifted
// (a container removed or stopped by hand, a route or record gone) to
// repair itself: the repair Update. It runs as the tenant's next
// operation while the tenant is active (or degraded by an earlier
// repair): the network is made again if it is gone, the services named
// are started again (a missing container is created anew, the same one
// provisioning makes), the tenant waits until healthy, and the route,
// probes and DNS record follow where the services now answer. A repair
// that fails leaves the tenant degraded with the reason; a later one that
// succeeds makes it active again. A missing volume is never made anew
// empty: the tenant is degraded, its data to be restored by ops.

// UpdateRepair asks the tenant to repair what the reconcile found
// missing or stopped; it is accepted at once and runs as the tenant's
// next operation.
const UpdateRepair = "repair"

// QueryExpected answers what the tenant's runtime should hold (Expected):
// the reconcile compares it with each engine.
const QueryExpected = "expected"

// ErrRepairRefused is the failure type of a refused repair (the tenant
// is not active, or its host is lost).
const ErrRepairRefused = "RepairRefused"

// CauseDrift is the Degraded.Cause of a tenant whose repair failed.
const CauseDrift = "drift"

// RepairRequest is what the reconcile found wrong with the tenant.
type RepairRequest struct {
	By      string    `json:"by"`
	FoundAt time.Time `json:"foundAt"`
	// Missing are the services whose container is gone, Stopped those
	// whose container does not run.
	Missing []string `json:"missing,omitempty"`
	Stopped []string `json:"stopped,omitempty"`
	// Network, Route and DNS: the tenant's network, route or DNS record
	// is gone.
	Network bool `json:"network,omitempty"`
	Route   bool `json:"route,omitempty"`
	DNS     bool `json:"dns,omitempty"`
	// Volumes are the volumes gone: never made again empty.
	Volumes []string `json:"volumes,omitempty"`
}

// RepairPhase is where a repair stands.
type RepairPhase string

// Phases of a repair.
const (
	RepairQueued    RepairPhase = "queued"
	RepairRepairing RepairPhase = "repairing"
	RepairDone      RepairPhase = "repaired"
	RepairFailed    RepairPhase = "failed"
)

// Repair is the repair under way, or the last one.
type Repair struct {
	Request     RepairRequest `json:"request"`
	Phase       RepairPhase   `json:"phase"`
	RequestedAt time.Time     `json:"requestedAt"`
	StartedAt   *time.Time    `json:"startedAt,omitempty"`
	FinishedAt  *time.Time    `json:"finishedAt,omitempty"`
	Error       string        `json:"error,omitempty"`
}

// Expected is what the tenant's runtime should hold, by the labels its
// objects carry: the services (with the generation of their current
// instance) and volumes of its environment, made by run Owner on Host
// ("": the shared engine).
type Expected struct {
	Runtime  string            `json:"runtime,omitempty"`
	Owner    string            `json:"owner,omitempty"`
	Host     string            `json:"host,omitempty"`
	Services []ExpectedService `json:"services"`
	Volumes  []string          `json:"volumes,omitempty"`
	// Busy: an operation runs (a backup may stop services while the
	// tenant stays active): what is missing or stopped now may be its.
	Busy bool `json:"busy,omitempty"`
}

// ExpectedService is one service and the generation of its instance.
type ExpectedService struct {
	Name       string `json:"name"`
	Generation int    `json:"generation,omitempty"`
}

// expected answers QueryExpected.
func (t *entity) expected() (Expected, error) {
	env, err := t.liveEnv()
	if err != nil {
		return Expected{}, err
	}
	e := Expected{Runtime: t.template.Runtime, Owner: t.state.ProvisionID, Volumes: env.Volumes, Services: []ExpectedService{}, Busy: t.busy}
	if p := t.state.Placement; p != nil {
		e.Host = p.Host
	}
	for _, s := range env.Services {
		e.Services = append(e.Services, ExpectedService{Name: s.Name, Generation: s.Generation})
	}
	return e, nil
}

// driftDegraded: the tenant is degraded by a failed repair (not by its
// host's loss).
func (t *entity) driftDegraded() bool {
	d := t.state.Degraded
	return t.state.State == StateDegraded && d != nil && d.Cause == CauseDrift
}

// repairable: a repair may run now.
func (t *entity) repairable() bool {
	return t.state.State == StateActive && t.state.Degraded == nil || t.driftDegraded()
}

// repairDue: a queued repair may run.
func (t *entity) repairDue() bool {
	r := t.state.Repair
	return r != nil && r.Phase == RepairQueued && t.repairable()
}

// requestRepair queues the repair (a queued one takes the newer request).
func (t *entity) requestRepair(ctx workflow.Context, in RepairRequest) (Repair, error) {
	t.state.Repair = &Repair{Request: in, Phase: RepairQueued, RequestedAt: workflow.Now(ctx)}
	t.logger(ctx).Info("repair requested", "by", in.By, "missing", in.Missing, "stopped", in.Stopped,
		"network", in.Network, "route", in.Route, "dns", in.DNS, "volumes", in.Volumes)
	return *t.state.Repair, nil
}

func (t *entity) validateRepair(ctx workflow.Context, in RepairRequest) error {
	switch {
	case in.By == "":
		return flow.Refuse(ErrRepairRefused, "a repair needs a requester (by)")
	case t.state.Repair != nil && t.state.Repair.Phase == RepairRepairing:
		return flow.Refuse(ErrRepairRefused, "tenant %s is being repaired already", t.spec.Name)
	case !t.repairable():
		return flow.Refuse(ErrRepairRefused, "tenant %s is %s: only an active tenant (or one a repair left degraded) is repaired", t.spec.Name, t.state.State)
	}
	return nil
}

// repair runs the queued repair (see above).
func (t *entity) repair(ctx workflow.Context) {
	r, started := t.state.Repair, workflow.Now(ctx)
	r.Phase, r.StartedAt, r.Error = RepairRepairing, timePtr(started), ""
	t.state.Progress = flow.Progress{Total: 2}
	err := t.repairRuntime(ctx, r.Request)
	t.step("")
	r.FinishedAt = timePtr(workflow.Now(ctx))
	if err != nil {
		t.failRepair(ctx, r, flow.ErrorMessage(err), started)
		return
	}
	r.Phase = RepairDone
	if t.driftDegraded() {
		t.state.Degraded = nil
		t.setState(ctx, StateActive, "")
	}
	t.logger(ctx).Info("tenant repaired", "missing", r.Request.Missing, "stopped", r.Request.Stopped)
	t.countRepair(ctx, "repaired", started)
}

// failRepair leaves the tenant degraded with the reason.
func (t *entity) failRepair(ctx workflow.Context, r *Repair, msg string, started time.Time) {
	r.Phase, r.Error = RepairFailed, msg
	reason := "repair after drift failed: " + msg
	since := workflow.Now(ctx)
	if t.driftDegraded() {
		since = t.state.Degraded.Since
	}
	host := ""
	if p := t.state.Placement; p != nil {
		host = p.Host
	}
	t.state.Degraded = &Degraded{Host: host, Since: since, Reason: reason, Cause: CauseDrift}
	t.logger(ctx).Error("repair failed; the tenant is degraded", "error", msg)
	t.setState(ctx, StateDegraded, reason)
	t.countRepair(ctx, "failed", started)
}

// countRepair counts the repair's outcome (tenantflow_drift_repairs_total)
// besides the operation's.
func (t *entity) countRepair(ctx workflow.Context, outcome string, started time.Time) {
	workflow.GetMetricsHandler(ctx).WithTags(map[string]string{"outcome": outcome}).Counter("tenantflow_drift_repairs_total").Inc(1)
	op := "succeeded"
	if outcome != "repaired" {
		op = "failed"
	}
	t.countOperation(ctx, "repair", op, started)
}

// repairRuntime makes the network again if it is gone, starts the named
// services, waits until healthy and points route, probes and DNS where
// the tenant now answers.
func (t *entity) repairRuntime(ctx workflow.Context, in RepairRequest) error {
	if len(in.Volumes) > 0 {
		return fmt.Errorf("volume(s) %s of the tenant are gone: they are not made again empty; restore the tenant's data from a backup",
			strings.Join(in.Volumes, ", "))
	}
	env, err := t.liveEnv()
	if err != nil {
		return err
	}
	t.step("restart services")
	if in.Network {
		if err := t.onHostLocal(ctx, localStepOptions, rt.CreateNetwork, t.runtimeRef()).Get(ctx, nil); err != nil {
			return err
		}
	}
	named := append(slices.Clone(in.Missing), in.Stopped...)
	if err := t.restartNamed(ctx, env, named); err != nil {
		return err
	}
	t.stepDone()
	t.step("wait until healthy")
	var ep runtimes.Endpoint
	if err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, healthWaitOptions(env))), rt.WaitHealthy, env).Get(ctx, &ep); err != nil {
		return err
	}
	var undo flow.Saga // a repair has nothing to put back
	if err := t.switchTo(ctx, ep, &undo); err != nil {
		return err
	}
	t.stepDone()
	if in.DNS {
		return t.republishDNS(ctx)
	}
	return nil
}

// restartNamed creates (when gone) and starts the named services of env.
func (t *entity) restartNamed(ctx workflow.Context, env spec.Environment, names []string) error {
	var errs error
	for _, svc := range env.Services {
		if !slices.Contains(names, svc.Name) {
			continue
		}
		var st runtimes.ServiceStatus
		err := t.onHostLocal(ctx, localStepOptions, rt.StartService,
			runtimes.ServiceInput{Runtime: t.template.Runtime, Tenant: t.spec.Name, Owner: t.state.ProvisionID, Service: svc}).Get(ctx, &st)
		if err != nil {
			errs = errors.Join(errs, err)
			continue
		}
		t.setService(st)
	}
	return errs
}

// republishDNS publishes the tenant's record again.
func (t *entity) republishDNS(ctx workflow.Context) error {
	r, ok := t.resource(KindDNS)
	if !ok {
		return nil
	}
	in := dns.RecordInput{Tenant: t.spec.Name, Name: r.ID, Owner: t.state.ProvisionID, Adopt: t.adopt()}
	return workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), dn.EnsureDNSRecord, in).Get(ctx, nil)
}
