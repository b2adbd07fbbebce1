package hosts

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/workflows/flow"
)

// registry is the workflow's state: the hosts, by name order.
type registry struct {
	hosts []Host
}

// Workflow is the registry: it records hosts and reservations, answers
// the hosts query, and continues as new when its history grows long.
// Its handlers only change state; nothing runs outside them.
func Workflow(ctx workflow.Context, in Input) error {
	r := &registry{hosts: in.Hosts}
	if err := r.registerHandlers(ctx); err != nil {
		return err
	}
	if err := workflow.Await(ctx, func() bool { return workflow.GetInfo(ctx).GetContinueAsNewSuggested() }); err != nil {
		return err
	}
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	return workflow.NewContinueAsNewError(ctx, WorkflowType, Input{Hosts: r.hosts})
}

func (r *registry) registerHandlers(ctx workflow.Context) error {
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryHosts, func() ([]Host, error) { return r.hosts, nil },
		workflow.QueryHandlerOptions{Description: "Every host: capacity, state and the tenants' reservations"}); err != nil {
		return err
	}
	for _, u := range []struct {
		name, description  string
		handler, validator any
	}{
		{UpdateRegister, "Register a host, or change its endpoint, address, capacity or labels", r.register, r.validateRegister},
		{UpdateReserve, "Place a tenant: reserve its resources on a host (the same host for a retry of its provisioning)", r.reserve, r.validateReserve},
		{UpdateRelease, "Give a tenant's reservation back (its owner only)", r.release, r.validateRelease},
		{UpdateResize, "Resize a tenant's reservation on its host (its owner only): growing needs room on an active host", r.resize, r.validateResize},
		{UpdateSetState, "Cordon, uncordon, drain a host, or mark it lost", r.setState, r.validateSetState},
	} {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, u.name, u.handler, workflow.UpdateHandlerOptions{
			Description: u.description, Validator: u.validator,
		}); err != nil {
			return err
		}
	}
	return nil
}

func (r *registry) find(name string) *Host {
	for i := range r.hosts {
		if r.hosts[i].Name == name {
			return &r.hosts[i]
		}
	}
	return nil
}

var hostName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$`)

// CheckSpec names the first bad field of a host's registration.
func CheckSpec(s HostSpec) (field, problem string) {
	switch {
	case !hostName.MatchString(s.Name):
		return "name", "a host name is 1-40 lowercase letters, digits and inner '-'"
	case !validEndpoint(s.Docker):
		return "docker", "the Docker endpoint is unix:///path or tcp://host:port"
	case s.Address == "" || strings.ContainsAny(s.Address, "/ :"):
		return "address", "the address the proxy reaches published ports on is an IP or a host name"
	case s.Sync != "" && !validSync(s.Sync):
		return "sync", "the volume copy URL is http(s)://host:port"
	case s.Capacity.MilliCPU <= 0:
		return "capacity.cpus", "must be more than 0"
	case s.Capacity.MemoryBytes < 64<<20:
		return "capacity.memory", "must be at least 64Mi"
	}
	return "", ""
}

func validSync(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil && u.RawQuery == ""
}

func validEndpoint(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "unix":
		return strings.HasPrefix(u.Path, "/")
	case "tcp", "ssh":
		return u.Host != ""
	}
	return false
}

func (r *registry) validateRegister(ctx workflow.Context, s HostSpec) error {
	if field, problem := CheckSpec(s); field != "" {
		return refuse(ErrInvalid, "%s: %s", field, problem)
	}
	if h := r.find(s.Name); h != nil && !s.Capacity.Fits(h.Reserved()) {
		return refuse(ErrConflict, "host %s holds %s of reservations: its capacity cannot shrink to %s", s.Name, h.Reserved(), s.Capacity)
	}
	return nil
}

// register adds the host (active) or updates its registration, keeping
// its state and reservations.
func (r *registry) register(ctx workflow.Context, s HostSpec) (Host, error) {
	now := workflow.Now(ctx)
	if h := r.find(s.Name); h != nil {
		h.HostSpec, h.UpdatedAt = s, now
		workflow.GetLogger(ctx).Info("host updated", "host", s.Name)
		return *h, nil
	}
	r.hosts = append(r.hosts, Host{HostSpec: s, State: StateActive, RegisteredAt: now, UpdatedAt: now, Reservations: map[string]Reservation{}})
	slices.SortFunc(r.hosts, func(a, b Host) int { return strings.Compare(a.Name, b.Name) })
	workflow.GetLogger(ctx).Info("host registered", "host", s.Name, "capacity", s.Capacity.String(), "zone", s.Labels[ZoneLabel])
	return *r.find(s.Name), nil
}

func (r *registry) validateReserve(ctx workflow.Context, in ReserveInput) error {
	switch {
	case in.Tenant == "" || in.Owner == "":
		return refuse(ErrInvalid, "a reservation needs a tenant and its owner (the provisioning run)")
	case in.Need.MilliCPU < 0 || in.Need.MemoryBytes < 0:
		return refuse(ErrInvalid, "a reservation needs no negative resources")
	}
	if _, err := Place(r.hosts, in); err != nil {
		typ := ErrNoHostFit
		if in.Pin != "" {
			typ = ErrPinned
		}
		return refuse(typ, "%v", err)
	}
	return nil
}

// reserve places the tenant and records its reservation.
func (r *registry) reserve(ctx workflow.Context, in ReserveInput) (Placement, error) {
	p, err := Place(r.hosts, in)
	if err != nil {
		return Placement{}, err // the validator ran Place on the same state: not reached
	}
	h := r.find(p.Host)
	h.Reservations[in.Tenant] = Reservation{Tenant: in.Tenant, Owner: in.Owner, Need: in.Need, At: workflow.Now(ctx)}
	workflow.GetLogger(ctx).Info("tenant placed", "tenant", in.Tenant, "host", p.Host, "reason", p.Reason)
	return p, nil
}

func (r *registry) validateRelease(ctx workflow.Context, in ReleaseInput) error {
	h := r.find(in.Host)
	if h == nil {
		return refuse(ErrNotFound, "host %s is not registered", in.Host)
	}
	if res, ok := h.Reservations[in.Tenant]; ok && res.Owner != in.Owner {
		return refuse(ErrConflict, "the reservation of %s on %s was made by run %s, not %s: it stays", in.Tenant, in.Host, res.Owner, in.Owner)
	}
	return nil
}

// release drops the reservation (none: nothing to do, a retry).
func (r *registry) release(ctx workflow.Context, in ReleaseInput) (Host, error) {
	h := r.find(in.Host)
	if _, ok := h.Reservations[in.Tenant]; ok {
		delete(h.Reservations, in.Tenant)
		workflow.GetLogger(ctx).Info("reservation released", "tenant", in.Tenant, "host", in.Host)
	}
	return *h, nil
}

func (r *registry) validateResize(ctx workflow.Context, in ResizeInput) error {
	h := r.find(in.Host)
	if h == nil {
		return refuse(ErrNotFound, "host %s is not registered", in.Host)
	}
	res, ok := h.Reservations[in.Tenant]
	switch {
	case in.Need.MilliCPU <= 0 || in.Need.MemoryBytes <= 0:
		return refuse(ErrInvalid, "a reservation needs CPU and memory")
	case !ok:
		return refuse(ErrNotFound, "%s holds no reservation on %s", in.Tenant, in.Host)
	case res.Owner != in.Owner:
		return refuse(ErrConflict, "the reservation of %s on %s was made by run %s, not %s: it stays", in.Tenant, in.Host, res.Owner, in.Owner)
	case res.Need.Fits(in.Need):
		return nil // shrinks (or a retry): always
	case h.State != StateActive:
		return refuse(ErrNoRoom, "host %s is %s: a reservation on it may shrink, not grow", in.Host, h.State)
	case !h.Free().Add(res.Need).Fits(in.Need):
		return refuse(ErrNoRoom, "host %s has %s free besides the %s %s holds; %s needs %s: move the tenant first",
			in.Host, h.Free(), res.Need, in.Tenant, in.Tenant, in.Need)
	}
	return nil
}

// resize sets the reservation's room (the validator checked it fits).
func (r *registry) resize(ctx workflow.Context, in ResizeInput) (Host, error) {
	h := r.find(in.Host)
	res := h.Reservations[in.Tenant]
	if res.Need != in.Need {
		workflow.GetLogger(ctx).Info("reservation resized", "tenant", in.Tenant, "host", in.Host, "from", res.Need.String(), "to", in.Need.String())
		res.Need = in.Need
		h.Reservations[in.Tenant] = res
	}
	return *h, nil
}

func (r *registry) validateSetState(ctx workflow.Context, in SetStateInput) error {
	h := r.find(in.Host)
	switch {
	case h == nil:
		return refuse(ErrNotFound, "host %s is not registered", in.Host)
	case in.By == "":
		return refuse(ErrInvalid, "a state change needs who asks (by)")
	case h.State == in.State:
		return nil // done already: a retry
	}
	if _, err := h.State.To(in.State); err != nil {
		return refuse(ErrConflict, "host %s is %s: %v", in.Host, h.State, err)
	}
	return nil
}

func (r *registry) setState(ctx workflow.Context, in SetStateInput) (Host, error) {
	h := r.find(in.Host)
	if h.State != in.State {
		h.State = flow.Must(h.State.To(in.State))
		h.Reason = strings.TrimSpace(fmt.Sprintf("%s by %s: %s", in.State, in.By, in.Reason))
		h.UpdatedAt = workflow.Now(ctx)
		workflow.GetLogger(ctx).Info("host state changed", "host", in.Host, "state", in.State, "by", in.By, "reason", in.Reason)
	}
	return *h, nil
}

func refuse(typ, format string, args ...any) error {
	return temporal.NewApplicationError(fmt.Sprintf(format, args...), typ)
}
