// Package proxy gives each tenant its public URL: a route in Caddy, added
// and changed at run time through Caddy's admin API, that sends
// <tenant>.<domain> to the tenant's app. A route is found again by its @id
// (tenantflow-<tenant>), which makes every activity idempotent, and a change
// of upstreams is one PATCH of the route, which Caddy applies without
// dropping requests: the release workflow relies on it for zero-downtime
// cut-overs (new container beside the old one, then the route is switched).
//
// # Ownership
//
// A route names the provisioning run that made it in its first handler, a
// "vars" handler holding tenantflow_owner (Caddy keeps it verbatim in its
// config and it only sets a request variable). Every change of an existing
// route is conditional on the ETag of the route that was read and checked
// (If-Match), so Caddy applies it only if the route is still the one whose
// owner was checked. EnsureRoute refuses a route of another run
// (ResourceNotOurs) and RemoveRoute leaves it alone and succeeds: a tenant
// requested again after its workflow was terminated neither takes over nor,
// by compensation, unroutes the live tenant.
//
// Routes made before runs were stamped have no vars handler. Only calls with
// Adopt (the release, decommission and restore of an existing tenant, never
// its provisioning) treat such a route as theirs: Ensure rewrites it with
// their run, Remove deletes it. An empty Owner keeps the behaviour from
// before runs were stamped (any route with the tenant's @id).
package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// Error types shown in the Web UI for failures a retry cannot fix.
const (
	// ErrConfigRejected: Caddy's admin API refused the request with a 4xx
	// (admin URL host not in Caddy's allowed origins, a route Caddy cannot
	// use).
	ErrConfigRejected = "ProxyConfigRejected"
	// ErrInvalidInput: the tenant is not a DNS label or an upstream is not
	// host:port; nothing was sent to Caddy.
	ErrInvalidInput = "InvalidRouteInput"
	// ErrResourceNotOurs: the tenant's route was made by another provisioning run
	// (or before runs were stamped, for a call without Adopt).
	ErrResourceNotOurs = "ResourceNotOurs"
)

// OwnerVar is the variable of the route's vars handler that names the run
// that made the route.
const OwnerVar = "tenantflow_owner"

// RouteIDPrefix starts the @id of every route Tenantflow owns, so ops can
// tell them from hand-made routes and reach one at /id/tenantflow-<tenant>.
const RouteIDPrefix = "tenantflow-"

// maxAttempts bounds the read-then-write rounds one call makes when another
// writer changes Caddy's config between our read and our write (Caddy then
// answers 412 to our If-Match); after that the activity fails retryably.
const maxAttempts = 8

// RouteInput asks for the tenant's route to send its host to these
// upstreams, replacing whatever upstreams it had.
type RouteInput struct {
	Tenant    string   `json:"tenant"`
	Upstreams []string `json:"upstreams"` // host:port dial addresses
	// Owner is the provisioning run the route belongs to (see the package
	// documentation); empty: any route of the tenant.
	Owner string `json:"owner,omitempty"`
	// Adopt lets this call take over the tenant's route from before runs
	// were stamped: set by the release, decommission and restore of an
	// existing tenant, never by provisioning.
	Adopt bool `json:"adopt,omitempty"`
	// Maintenance, when set, makes the route answer every request with
	// the maintenance page (503, Retry-After) saying it, instead of
	// sending it to upstreams (there are none then): a suspended tenant.
	Maintenance string `json:"maintenance,omitempty"`
	// Aliases are the tenant's verified custom domains: the route serves
	// them too (Caddy's automatic HTTPS obtains their certificates).
	Aliases []string `json:"aliases,omitempty"`
}

// MaxAliases bounds a tenant's custom domains.
const MaxAliases = 20

// MaintenanceRetryAfter is the Retry-After of the maintenance page, in
// seconds: clients and crawlers come back later, not at once.
const MaintenanceRetryAfter = "3600"

// Route is the tenant's route as Caddy now serves it.
type Route struct {
	ID        string   `json:"id"`   // Caddy @id: tenantflow-<tenant>
	Host      string   `json:"host"` // <tenant>.<domain>
	URL       string   `json:"url"`  // what users open
	Upstreams []string `json:"upstreams"`
	// Maintenance: the route serves the maintenance page.
	Maintenance bool `json:"maintenance,omitempty"`
	// Aliases are the custom domains it serves too.
	Aliases []string `json:"aliases,omitempty"`
}

// RouteRef names the tenant whose route an activity works on, and the run
// that owns it (see RouteInput).
type RouteRef struct {
	Tenant string `json:"tenant"`
	Owner  string `json:"owner,omitempty"`
	Adopt  bool   `json:"adopt,omitempty"`
}

// conn is the configured connection to Caddy's admin API, shared by the
// Activities and the Client.
type conn struct {
	cfg   settings
	admin *admin
	log   *slog.Logger
}

// Client reaches Caddy for what is not an activity: the worker's
// sign-of-life check at start-up.
type Client struct{ *conn }

// Activities manage tenant routes in one Caddy. Every exported method is an
// activity, so the worker registers the struct whole
// (RegisterActivity(proxy.NewActivities(c))); workflows reference its
// methods through a nil pointer.
type Activities struct{ *conn }

// NewClient validates the configuration and prepares the admin API
// client; it does no network I/O, so the worker starts even while Caddy is
// down (Check tells at start-up, activities retry).
func NewClient(cfg Config, log *slog.Logger) (*Client, error) {
	s, err := cfg.settings()
	if err != nil {
		return nil, fmt.Errorf("proxy config: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{&conn{cfg: s, admin: newAdmin(s.admin), log: log}}, nil
}

// NewActivities are the route activities on c's Caddy.
func NewActivities(c *Client) *Activities { return &Activities{c.conn} }

// New is NewClient and NewActivities in one, for a caller that needs no
// Check.
func New(cfg Config, log *slog.Logger) (*Activities, error) {
	c, err := NewClient(cfg, log)
	if err != nil {
		return nil, err
	}
	return NewActivities(c), nil
}

// Check asks Caddy for its admin settings: a small answer that proves the
// admin API is reachable at the configured URL and accepts our Host header.
func (c *Client) Check(ctx context.Context) error {
	const path = "/config/admin"
	r, err := c.admin.do(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		return fmt.Errorf("check caddy admin API %s: %w", c.cfg.admin.Redacted(), err)
	}
	if r.status != http.StatusOK {
		return fmt.Errorf("check caddy admin API %s: %w", c.cfg.admin.Redacted(), r.unexpected(http.MethodGet, path))
	}
	return nil
}

// host is the tenant's public host name, <tenant>.<domain> (the domain
// normalised). Unexported: every exported method of Activities would be an
// activity.
func (a *Activities) host(tenant string) string {
	return tenant + "." + a.cfg.domain
}

// EnsureRoute makes the tenant's route exist and send to exactly
// in.Upstreams. A route that already does is left alone; one with other
// upstreams is replaced in a single PATCH, so Caddy switches from the old
// upstreams to the new ones without a moment where the host is unrouted.
// The HTTP server holding the routes is created first if Caddy has none.
func (a *Activities) EnsureRoute(ctx context.Context, in RouteInput) (Route, error) {
	id := RouteIDPrefix + in.Tenant
	if err := validateInput(in, a.host(in.Tenant)); err != nil {
		return Route{}, temporal.NewNonRetryableApplicationError(fmt.Sprintf("ensure route %s: %v", id, err), ErrInvalidInput, err)
	}
	want := a.caddyRoute(in)
	log := a.log.With("tenant", in.Tenant, "route", id, "owner", in.Owner)
	claim := func(current []byte) error { return mayChange(current, in.Tenant, in.Owner, in.Adopt) }
	for range maxAttempts {
		done, err := a.ensureOnce(ctx, want, claim, log)
		if err != nil {
			return Route{}, activityError("ensure route "+id, err)
		}
		if done {
			return a.route(in), nil
		}
	}
	return Route{}, fmt.Errorf("ensure route %s: Caddy's config changed during each of %d attempts", id, maxAttempts)
}

// RemoveRoute deletes the tenant's route, so its host is no longer
// served; a route that is already gone is success. Only this run's route
// (or, with Adopt, the tenant's route from before runs were stamped) is
// deleted, on the condition that it is still the route that was checked
// (If-Match); another run's route is left alone with a warning.
func (a *Activities) RemoveRoute(ctx context.Context, in RouteRef) error {
	id := RouteIDPrefix + in.Tenant
	if !validLabel(in.Tenant) {
		err := fmt.Errorf("tenant %q is not a DNS label", in.Tenant)
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("remove route %s: %v", id, err), ErrInvalidInput, err)
	}
	log := a.log.With("tenant", in.Tenant, "route", id, "owner", in.Owner)
	path := "/id/" + id
	// Caddy accepts a duplicate @id (added by hand) and indexes the last
	// one; delete until none of ours is left so the host is really
	// unrouted.
	removed := 0
	for range maxAttempts {
		r, err := a.admin.do(ctx, http.MethodGet, path, nil, "")
		if err != nil {
			return fmt.Errorf("remove route %s: %w", id, err)
		}
		switch r.status {
		case http.StatusOK:
		case http.StatusNotFound:
			if removed == 0 {
				log.Info("route already absent", "host", a.host(in.Tenant))
			}
			return nil
		default:
			return activityError("remove route "+id, r.unexpected(http.MethodGet, path))
		}
		if err := mayChange(r.body, in.Tenant, in.Owner, in.Adopt); err != nil {
			log.Warn("route is not this provisioning's: left alone", "host", a.host(in.Tenant), "reason", err.Error())
			return nil
		}
		d, err := a.admin.do(ctx, http.MethodDelete, path, nil, r.etag)
		if err != nil {
			return fmt.Errorf("remove route %s: %w", id, err)
		}
		switch d.status {
		case http.StatusOK:
			removed++
			log.Info("route removed", "host", a.host(in.Tenant))
		case http.StatusNotFound, http.StatusPreconditionFailed:
			// removed or changed since we read it: look again
		default:
			return activityError("remove route "+id, d.unexpected(http.MethodDelete, path))
		}
	}
	return fmt.Errorf("remove route %s: still present after %d attempts", id, maxAttempts)
}

// mayChange says whether a call of owner may change the route current (as
// Caddy returned it): its own route may be, a route from before runs were
// stamped with adopt, any with an empty owner; another is refused.
func mayChange(current []byte, tenant, owner string, adopt bool) error {
	got, stamped := routeOwner(current)
	switch {
	case owner == "", stamped && got == owner, !stamped && adopt:
		return nil
	}
	if !stamped {
		got = "none: made before runs were stamped"
	}
	msg := fmt.Sprintf("route %s%s exists but was not made by this provisioning of %s (owner %q, made by %q): is the tenant already deployed?",
		RouteIDPrefix, tenant, tenant, owner, got)
	return temporal.NewNonRetryableApplicationError(msg, ErrResourceNotOurs, nil)
}

// routeOwner reads the run a route names in its vars handler.
func routeOwner(raw []byte) (owner string, stamped bool) {
	var r struct {
		Handle []map[string]any `json:"handle"`
	}
	if json.Unmarshal(raw, &r) != nil {
		return "", false
	}
	for _, h := range r.Handle {
		if h["handler"] == "vars" {
			if o, ok := h[OwnerVar].(string); ok {
				return o, true
			}
		}
	}
	return "", false
}

// ensureOnce does one round of EnsureRoute. It reports done=false when the
// config changed under it and the caller should look again. An existing
// route is changed only if claim accepts it, conditional on its ETag.
func (a *Activities) ensureOnce(ctx context.Context, want caddyRoute, claim func([]byte) error, log *slog.Logger) (bool, error) {
	path := "/id/" + want.ID
	r, err := a.admin.do(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		return false, err
	}
	switch r.status {
	case http.StatusOK:
		if err := claim(r.body); err != nil {
			return false, err
		}
		return a.replace(ctx, want, r.body, r.etag, log)
	case http.StatusNotFound:
		return a.create(ctx, want, claim, log)
	default:
		return false, r.unexpected(http.MethodGet, path)
	}
}

// replace PATCHes the route by its @id unless current already equals want.
// ifMatch, when set, makes Caddy apply the PATCH only if the config it was
// read from is unchanged.
func (a *Activities) replace(ctx context.Context, want caddyRoute, current []byte, ifMatch string, log *slog.Logger) (bool, error) {
	wantJSON, err := json.Marshal(want)
	if err != nil {
		return false, fmt.Errorf("encode route: %w", err)
	}
	if sameJSON(current, wantJSON) {
		log.Debug("route already up to date", "upstreams", want.dials())
		return true, nil
	}
	path := "/id/" + want.ID
	r, err := a.admin.do(ctx, http.MethodPatch, path, want, ifMatch)
	if err != nil {
		return false, err
	}
	switch r.status {
	case http.StatusOK:
		log.Info("route upstreams switched", "host", want.host(), "from", dialsOf(current), "upstreams", want.dials())
		return true, nil
	case http.StatusNotFound, http.StatusPreconditionFailed:
		return false, nil // removed or changed meanwhile: look again
	default:
		return false, r.unexpected(http.MethodPatch, path)
	}
}

// create appends the route to the server's routes. The routes are read
// first, with their ETag, and the append is conditional on it: two attempts
// racing (a retry overlapping a slow first attempt) cannot both append,
// which matters because Caddy does not refuse a duplicate @id.
func (a *Activities) create(ctx context.Context, want caddyRoute, claim func([]byte) error, log *slog.Logger) (bool, error) {
	path := a.serverPath() + "/routes"
	r, err := a.admin.do(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		return false, err
	}
	switch {
	case r.status == http.StatusOK && !r.null():
		var routes []json.RawMessage
		if err := json.Unmarshal(r.body, &routes); err != nil {
			return false, fmt.Errorf("read %s: not a list of routes: %w", path, err)
		}
		for _, raw := range routes {
			var head struct {
				ID string `json:"@id"`
			}
			if json.Unmarshal(raw, &head) == nil && head.ID == want.ID {
				// added since our lookup by @id
				if err := claim(raw); err != nil {
					return false, err
				}
				return a.replace(ctx, want, raw, r.etag, log)
			}
		}
		w, err := a.admin.do(ctx, http.MethodPost, path, want, r.etag)
		if err != nil {
			return false, err
		}
		switch w.status {
		case http.StatusOK:
			log.Info("route created", "host", want.host(), "upstreams", want.dials())
			return true, nil
		case http.StatusPreconditionFailed:
			return false, nil
		default:
			return false, w.unexpected(http.MethodPost, path)
		}
	case r.status == http.StatusOK, r.status == http.StatusBadRequest:
		// null: no routes list; 400 "invalid traversal path": a level
		// above it (apps, http, servers, the server) is missing.
		return false, a.ensureServer(ctx, log)
	default:
		return false, r.unexpected(http.MethodGet, path)
	}
}

// ensureServer creates the missing part of apps.http.servers.<server>.routes
// below the deepest level that exists, conditional on that level's ETag, so
// it never overwrites what another writer just made and works on an empty
// Caddy too. The caller looks again afterwards in every case.
func (a *Activities) ensureServer(ctx context.Context, log *slog.Logger) error {
	levels := []string{"apps", "http", "servers", a.cfg.server, "routes"}
	for i := len(levels) - 1; i >= 0; i-- {
		parent := "/config/" + strings.Join(levels[:i], "/")
		r, err := a.admin.do(ctx, http.MethodGet, parent, nil, "")
		if err != nil {
			return err
		}
		if r.status == http.StatusOK && (!r.null() || i == 0) {
			var keys map[string]json.RawMessage
			if json.Unmarshal(r.body, &keys) == nil && keys[levels[i]] != nil {
				return nil // made by another writer since our deeper lookup
			}
			child := "/config/" + strings.Join(levels[:i+1], "/")
			w, err := a.admin.do(ctx, http.MethodPut, child, a.skeleton(levels, i), r.etag)
			if err != nil {
				return err
			}
			switch w.status {
			case http.StatusOK:
				log.Info("created tenant server config in Caddy", "path", child, "server", a.cfg.server, "listen", a.cfg.listen)
				return nil
			case http.StatusPreconditionFailed:
				return nil
			default:
				return w.unexpected(http.MethodPut, child)
			}
		}
		if r.status != http.StatusOK && r.status != http.StatusBadRequest {
			return r.unexpected(http.MethodGet, parent)
		}
	}
	return nil
}

// skeleton is the value to create at levels[i]: the tenant server (listen
// addresses, no routes yet) wrapped in the levels between.
func (a *Activities) skeleton(levels []string, i int) any {
	if i == len(levels)-1 {
		return []any{}
	}
	server := map[string]any{"listen": a.cfg.listen, "routes": []any{}}
	if a.cfg.scheme == "http" {
		// Plain HTTP tenants: without this Caddy would treat the server as
		// HTTPS and try to obtain a certificate for every tenant host.
		server["automatic_https"] = map[string]any{"disable": true}
	}
	v := any(server)
	for j := len(levels) - 2; j > i; j-- {
		v = map[string]any{levels[j]: v}
	}
	return v
}

func (a *Activities) serverPath() string {
	return "/config/apps/http/servers/" + a.cfg.server
}

func (a *Activities) caddyRoute(in RouteInput) caddyRoute {
	ups := make([]caddyUpstream, len(in.Upstreams))
	for i, u := range in.Upstreams {
		ups[i] = caddyUpstream{Dial: u}
	}
	var handle []caddyHandler
	if in.Owner != "" {
		handle = append(handle, caddyHandler{Handler: "vars", Owner: in.Owner})
	}
	serve := caddyHandler{Handler: "reverse_proxy", Upstreams: ups}
	if in.Maintenance != "" {
		serve = caddyHandler{
			Handler:    "static_response",
			StatusCode: http.StatusServiceUnavailable,
			Headers: map[string][]string{
				"Content-Type":  {"text/html; charset=utf-8"},
				"Retry-After":   {MaintenanceRetryAfter},
				"Cache-Control": {"no-store"},
			},
			Body: maintenancePage(a.host(in.Tenant), in.Maintenance),
		}
	}
	return caddyRoute{
		ID:       RouteIDPrefix + in.Tenant,
		Match:    []caddyMatch{{Host: append([]string{a.host(in.Tenant)}, in.Aliases...)}},
		Handle:   append(handle, serve),
		Terminal: true,
	}
}

// maintenancePage is the page a suspended tenant's URL answers: the
// message, HTML-escaped, and nothing else of the tenant.
func maintenancePage(host, message string) string {
	return "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>" + html.EscapeString(host) +
		" is unavailable</title></head>\n<body><h1>" + html.EscapeString(host) + " is unavailable</h1>\n<p>" +
		html.EscapeString(message) + "</p></body></html>\n"
}

func (a *Activities) route(in RouteInput) Route {
	host := a.host(in.Tenant)
	authority := host
	if a.cfg.port != "" {
		authority = net.JoinHostPort(host, a.cfg.port)
	}
	return Route{
		ID:          RouteIDPrefix + in.Tenant,
		Host:        host,
		URL:         a.cfg.scheme + "://" + authority,
		Upstreams:   append([]string(nil), in.Upstreams...),
		Maintenance: in.Maintenance != "",
		Aliases:     append([]string(nil), in.Aliases...),
	}
}

// caddyRoute is the route as Caddy's JSON config holds it.
type caddyRoute struct {
	ID       string         `json:"@id"`
	Match    []caddyMatch   `json:"match"`
	Handle   []caddyHandler `json:"handle"`
	Terminal bool           `json:"terminal"`
}

type caddyMatch struct {
	Host []string `json:"host"`
}

// caddyHandler is a reverse_proxy handler (Upstreams), the vars handler
// that names the route's owner (Owner), or the static_response of the
// maintenance page (StatusCode, Headers, Body).
type caddyHandler struct {
	Handler    string              `json:"handler"`
	Owner      string              `json:"tenantflow_owner,omitempty"`
	Upstreams  []caddyUpstream     `json:"upstreams,omitempty"`
	StatusCode int                 `json:"status_code,omitempty"`
	Headers    map[string][]string `json:"headers,omitempty"`
	Body       string              `json:"body,omitempty"`
}

type caddyUpstream struct {
	Dial string `json:"dial"`
}

func (r caddyRoute) host() string { return r.Match[0].Host[0] }

func (r caddyRoute) dials() []string {
	var d []string
	for _, h := range r.Handle {
		for _, u := range h.Upstreams {
			d = append(d, u.Dial)
		}
	}
	return d
}

// dialsOf reads the upstreams of a route as Caddy returned it, for the log.
func dialsOf(raw []byte) []string {
	var r caddyRoute
	_ = json.Unmarshal(raw, &r) // a hand-edited route may not decode: log what we got
	return r.dials()
}

// activityError wraps err with the operation. The non-retryable
// ApplicationError must be the error returned, not wrapped in another:
// Temporal reads retryability from the outermost error only. One that is
// an ApplicationError already (an ownership refusal) is returned as it is.
func activityError(op string, err error) error {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr == err { //nolint:errorlint // identity: the ApplicationError must be the error itself, unwrapped
		return err // decided already (ownership), with its own message
	}
	var rej *rejectedError
	if errors.As(err, &rej) {
		return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %v", op, err), ErrConfigRejected, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// validateInput checks what a retry cannot fix before anything is sent.
func validateInput(in RouteInput, host string) error {
	var errs []error
	if !validLabel(in.Tenant) {
		errs = append(errs, fmt.Errorf("tenant %q is not a DNS label (a-z, 0-9 and '-', at most 63)", in.Tenant))
	} else if len(host) > 253 {
		errs = append(errs, fmt.Errorf("host %q is longer than 253 characters", host))
	}
	switch {
	case in.Maintenance != "" && len(in.Upstreams) > 0:
		errs = append(errs, errors.New("a maintenance route has no upstreams"))
	case in.Maintenance == "" && len(in.Upstreams) == 0:
		errs = append(errs, errors.New("no upstream given"))
	}
	for _, u := range in.Upstreams {
		if err := validUpstream(u); err != nil {
			errs = append(errs, err)
		}
	}
	if len(in.Aliases) > MaxAliases {
		errs = append(errs, fmt.Errorf("%d aliases, over %d", len(in.Aliases), MaxAliases))
	}
	for i, h := range in.Aliases {
		switch {
		case !validHostname(h) || h != strings.ToLower(h):
			errs = append(errs, fmt.Errorf("alias %q is not a lower-case host name", h))
		case h == host:
			errs = append(errs, fmt.Errorf("alias %q is the tenant's own host", h))
		case slices.Contains(in.Aliases[:i], h):
			errs = append(errs, fmt.Errorf("alias %q is given twice", h))
		}
	}
	return errors.Join(errs...)
}

// validUpstream accepts host:port with an IP address or a host name and a
// port 1–65535: what Caddy can dial. Caddy itself accepts any string and
// fails only when a request comes, so this is the only check.
func validUpstream(u string) error {
	host, port, err := net.SplitHostPort(u)
	if err != nil {
		return fmt.Errorf("upstream %q is not host:port", u)
	}
	if _, err := netip.ParseAddr(host); err != nil && !validHostname(strings.ToLower(host)) {
		return fmt.Errorf("upstream %q: %q is neither an IP address nor a host name", u, host)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("upstream %q: port %q is not 1–65535", u, port)
	}
	return nil
}
