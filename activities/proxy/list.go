package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
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
	path := "/config/apps/http/servers/" + c.cfg.server + "/routes"
	r, err := c.admin.do(ctx, http.MethodGet, path, nil, "")
	if err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	switch {
	case r.status == http.StatusNotFound || r.status == http.StatusBadRequest || r.status == http.StatusOK && r.null():
		return []ListedRoute{}, nil // no tenant server: no routes
	case r.status != http.StatusOK:
		return nil, fmt.Errorf("list routes: %w", r.unexpected(http.MethodGet, path))
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(r.body, &raw); err != nil {
		return nil, fmt.Errorf("list routes: decode %s: %w", path, err)
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
