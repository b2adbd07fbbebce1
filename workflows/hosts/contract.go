// Package hosts is the registry of the Docker hosts tenants run on: one
// long-lived workflow ("hosts") that records each host, its capacity and
// state, and the reservations of the tenants placed on it. Placement is
// an Update of that workflow, so two provisionings never take the same
// free capacity: Temporal runs its handlers one after the other.
//
// A tenant's host is data in its state; the host's own worker polls the
// host's task queue (TaskQueue) for the tenant's runtime activities.
package hosts

import "time"

// WorkflowType and WorkflowID name the registry: one per namespace.
const (
	WorkflowType = "Hosts"
	WorkflowID   = "hosts"
)

// Updates and the query of the registry.
const (
	UpdateRegister = "registerHost"
	UpdateReserve  = "reserveHost"
	UpdateRelease  = "releaseHost"
	UpdateSetState = "setHostState"
	UpdateResize   = "resizeReservation"
	QueryHosts     = "hosts"
)

// Failure types of refused Updates (the API maps them to 4xx).
const (
	ErrInvalid   = "HostInvalid"    // 400: a field is wrong (the message names it)
	ErrNotFound  = "HostNotFound"   // 404
	ErrConflict  = "HostConflict"   // 409: a move the host's state does not allow
	ErrNoHostFit = "NoHostFits"     // 409: no active host has room (the message says why each was passed over)
	ErrPinned    = "PinnedHostFull" // 409: the host asked for cannot take the tenant
	ErrNoRoom    = "HostNoRoom"     // 409: a reservation cannot grow on its host
)

// Signals the host watch sends each tenant placed on a host.
const (
	SignalHostLost = "hostLost" // the host's worker and engine stayed unreachable
	SignalHostBack = "hostBack" // a lost host answers again
)

// HostSignal is what SignalHostLost and SignalHostBack carry.
type HostSignal struct {
	Host   string    `json:"host"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason,omitempty"`
}

// TaskQueue is the task queue the host's worker polls for the runtime
// activities of the tenants placed on it.
func TaskQueue(host string) string { return "tenantflow-host-" + host }

// Resources are CPU and memory, as capacity or as a reservation (the
// template's limits).
type Resources struct {
	MilliCPU    int64 `json:"milliCpu"`
	MemoryBytes int64 `json:"memoryBytes"`
}

// Add is r + o.
func (r Resources) Add(o Resources) Resources {
	return Resources{MilliCPU: r.MilliCPU + o.MilliCPU, MemoryBytes: r.MemoryBytes + o.MemoryBytes}
}

// Sub is r - o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{MilliCPU: r.MilliCPU - o.MilliCPU, MemoryBytes: r.MemoryBytes - o.MemoryBytes}
}

// Fits reports whether need fits in r.
func (r Resources) Fits(need Resources) bool {
	return need.MilliCPU <= r.MilliCPU && need.MemoryBytes <= r.MemoryBytes
}

// HostSpec is what registers a host (POST /v1/hosts, or configuration).
type HostSpec struct {
	Name string `json:"name"`
	// Docker is the engine endpoint the host's worker uses (unix:// or
	// tcp://); the registry only records it.
	Docker string `json:"docker"`
	// Address is where the proxy reaches the tenants' published ports.
	Address string `json:"address"`
	// Sync is the URL the host's worker serves volume copies on
	// (TENANTFLOW_HOST_SYNC_LISTEN), for the tenants moved onto it; empty:
	// no tenant moves onto this host.
	Sync     string            `json:"sync,omitempty"`
	Capacity Resources         `json:"capacity"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// ZoneLabel is the label placement spreads tenants across.
const ZoneLabel = "zone"

// Host is a registered host as the API shows it.
type Host struct {
	HostSpec
	State        HostState              `json:"state"`
	RegisteredAt time.Time              `json:"registeredAt"`
	UpdatedAt    time.Time              `json:"updatedAt"`
	Reservations map[string]Reservation `json:"reservations,omitempty"` // by tenant
	// Reason is why the host is in its state (who cordoned it, why it is
	// lost).
	Reason string `json:"reason,omitempty"`
}

// Reserved is the sum of the host's reservations.
func (h Host) Reserved() Resources {
	var sum Resources
	for _, r := range h.Reservations {
		sum = sum.Add(r.Need)
	}
	return sum
}

// Free is what the host can still take.
func (h Host) Free() Resources { return h.Capacity.Sub(h.Reserved()) }

// Reservation is a tenant's share of a host, made by one provisioning
// (Owner): a retry of it gets the same host, another run's undo cannot
// release it.
type Reservation struct {
	Tenant string    `json:"tenant"`
	Owner  string    `json:"owner"`
	Need   Resources `json:"need"`
	At     time.Time `json:"at"`
}

// ReserveInput asks for a host for a tenant: Pin names one, otherwise
// placement chooses (see Place).
type ReserveInput struct {
	Tenant string    `json:"tenant"`
	Owner  string    `json:"owner"`
	Need   Resources `json:"need"`
	Pin    string    `json:"pin,omitempty"`
	// From is the host a move leaves: its reservation there is not this
	// one, and it is no candidate.
	From string `json:"from,omitempty"`
	// Op names the operation reserving (a move and when it was asked),
	// so each move is a reservation of its own.
	Op string `json:"op,omitempty"`
}

// Placement answers ReserveInput: the host and why it was chosen (the
// tenant's history records it).
type Placement struct {
	Host    string `json:"host"`
	Zone    string `json:"zone,omitempty"`
	Reason  string `json:"reason"`
	Address string `json:"address"`
	Queue   string `json:"queue"`
	// Sync is the host's volume copy URL (see HostSpec.Sync).
	Sync string `json:"sync,omitempty"`
}

// ReleaseInput gives a tenant's reservation back; only its owner may.
type ReleaseInput struct {
	Tenant string `json:"tenant"`
	Owner  string `json:"owner"`
	Host   string `json:"host"`
}

// ResizeInput changes the room a tenant's reservation holds (a plan
// change); only its owner may. Op names the step, so each is an Update
// of its own.
type ResizeInput struct {
	Tenant string    `json:"tenant"`
	Owner  string    `json:"owner"`
	Host   string    `json:"host"`
	Need   Resources `json:"need"`
	Op     string    `json:"op"`
}

// SetStateInput moves a host to another state (cordon, uncordon, drain,
// lost).
type SetStateInput struct {
	Host   string    `json:"host"`
	State  HostState `json:"state"`
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
}

// Input starts the registry, or carries its state across continue-as-new.
type Input struct {
	Hosts []Host `json:"hosts,omitempty"`
}
