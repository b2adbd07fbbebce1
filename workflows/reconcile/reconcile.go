package reconcile

import (
	"cmp"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/activities/drift"
	"github.com/tenantflow/tenantflow/activities/placement"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// The activities the reconcile calls, named through nil pointers of
// their structs (the worker registers the real ones).
var (
	rt *runtimes.Activities
	dr *drift.Activities
	px *proxy.Activities
	dn *dns.Activities
	pl *placement.Activities
)

var (
	// Reads and removals on the shared queue: a failure is noted and the
	// next round looks again.
	callOptions = workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second, MaximumAttempts: 3},
	}
	// A scan on a host's queue: a worker that does not take it within
	// ScheduleToStart is down, and its engine is not judged this round.
	scanOptions = workflow.ActivityOptions{
		ScheduleToStartTimeout: 30 * time.Second,
		StartToCloseTimeout:    time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 2},
	}
)

// Workflow is the drift reconcile (see the package comment).
func Workflow(ctx workflow.Context, in Input) error {
	if in.Every <= 0 {
		in.Every = DefaultEvery
	}
	if in.Grace <= 0 {
		in.Grace = DefaultGrace
	}
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryReconcile, func() (Report, error) {
		if in.Last == nil {
			return Report{}, nil
		}
		return *in.Last, nil
	}, workflow.QueryHandlerOptions{Description: "The last round's findings: orphans, missing and stopped objects, per host, and what was done"}); err != nil {
		return err
	}
	for range rounds {
		in.Last, in.Seen = round(ctx, in)
		if err := workflow.Sleep(ctx, in.Every); err != nil {
			return err
		}
		if workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			break
		}
	}
	return workflow.NewContinueAsNewError(ctx, WorkflowType, in)
}

// round gathers, judges, acts and reports; it returns the report and
// the first-seen times of what it found.
func round(ctx workflow.Context, in Input) (*Report, map[string]time.Time) {
	started := workflow.Now(ctx)
	rep := &Report{At: started, Every: in.Every.String(), Grace: in.Grace.String(), Counts: map[Kind]int{}, Findings: []Finding{}}
	w, err := gather(ctx, rep)
	if err != nil {
		// Without the tenants every object would look orphaned: nothing
		// is judged, what was seen stays as it was.
		rep.Notes = append(rep.Notes, "the tenants could not be listed, nothing was judged: "+flow.ErrorMessage(err))
		workflow.GetLogger(ctx).Error("reconcile round: tenants not listed", "error", err)
		return finish(ctx, rep, started, false), in.Seen
	}
	found, remove, repairs, seen := w.plan(w.findings(), in.Seen, started, in.Grace)
	rep.Removed = removeOrphans(ctx, found, remove, seen)
	rep.Repairs = requestRepairs(ctx, found, repairs)
	rep.Findings = found
	for i, s := range w.Scans {
		rep.Hosts[i].Scanned, rep.Hosts[i].Objects = s.scanned(), len(s.Inv.Objects)
	}
	return finish(ctx, rep, started, true), seen
}

// finish counts, sorts and publishes the report; a round that judged
// nothing leaves the gauges as the last one set them.
func finish(ctx workflow.Context, rep *Report, started time.Time, judged bool) *Report {
	slices.SortFunc(rep.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Host, b.Host), cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Object, b.Object), cmp.Compare(a.Name, b.Name))
	})
	for _, f := range rep.Findings {
		rep.Counts[f.Kind]++
		for i := range rep.Hosts {
			if rep.Hosts[i].Host == f.Host {
				rep.Hosts[i].Counts[f.Kind]++
			}
		}
	}
	rep.TookMs = workflow.Now(ctx).Sub(started).Milliseconds()
	if !judged {
		return rep
	}
	m := workflow.GetMetricsHandler(ctx)
	for _, k := range Kinds {
		m.WithTags(map[string]string{"kind": string(k)}).Gauge("tenantflow_drift_objects").Update(float64(rep.Counts[k]))
	}
	m.Counter("tenantflow_drift_orphans_removed_total").Inc(int64(rep.Removed))
	m.WithTags(map[string]string{"outcome": "requested"}).Counter("tenantflow_drift_repairs_total").Inc(int64(rep.Repairs))
	workflow.GetLogger(ctx).Info("reconcile round", "orphan", rep.Counts[KindOrphan], "missing", rep.Counts[KindMissing],
		"stopped", rep.Counts[KindStopped], "removed", rep.Removed, "repairs", rep.Repairs)
	return rep
}

// gather reads every engine, the tenants, the proxy and DNS. Only the
// tenants are needed: what else fails is noted and left out.
func gather(ctx workflow.Context, rep *Report) (world, error) {
	actx := workflow.WithActivityOptions(ctx, callOptions)
	var w world
	var list []hosts.Host
	if err := workflow.ExecuteActivity(actx, pl.ListHosts).Get(ctx, &list); err != nil {
		rep.Notes = append(rep.Notes, "the fleet hosts could not be listed: "+flow.ErrorMessage(err))
	}
	w.ScannedAt = workflow.Now(ctx)
	w.Scans = scanEngines(ctx, list)
	for _, s := range w.Scans {
		rep.Hosts = append(rep.Hosts, HostReport{Host: s.Host, Problem: cmp.Or(s.Problem, s.Inv.Unsupported), Counts: map[Kind]int{}})
	}
	if err := workflow.ExecuteActivity(actx, dr.ListTenantStates).Get(ctx, &w.Tenants); err != nil {
		return w, err
	}
	rep.Tenants = len(w.Tenants)
	if err := workflow.ExecuteActivity(actx, dr.ListRoutes).Get(ctx, &w.Routes); err != nil {
		rep.Notes = append(rep.Notes, "the proxy's routes could not be listed: "+flow.ErrorMessage(err))
	}
	names := make([]string, len(w.Tenants))
	for i, v := range w.Tenants {
		names[i] = v.State.Name
	}
	if err := workflow.ExecuteActivity(actx, dr.InspectNames, names).Get(ctx, &w.Names); err != nil {
		rep.Notes = append(rep.Notes, "the DNS records could not be read: "+flow.ErrorMessage(err))
	}
	return w, nil
}

// scanEngines scans the shared engine and every fleet host's that is not
// lost (a lost host's worker refuses work), all at once.
func scanEngines(ctx workflow.Context, list []hosts.Host) []engineScan {
	scans := []engineScan{{Host: SharedEngine}}
	for _, h := range list {
		s := engineScan{Host: h.Name}
		if h.State == hosts.StateLost {
			s.Problem = "the host is lost"
		}
		scans = append(scans, s)
	}
	wg := workflow.NewWaitGroup(ctx)
	for i := range scans {
		if scans[i].Problem != "" {
			continue
		}
		wg.Add(1)
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer wg.Done()
			sctx := workflow.WithActivityOptions(ctx, scanOptions)
			if scans[i].Host != SharedEngine {
				sctx = workflow.WithTaskQueue(sctx, hosts.TaskQueue(scans[i].Host))
			}
			if err := workflow.ExecuteActivity(sctx, rt.ScanEngine, runtimes.ScanInput{}).Get(ctx, &scans[i].Inv); err != nil {
				scans[i].Problem = "not scanned: " + flow.ErrorMessage(err)
			}
		})
	}
	wg.Wait(ctx)
	return scans
}

// removeOrphans removes the orphans planned for removal (containers
// before networks, which they hold), recording each outcome; a removed
// one is forgotten from seen.
func removeOrphans(ctx workflow.Context, found []Finding, remove []int, seen map[string]time.Time) int {
	order := map[string]int{string(runtimes.ObjectContainer): 0, string(runtimes.ObjectNetwork): 1, ObjectRoute: 2, ObjectDNS: 3}
	slices.SortStableFunc(remove, func(a, b int) int { return cmp.Compare(order[found[a].Object], order[found[b].Object]) })
	n := 0
	for _, i := range remove {
		f := &found[i]
		if err := removeOne(ctx, *f); err != nil {
			f.Action = "removal failed: " + flow.ErrorMessage(err)
			continue
		}
		f.Action = ActionRemoved
		delete(seen, f.key())
		n++
	}
	return n
}

// removeOne removes one orphan where it lives.
func removeOne(ctx workflow.Context, f Finding) error {
	actx := workflow.WithActivityOptions(ctx, callOptions)
	switch f.Object {
	case ObjectRoute:
		return workflow.ExecuteActivity(actx, px.RemoveRoute, proxy.RouteRef{Tenant: f.Tenant, Owner: f.Owner}).Get(ctx, nil)
	case ObjectDNS:
		return workflow.ExecuteActivity(actx, dn.RemoveDNSRecord, dns.RecordInput{Tenant: f.Tenant, Name: f.Name, Owner: f.Owner}).Get(ctx, nil)
	}
	if f.Host != SharedEngine {
		actx = workflow.WithActivityOptions(actx, scanOptions)
		actx = workflow.WithTaskQueue(actx, hosts.TaskQueue(f.Host))
	}
	o := runtimes.Object{Kind: runtimes.ObjectKind(f.Object), Name: f.Name, ID: f.ID, Tenant: f.Tenant, Owner: f.Owner, Service: f.Service}
	return workflow.ExecuteActivity(actx, rt.RemoveOrphan, runtimes.RemoveObjectInput{Object: o}).Get(ctx, nil)
}

// requestRepairs asks each tenant for its repair and records a refusal
// on its findings.
func requestRepairs(ctx workflow.Context, found []Finding, repairs []repairFor) int {
	actx := workflow.WithActivityOptions(ctx, callOptions)
	n := 0
	for _, r := range repairs {
		var ans drift.RepairAnswer
		err := workflow.ExecuteActivity(actx, dr.RequestRepair, drift.RepairInput{Tenant: r.Tenant, Request: r.Request}).Get(ctx, &ans)
		action := ActionRepairRequested
		switch {
		case err != nil:
			action = "repair not requested: " + flow.ErrorMessage(err)
		case !ans.Accepted:
			action = "repair refused: " + ans.Refused
		default:
			n++
		}
		for i := range found {
			if found[i].Tenant == r.Tenant && found[i].Action == ActionRepairRequested {
				found[i].Action = action
			}
		}
	}
	return n
}
