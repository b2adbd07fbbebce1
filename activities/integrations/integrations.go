// Package integrations tells the workflows which outside systems this
// installation uses (routing, DNS, directory, CMDB, supervision) and what a
// tenant's names there are. The worker's configuration decides; the
// workflow asks once, through a local activity, so the answer is recorded in
// history and a replay takes the same branches even if the configuration has
// changed since.
package integrations

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// Plan is what provisioning must do beyond the runtime, for one tenant.
type Plan struct {
	Routing     bool   `json:"routing"`
	Host        string `json:"host,omitempty"` // the tenant's FQDN, e.g. acme.apps.example.com
	URL         string `json:"url,omitempty"`  // its public URL when routing is on
	DNS         bool   `json:"dns"`
	Directory   bool   `json:"directory"`
	AdminUser   string `json:"adminUser,omitempty"`
	CMDB        bool   `json:"cmdb"`
	Supervision bool   `json:"supervision"`
	// ProbePublic makes supervision probe the public URL (through proxy and
	// DNS) rather than the service's internal endpoint.
	ProbePublic bool `json:"probePublic"`
	// Backup says a backup location is configured; a tenant is never
	// decommissioned without one. Retention is how long a decommissioned
	// tenant's volumes, accounts and backup are kept.
	Backup    bool          `json:"backup,omitempty"`
	Retention time.Duration `json:"retention,omitempty"`
}

// Settings are the worker's integration switches and naming rules.
type Settings struct {
	Routing      bool
	Domain       string // tenants are <tenant>.<Domain>
	PublicScheme string // https
	PublicPort   string // optional, e.g. 8443
	DNS          bool
	Directory    bool
	AdminUser    string
	CMDB         bool
	Supervision  bool
	ProbePublic  bool
	Backup       bool
	Retention    time.Duration
	// KeepInPlace are the runtimes whose storage keeps a decommissioned
	// tenant's volumes in place (no backup location needed); Routed are
	// the runtimes whose tenants the proxy routes and DNS publishes (an
	// OpenShift Route is the tenant's URL by itself).
	KeepInPlace []string
	Routed      []string
}

// Enabled lists the enabled integrations, for the start-up log.
func (s Settings) Enabled() []string {
	out := []string{}
	for _, i := range []struct {
		name string
		on   bool
	}{{"routing", s.Routing}, {"dns", s.DNS}, {"ldap", s.Directory}, {"cmdb", s.CMDB}, {"supervision", s.Supervision}, {"backup", s.Backup}} {
		if i.on {
			out = append(out, i.name)
		}
	}
	return out
}

// Input names the tenant to plan for.
type Input struct {
	Tenant string `json:"tenant"`
	// Runtime is the tenant's runtime (empty: docker).
	Runtime string `json:"runtime,omitempty"`
}

// Activities answers PlanIntegrations from the worker's settings.
type Activities struct {
	Settings Settings
}

// PlanIntegrations returns the tenant's plan. It does no I/O.
func (a *Activities) PlanIntegrations(_ context.Context, in Input) (Plan, error) {
	s := a.Settings
	rt := in.Runtime
	if rt == "" {
		rt = spec.Docker // tenants from before runtimes were named
	}
	if s.Routed != nil && !slices.Contains(s.Routed, rt) {
		// The tenant's URL is its runtime's (an OpenShift Route under the
		// router's wildcard record): a record for the proxy's address
		// would take its name away from the router.
		s.Routing, s.ProbePublic, s.DNS = false, false, false
	}
	if slices.Contains(s.KeepInPlace, rt) {
		s.Backup = true
	}
	p := Plan{
		Routing: s.Routing, DNS: s.DNS, Directory: s.Directory, CMDB: s.CMDB,
		Supervision: s.Supervision, ProbePublic: s.ProbePublic && s.Routing,
		Backup: s.Backup, Retention: s.Retention,
	}
	if s.Routing || s.DNS {
		if s.Domain == "" {
			return Plan{}, fmt.Errorf("routing or DNS is enabled but no tenant domain is configured (TENANTFLOW_PROXY_DOMAIN)")
		}
		p.Host = in.Tenant + "." + strings.TrimSuffix(s.Domain, ".")
	}
	if s.Routing {
		scheme := s.PublicScheme
		if scheme == "" {
			scheme = "https"
		}
		p.URL = scheme + "://" + p.Host
		if s.PublicPort != "" {
			p.URL += ":" + s.PublicPort
		}
	}
	if s.Directory {
		p.AdminUser = s.AdminUser
		if p.AdminUser == "" {
			p.AdminUser = "admin"
		}
	}
	return p, nil
}
