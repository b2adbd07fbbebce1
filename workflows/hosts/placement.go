package hosts

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Place chooses the host for a tenant, deterministically (it runs in the
// registry's workflow):
//
//   - a tenant that holds a reservation already keeps its host (a retry
//     of the same provisioning);
//   - a pinned tenant gets its host if it is active and has room, or a
//     refusal naming why;
//   - otherwise only active hosts with room are candidates; the zone with
//     the fewest tenants wins (spread), then the host with the most free
//     memory, then CPU, then the name.
//
// When no host fits, the error says why each host was passed over.
func Place(hosts []Host, in ReserveInput) (Placement, error) {
	for _, h := range hosts {
		// A retry of the same reservation gets its host; a move pins
		// another host for the same owner, which is a new reservation.
		if r, ok := h.Reservations[in.Tenant]; ok && r.Owner == in.Owner && (in.Pin == "" || in.Pin == h.Name) && h.Name != in.From {
			return placement(h, "already reserved for this provisioning"), nil
		}
	}
	if in.Pin != "" {
		return placePinned(hosts, in)
	}
	zoneTenants := map[string]int{}
	for _, h := range hosts {
		zoneTenants[h.Zone()] += len(h.Reservations)
	}
	var fit []Host
	var passed []string
	for _, h := range hosts {
		if why := refusal(h, in); why != "" {
			passed = append(passed, h.Name+": "+why)
			continue
		}
		fit = append(fit, h)
	}
	if len(fit) == 0 {
		if len(hosts) == 0 {
			return Placement{}, fmt.Errorf("no host is registered")
		}
		slices.Sort(passed)
		return Placement{}, fmt.Errorf("no host has room for %s (%s): %s", in.Tenant, in.Need, strings.Join(passed, "; "))
	}
	best := slices.MinFunc(fit, func(a, b Host) int {
		return cmp.Or(
			cmp.Compare(zoneTenants[a.Zone()], zoneTenants[b.Zone()]),
			cmp.Compare(b.Free().MemoryBytes, a.Free().MemoryBytes),
			cmp.Compare(b.Free().MilliCPU, a.Free().MilliCPU),
			cmp.Compare(a.Name, b.Name))
	})
	why := fmt.Sprintf("%d of %d hosts fit; zone %q had the fewest tenants (%d), then the most free memory", len(fit), len(hosts), best.Zone(), zoneTenants[best.Zone()])
	return placement(best, why), nil
}

func placePinned(hosts []Host, in ReserveInput) (Placement, error) {
	i := slices.IndexFunc(hosts, func(h Host) bool { return h.Name == in.Pin })
	if i < 0 {
		return Placement{}, fmt.Errorf("host %s is not registered", in.Pin)
	}
	if why := refusal(hosts[i], in); why != "" {
		return Placement{}, fmt.Errorf("host %s cannot take %s: %s", in.Pin, in.Tenant, why)
	}
	return placement(hosts[i], "pinned"), nil
}

// refusal says why h cannot take the tenant ("" when it can).
func refusal(h Host, in ReserveInput) string {
	if r, ok := h.Reservations[in.Tenant]; ok {
		return fmt.Sprintf("holds %s already (for run %s)", in.Tenant, r.Owner)
	}
	if h.State != StateActive {
		return string(h.State)
	}
	if free := h.Free(); !free.Fits(in.Need) {
		return "free " + free.String()
	}
	return ""
}

func placement(h Host, why string) Placement {
	return Placement{Host: h.Name, Zone: h.Zone(), Reason: why, Address: h.Address, Queue: TaskQueue(h.Name), Sync: h.Sync}
}

// Zone is the host's zone label ("" when it has none).
func (h Host) Zone() string { return h.Labels[ZoneLabel] }

// String shows resources as people write them.
func (r Resources) String() string {
	return fmt.Sprintf("%gcpu %dMi", float64(r.MilliCPU)/1000, r.MemoryBytes>>20)
}
