package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// ListedRoute is one of Tenantflow's routes as Caddy holds it: what the
// drift reconcile compares with the tenants.
type ListedRoute struct {
	ID     string `json:"id"`
	Tenant string `json:"tenant"`
	// Owner is the run its vars handler names; Stamped is false for a
	// route made before runs were stamped (no owner).
	Owner     string   `json:"owner,omitempty"`
	Stamped   bool     `json:"stamped"`
	Upstreams []string `json:"upstreams,omitempty"`
}

// Routes lists the routes of the tenant server whose @id starts with
// RouteIDPrefix (none when Caddy has no such server yet). It only reads.
func (c *Client) Routes(ctx context.Context) ([]ListedRoute, error) {
	raw, err := c.serverRoutes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	out := []ListedRoute{}
	for _, one := range raw {
		var head struct {
			ID string `json:"@id"`
		}
		if json.Unmarshal(one, &head) != nil || !strings.HasPrefix(head.ID, RouteIDPrefix) {
			continue // not ours
		}
		owner, stamped := routeOwner(one)
		out = append(out, ListedRoute{ID: head.ID, Tenant: strings.TrimPrefix(head.ID, RouteIDPrefix), Owner: owner, Stamped: stamped, Upstreams: dialsOf(one)})
	}
	return out, nil
}

// serverRoutes are the routes of the tenant server as Caddy holds them,
// none when Caddy has no such server yet. It only reads.
func (c *conn) serverRoutes(ctx context.Context) ([]json.RawMessage, error) {
	path := "/config/apps/http/servers/" + c.cfg.server + "/routes"
	r, err := c.admin.do(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		return nil, err
	}
	switch {
	case r.status == http.StatusNotFound || r.status == http.StatusBadRequest || r.status == http.StatusOK && r.null():
		return nil, nil // no tenant server: no routes
	case r.status != http.StatusOK:
		return nil, r.unexpected(http.MethodGet, path)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(r.body, &raw); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return raw, nil
}

// DomainInput names a custom domain a tenant wants its route to serve.
type DomainInput struct {
	Tenant string `json:"tenant"`
	Host   string `json:"host"`
}

// ErrDomainTaken is the failure type when another route of the server
// already serves the domain.
const ErrDomainTaken = "DomainTaken"

// CheckDomainFree refuses (ErrDomainTaken, not retryable) a domain that a
// route of the tenant server other than the tenant's own already serves:
// another tenant's alias, or a route made by hand. It only reads.
func (a *Activities) CheckDomainFree(ctx context.Context, in DomainInput) error {
	raw, err := a.serverRoutes(ctx)
	if err != nil {
		return activityError("check domain "+in.Host, err)
	}
	for _, one := range raw {
		var rt struct {
			ID    string `json:"@id"`
			Match []struct {
				Host []string `json:"host"`
			} `json:"match"`
		}
		if err := json.Unmarshal(one, &rt); err != nil {
			return fmt.Errorf("check domain %s: decode a route: %w", in.Host, err)
		}
		if rt.ID == RouteIDPrefix+in.Tenant {
			continue
		}
		for _, m := range rt.Match {
			for _, h := range m.Host {
				if strings.EqualFold(h, in.Host) || wildcardCovers(h, in.Host) {
					who := "a route made by hand"
					if strings.HasPrefix(rt.ID, RouteIDPrefix) {
						who = "tenant " + strings.TrimPrefix(rt.ID, RouteIDPrefix)
					}
					return temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s is already served by %s", in.Host, who), ErrDomainTaken, nil)
				}
			}
		}
	}
	return nil
}

// wildcardCovers tells a host matcher "*.customer.com" that matches host
// (one label in place of the star, as Caddy matches it).
func wildcardCovers(pattern, host string) bool {
	rest, ok := strings.CutPrefix(strings.ToLower(pattern), "*.")
	if !ok {
		return false
	}
	label, parent, ok := strings.Cut(strings.ToLower(host), ".")
	return ok && label != "" && parent == rest
}
