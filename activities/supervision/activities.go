// Package supervision registers a tenant's URL with the monitoring system so
// that an outage raises an alert, and removes it when the tenant goes. Two
// drivers sit behind the same activity names, so workflows never know which
// one runs: Prometheus (a file_sd file probed through the blackbox exporter)
// and Icinga 2 (a host with an http service, through its REST API).
//
// # Ownership
//
// What is registered names the provisioning run that made it: the file_sd
// target group carries the label __tenantflow_owner (Prometheus drops
// labels starting with "__" after relabeling, so the tenant's series and
// alerts keep their identity across runs), the Icinga 2 host the custom
// variable vars.tenantflow_owner (set in the same PUT that creates it).
// StartSupervision refuses another run's registration (ResourceNotOurs) and
// never changes it; StopSupervision leaves it alone and succeeds: a tenant
// requested again after its workflow was terminated neither takes over nor,
// by compensation, silences the live tenant's alerts. Icinga 2 checks the
// owner in the same request (a filter on the variable); the Prometheus
// driver checks the file it is about to replace or remove, and creates a
// new file only where none exists (a hard link, which fails if another
// writer was first).
//
// Registrations from before runs were stamped carry no owner. Only calls
// with Adopt (the release, decommission and restore of an existing tenant,
// never its provisioning) treat such a registration of the tenant as
// theirs: Start stamps it, Stop removes it. An empty Owner keeps the
// behaviour from before runs were stamped.
package supervision

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// Error types shown in the Web UI for failures a retry cannot fix.
const (
	ErrInvalidInput  = "InvalidSupervisionInput"
	ErrUnauthorized  = "SupervisionUnauthorized"
	ErrRejected      = "SupervisionRejected"
	ErrMisconfigured = "SupervisionMisconfigured"
	ErrConflict      = "SupervisionConflict"
	// ErrResourceNotOurs: the tenant's registration was made by another
	// provisioning run (or before runs were stamped, without Adopt).
	ErrResourceNotOurs = "ResourceNotOurs"
)

// Driver is what a monitoring system must do for the tenant workflows. Watch
// converges: calling it again with the same or a changed input leaves exactly
// one registration matching the input. Unwatch succeeds when nothing is
// registered.
type Driver interface {
	Watch(ctx context.Context, in WatchInput) error
	Unwatch(ctx context.Context, ref WatchRef) error
	// Check proves the monitoring system is reachable with this
	// configuration; the worker logs the result at start-up. It is no
	// activity.
	Check(ctx context.Context) error
}

var (
	_ Driver = (*PrometheusDriver)(nil)
	_ Driver = (*Icinga2Driver)(nil)
)

// WatchInput asks for a tenant's URL to be probed and alerted on.
type WatchInput struct {
	Tenant string `json:"tenant"`
	// Stage (prod, staging, …) is attached to the alert so on-call sees
	// how urgent it is.
	Stage string `json:"stage"`
	// URL is what is probed, http or https; a 2xx answer means up.
	URL string `json:"url"`
	// Owner is the provisioning run the registration belongs to (see the
	// package documentation); empty: any registration of the tenant.
	Owner string `json:"owner,omitempty"`
	// Adopt lets this call take over the tenant's registration from
	// before runs were stamped: set by the release, decommission and
	// restore of an existing tenant, never by provisioning.
	Adopt bool `json:"adopt,omitempty"`
}

// WatchRef names the tenant whose supervision is removed, and the run that
// owns it (see WatchInput).
type WatchRef struct {
	Tenant string `json:"tenant"`
	Owner  string `json:"owner,omitempty"`
	Adopt  bool   `json:"adopt,omitempty"`
}

// mayTouch says whether a call of owner (adopt) may change a registration
// that names got (stamped: it names one at all).
func mayTouch(owner, got string, stamped, adopt bool) bool {
	return owner == "" || (stamped && got == owner) || (!stamped && adopt)
}

// notOurs refuses another run's registration.
func notOurs(what, tenant, owner, got string, stamped bool) error {
	if !stamped {
		got = "none: made before runs were stamped"
	}
	return temporal.NewNonRetryableApplicationError(
		fmt.Sprintf("%s exists but was not made by this provisioning of %s (owner %q, made by %q): is the tenant already deployed?", what, tenant, owner, got),
		ErrResourceNotOurs, nil)
}

// Activities is the supervision surface the workflows call
// (var a *supervision.Activities; a.StartSupervision), whatever the driver.
// Every exported method is an activity, so the worker registers the struct
// whole (RegisterActivity(supervision.NewActivities(d, log))).
type Activities struct {
	driver Driver
	log    *slog.Logger
}

// NewDriver validates the configuration and builds the selected driver
// without talking to it (the worker calls its Check for that).
// Supervision must be enabled: with the driver none there is nothing to
// build.
func NewDriver(cfg Config, log *slog.Logger) (Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("supervision configuration: %w", err)
	}
	log = driverLog(cfg, log)
	switch cfg.driver() {
	case DriverPrometheus:
		return NewPrometheusDriver(cfg.Prometheus, cfg.Timeout, log)
	case DriverIcinga2:
		return NewIcinga2Driver(cfg.Icinga2, cfg.Timeout, log)
	default:
		return nil, fmt.Errorf("supervision is disabled (%s=%s): there is no driver to build", EnvDriver, DriverNone)
	}
}

// driverLog is the log of cfg's driver and its activities.
func driverLog(cfg Config, log *slog.Logger) *slog.Logger {
	if log == nil {
		log = slog.Default()
	}
	return log.With("component", "supervision", "driver", cfg.driver())
}

// NewActivities are the supervision activities on driver d.
func NewActivities(d Driver, log *slog.Logger) *Activities {
	if log == nil {
		log = slog.Default()
	}
	return &Activities{driver: d, log: log}
}

// New is NewDriver and NewActivities in one, for a caller that needs no
// Check.
func New(cfg Config, log *slog.Logger) (*Activities, error) {
	d, err := NewDriver(cfg, log)
	if err != nil {
		return nil, err
	}
	return NewActivities(d, driverLog(cfg, log)), nil
}

// StartSupervision makes the monitoring system probe the tenant's URL and
// alert when it fails. Idempotent: a retry or a second call (also with a
// changed URL or stage) leaves one registration that matches the input.
func (a *Activities) StartSupervision(ctx context.Context, in WatchInput) error {
	if err := validateWatch(in); err != nil {
		return err
	}
	if err := a.driver.Watch(ctx, in); err != nil {
		return err
	}
	a.log.InfoContext(ctx, "supervision started", "tenant", in.Tenant, "owner", in.Owner, "stage", in.Stage, "url", in.URL)
	return nil
}

// StopSupervision removes the tenant from monitoring, so a decommissioned
// tenant raises no alert. Nothing registered is success.
func (a *Activities) StopSupervision(ctx context.Context, in WatchRef) error {
	if err := validateTenant(in.Tenant); err != nil {
		return err
	}
	if err := a.driver.Unwatch(ctx, in); err != nil {
		return err
	}
	a.log.InfoContext(ctx, "supervision stopped", "tenant", in.Tenant, "owner", in.Owner)
	return nil
}

// validateTenant keeps tenant names to DNS labels: they become file names
// and Icinga object names, where anything else could escape the namespace.
func validateTenant(tenant string) error {
	if !spec.IsDNSLabel(tenant, 63) {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("tenant %q is not a valid name (lowercase letters, digits, hyphens)", tenant), ErrInvalidInput, nil)
	}
	return nil
}

func validateWatch(in WatchInput) error {
	if err := validateTenant(in.Tenant); err != nil {
		return err
	}
	if _, err := parseProbeURL(in.URL); err != nil {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("supervise tenant %s: %v", in.Tenant, err), ErrInvalidInput, nil)
	}
	return nil
}

// parseProbeURL accepts the absolute http(s) URLs a prober can fetch.
func parseProbeURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("probe URL is not a valid URL")
	case u.User != nil:
		return nil, fmt.Errorf("probe URL %q must not contain credentials", u.Redacted())
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("probe URL %q: scheme must be http or https", raw)
	case u.Hostname() == "":
		return nil, fmt.Errorf("probe URL %q has no host", raw)
	}
	return u, nil
}
