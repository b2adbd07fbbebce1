package dns

import (
	"context"
	"fmt"
	"strings"

	mdns "github.com/miekg/dns"
)

// NameState is a tenant's DNS name as the server holds it: what the drift
// reconcile compares with the tenant. The zone is not listed (servers
// refuse zone transfers to their updaters): a name is asked for by the
// tenant it would belong to.
type NameState struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	// Addresses are its address or alias records (none: absent).
	Addresses []string `json:"addresses,omitempty"`
	// Owners are the runs its marks name ("" for the legacy mark, from
	// before runs were stamped); marks of other tenants are left out.
	Owners []string `json:"owners,omitempty"`
	// Foreign: the name holds marks, none of this tenant.
	Foreign bool `json:"foreign,omitempty"`
}

// Inspect reads the tenant's name (its FQDN in the zone): its address
// records and the runs its marks name. It only reads.
func (c *Client) Inspect(ctx context.Context, tenant, name string) (NameState, error) {
	fqdn := mdns.Fqdn(normalName(name))
	st := NameState{Tenant: tenant, Name: fqdn}
	addrs, err := c.Lookup(ctx, fqdn)
	if err != nil {
		return st, err
	}
	st.Addresses = addrs
	marks, err := (&Activities{c.conn}).marks(ctx, fqdn)
	if err != nil {
		return st, fmt.Errorf("inspect %s: %w", fqdn, err)
	}
	legacy := ownerValue(tenant, "")
	for _, m := range marks {
		switch {
		case m == legacy:
			st.Owners = append(st.Owners, "")
		case strings.HasPrefix(m, legacy+"/"):
			st.Owners = append(st.Owners, strings.TrimPrefix(m, legacy+"/"))
		}
	}
	st.Foreign = len(marks) > 0 && len(st.Owners) == 0
	return st, nil
}
