package reconcile

import (
	"fmt"
	"slices"
	"time"

	"github.com/tenantflow/tenantflow/activities/drift"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// The decisions of a round, without the SDK: what a round gathered (a
// world) gives findings, and the findings with what was seen before
// give the actions.

// engineScan is one engine's scan: Host is a fleet host's name or
// SharedEngine; Problem says why it was not scanned.
type engineScan struct {
	Host    string
	Inv     runtimes.Inventory
	Problem string
}

func (s engineScan) scanned() bool { return s.Problem == "" && s.Inv.Unsupported == "" }

// world is what a round gathered.
type world struct {
	// ScannedAt is when the engines' scans began: a tenant whose state
	// changed since (provisioning ended, a move finished) is judged next
	// round, the scans may predate its objects.
	ScannedAt time.Time
	Scans     []engineScan
	Tenants   []drift.TenantView
	Routes    drift.Routes
	Names     drift.Names
}

func (w world) tenant(name string) *drift.TenantView {
	for i := range w.Tenants {
		if w.Tenants[i].State.Name == name {
			return &w.Tenants[i]
		}
	}
	return nil
}

// settled: the tenant runs no operation that makes, stops or removes
// objects, its host is not lost, and its state did not change after the
// scans began; only such a tenant's objects are compared with what it
// expects.
func (w world) settled(v *drift.TenantView) bool {
	s := v.State
	if v.Expected != nil && v.Expected.Busy || s.UpdatedAt.After(w.ScannedAt) {
		return false
	}
	return s.State == tenant.StateActive && s.Degraded == nil || driftDegraded(s) || s.State == tenant.StateDecommissioned
}

func driftDegraded(s tenant.Tenant) bool {
	return s.State == tenant.StateDegraded && s.Degraded != nil && s.Degraded.Cause == tenant.CauseDrift
}

// serving: the tenant should have all its objects (active, or degraded
// by a failed repair).
func serving(v *drift.TenantView) bool {
	return v.State.State == tenant.StateActive && v.State.Degraded == nil || driftDegraded(v.State)
}

// engineOf names the engine the tenant runs on.
func engineOf(v *drift.TenantView) string {
	if p := v.State.Placement; p != nil {
		return p.Host
	}
	return SharedEngine
}

// ownedBy: an object of owner belongs to the tenant's provisioning (an
// empty owner on either side matches: objects and tenants from before
// runs were stamped).
func ownedBy(v *drift.TenantView, owner string) bool {
	return owner == "" || v.State.ProvisionID == "" || owner == v.State.ProvisionID
}

// findings compares everything the world holds.
func (w world) findings() []Finding {
	var out []Finding
	for _, s := range w.Scans {
		for _, o := range s.Inv.Objects {
			if f, ok := w.judgeObject(s.Host, o); ok {
				out = append(out, f)
			}
		}
		if s.scanned() {
			out = append(out, w.missingOn(s)...)
		}
	}
	out = append(out, w.judgeRoutes()...)
	return append(out, w.judgeNames()...)
}

// judgeObject judges one object of an engine.
func (w world) judgeObject(host string, o runtimes.Object) (Finding, bool) {
	f := Finding{Object: string(o.Kind), Name: o.Name, ID: o.ID, Host: host, Tenant: o.Tenant, Owner: o.Owner, Service: o.Service, Kind: KindOrphan}
	v := w.tenant(o.Tenant)
	switch {
	case v == nil:
		f.Reason, f.OwnerFinished = fmt.Sprintf("no tenant %s runs (never was, or its workflow ended)", o.Tenant), true
	case !ownedBy(v, o.Owner):
		f.Reason, f.OwnerFinished = fmt.Sprintf("made by run %s; the tenant's provisioning is %s", o.Owner, v.State.ProvisionID), true
	case !w.settled(v):
		return f, false // an operation (or a lost host) is under way: not judged
	case v.State.State == tenant.StateDecommissioned:
		if o.Kind == runtimes.ObjectVolume {
			return f, false // kept for the retention
		}
		f.Reason = "the tenant is decommissioned"
	case engineOf(v) != host:
		f.Reason = "the tenant runs on " + engineOf(v)
	case o.Kind != runtimes.ObjectContainer:
		return f, false
	case !currentInstance(v.Expected, o):
		f.Reason = fmt.Sprintf("service %s generation %d is not an instance the tenant runs", o.Service, o.Generation)
	case !o.Running:
		f.Kind, f.Reason = KindStopped, "the container is "+o.State
	default:
		return f, false
	}
	return f, true
}

// currentInstance: the container is the current instance of one of the
// tenant's services (unknown expectations: assumed so).
func currentInstance(e *tenant.Expected, o runtimes.Object) bool {
	if e == nil {
		return true
	}
	return slices.Contains(e.Services, tenant.ExpectedService{Name: o.Service, Generation: o.Generation})
}

// missingOn lists what the serving tenants of the engine lack there.
func (w world) missingOn(s engineScan) []Finding {
	var out []Finding
	for i := range w.Tenants {
		v := &w.Tenants[i]
		if !serving(v) || !w.settled(v) || engineOf(v) != s.Host || v.Expected == nil || (v.Expected.Runtime != "" && v.Expected.Runtime != spec.Docker) {
			continue
		}
		missing := func(object, name, service string) {
			out = append(out, Finding{Kind: KindMissing, Object: object, Name: name, Host: s.Host, Tenant: v.State.Name,
				Owner: v.State.ProvisionID, Service: service, Reason: fmt.Sprintf("the tenant is %s and has no %s %s here", v.State.State, object, name)})
		}
		has := func(match func(o runtimes.Object) bool) bool {
			return slices.ContainsFunc(s.Inv.Objects, func(o runtimes.Object) bool {
				return o.Tenant == v.State.Name && ownedBy(v, o.Owner) && match(o)
			})
		}
		if !has(func(o runtimes.Object) bool { return o.Kind == runtimes.ObjectNetwork }) {
			missing(string(runtimes.ObjectNetwork), v.State.Name, "")
		}
		for _, vol := range v.Expected.Volumes {
			if !has(func(o runtimes.Object) bool { return o.Kind == runtimes.ObjectVolume && o.Volume == vol }) {
				missing(string(runtimes.ObjectVolume), vol, "")
			}
		}
		for _, svc := range v.Expected.Services {
			if !has(func(o runtimes.Object) bool {
				return o.Kind == runtimes.ObjectContainer && o.Service == svc.Name && o.Generation == svc.Generation
			}) {
				missing(string(runtimes.ObjectContainer), svc.Name, svc.Name)
			}
		}
	}
	return out
}

func hasResource(v *drift.TenantView, kind tenant.ResourceKind) bool {
	return slices.ContainsFunc(v.State.Resources, func(r tenant.Resource) bool { return r.Kind == kind })
}

// judgeRoutes compares the proxy's routes with the tenants.
func (w world) judgeRoutes() []Finding {
	if !w.Routes.Enabled {
		return nil
	}
	var out []Finding
	for _, r := range w.Routes.Routes {
		f := Finding{Kind: KindOrphan, Object: ObjectRoute, Name: r.ID, Tenant: r.Tenant, Owner: r.Owner}
		v := w.tenant(r.Tenant)
		switch {
		case v == nil:
			f.Reason, f.OwnerFinished = fmt.Sprintf("no tenant %s runs", r.Tenant), true
		case r.Stamped && !ownedBy(v, r.Owner):
			f.Reason, f.OwnerFinished = fmt.Sprintf("made by run %s; the tenant's provisioning is %s", r.Owner, v.State.ProvisionID), true
		case v.State.State == tenant.StateDecommissioned:
			f.Reason = "the tenant is decommissioned"
		default:
			continue
		}
		out = append(out, f)
	}
	for i := range w.Tenants {
		v := &w.Tenants[i]
		if serving(v) && hasResource(v, tenant.KindRoute) &&
			!slices.ContainsFunc(w.Routes.Routes, func(r proxy.ListedRoute) bool { return r.Tenant == v.State.Name }) {
			out = append(out, Finding{Kind: KindMissing, Object: ObjectRoute, Name: v.State.Name, Tenant: v.State.Name,
				Owner: v.State.ProvisionID, Reason: "the tenant is routed but the proxy has no route for it"})
		}
	}
	return out
}

// judgeNames compares the tenants' DNS names with the tenants.
func (w world) judgeNames() []Finding {
	if !w.Names.Enabled {
		return nil
	}
	var out []Finding
	for _, n := range w.Names.Names {
		v := w.tenant(n.Tenant)
		if v == nil {
			continue
		}
		own := false
		for _, owner := range n.Owners {
			switch {
			case ownedBy(v, owner):
				own = true
			default:
				out = append(out, Finding{Kind: KindOrphan, Object: ObjectDNS, Name: n.Name, Tenant: n.Tenant, Owner: owner, OwnerFinished: true,
					Reason: fmt.Sprintf("marked by run %s; the tenant's provisioning is %s", owner, v.State.ProvisionID)})
			}
		}
		switch {
		case own && len(n.Addresses) > 0 && v.State.State == tenant.StateDecommissioned:
			out = append(out, Finding{Kind: KindOrphan, Object: ObjectDNS, Name: n.Name, Tenant: n.Tenant, Owner: v.State.ProvisionID,
				Reason: "the tenant is decommissioned"})
		case serving(v) && hasResource(v, tenant.KindDNS) && (!own || len(n.Addresses) == 0):
			out = append(out, Finding{Kind: KindMissing, Object: ObjectDNS, Name: n.Name, Tenant: n.Tenant, Owner: v.State.ProvisionID,
				Reason: "the tenant's DNS record is gone"})
		}
	}
	return out
}

// plan dates the findings (first seen, carried in seen) and decides each
// one's action: an orphan of a finished run seen for the grace period is
// to be removed (never a volume), the tenants with something missing or
// stopped (and those a repair left degraded) get a repair. It returns
// the dated findings, the indexes of those to remove, the repairs and
// the next seen.
func (w world) plan(found []Finding, seen map[string]time.Time, now time.Time, grace time.Duration) ([]Finding, []int, []repairFor, map[string]time.Time) {
	next := map[string]time.Time{}
	var remove []int
	for i := range found {
		f := &found[i]
		k := f.key()
		f.FirstSeen = now
		if at, ok := seen[k]; ok {
			f.FirstSeen = at
		}
		next[k] = f.FirstSeen
		f.Action = ActionReported
		if f.Kind != KindOrphan {
			continue
		}
		switch {
		case f.Object == string(runtimes.ObjectVolume):
			f.Action = ActionKept
		case f.OwnerFinished && now.Sub(f.FirstSeen) >= grace:
			remove = append(remove, i)
		}
	}
	return found, remove, w.repairs(found, now), next
}

// repairFor is one tenant's repair request.
type repairFor struct {
	Tenant  string
	Request tenant.RepairRequest
}

// repairs are the repair requests of the serving tenants, in the
// tenants' order, marking their findings: one per tenant with something
// missing or stopped, and one for each tenant a repair left degraded (a
// success makes it active). A tenant whose repair is under way is not
// asked again.
func (w world) repairs(found []Finding, now time.Time) []repairFor {
	var out []repairFor
	for i := range w.Tenants {
		v := &w.Tenants[i]
		if !serving(v) {
			continue
		}
		r := v.State.Repair
		underWay := r != nil && (r.Phase == tenant.RepairQueued || r.Phase == tenant.RepairRepairing)
		req := tenant.RepairRequest{By: WorkflowID, FoundAt: now}
		asked := driftDegraded(v.State)
		for j := range found {
			f := &found[j]
			if f.Tenant != v.State.Name || f.Kind == KindOrphan {
				continue
			}
			addToRepair(&req, *f)
			asked, f.Action = true, ActionRepairRequested
			if underWay {
				f.Action = ActionRepairUnderWay
			}
		}
		if asked && !underWay {
			out = append(out, repairFor{Tenant: v.State.Name, Request: req})
		}
	}
	return out
}

// addToRepair adds what f found to the tenant's request.
func addToRepair(r *tenant.RepairRequest, f Finding) {
	switch {
	case f.Kind == KindStopped:
		r.Stopped = appendOnce(r.Stopped, f.Service)
	case f.Object == string(runtimes.ObjectContainer):
		r.Missing = appendOnce(r.Missing, f.Service)
	case f.Object == string(runtimes.ObjectNetwork):
		r.Network = true
	case f.Object == string(runtimes.ObjectVolume):
		r.Volumes = appendOnce(r.Volumes, f.Name)
	case f.Object == ObjectRoute:
		r.Route = true
	case f.Object == ObjectDNS:
		r.DNS = true
	}
}

func appendOnce(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}
