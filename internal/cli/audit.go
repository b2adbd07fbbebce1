package cli

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// auditFilter is what audit asks GET /v1/audit for.
type auditFilter struct {
	tenant, actor, action, since, until string
}

// auditParams are the filters' query parameters (and flags), in the order
// the next page's command repeats them.
var auditParams = []string{"tenant", "actor", "action", "since", "until"}

func (a *app) auditCmd() *cobra.Command {
	var f auditFilter
	var p pager
	cmd := &cobra.Command{
		Use:   "audit [--tenant T] [--actor A] [--action X] [--since S] [--until U]",
		Short: "read the audit trail: who changed what, why, and how it ended (ops)",
		Long: `Read the audit trail, oldest first: each request that changed something (or
took a secret), who made it (role and caller), what about, why, and how it
ended (accepted, refused, failed, or unknown: no worker answered in time).

  tenantflow audit --tenant acme --since 24h
  tenantflow audit --action tenant.suspend --since 2026-12-01T00:00:00Z

` + configHelp,
		Args: args(),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.tenant, "tenant", "", "only entries about this tenant")
	fl.StringVar(&f.actor, "actor", "", "only entries of this caller name or role")
	fl.StringVar(&f.action, "action", "", "only entries of this action (tenant.create, release.promote, host.drain, …)")
	fl.StringVar(&f.since, "since", "", `only entries at or after: an RFC 3339 time, or a duration back from now ("24h")`)
	fl.StringVar(&f.until, "until", "", "only entries before: an RFC 3339 time, or a duration back from now")
	p.flags(cmd, "entries", "API default 100, at most 1000")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, _ []string) error {
		q := f.query(a.now())
		resp, err := c.Get(ctx, "/v1/audit", p.queryAs(q, "limit", "after"))
		if err != nil {
			return err
		}
		return presentPage(a, resp, auditCommand(q), []string{"AT", "ROLE", "ACTOR", "ACTION", "ON", "OUTCOME", "REASON", "DETAIL", "ERROR"},
			func(page auditPage) [][]string {
				rows := make([][]string, 0, len(page.Entries))
				for _, e := range page.Entries {
					rows = append(rows, []string{when(&e.At), e.Role, e.Actor, e.Action, joinNonEmpty(" ", e.Tenant, e.Release, e.Host),
						fmt.Sprintf("%s %d", e.Outcome, e.Status), e.Reason, e.Detail, e.Error})
				}
				return rows
			})
	})
	return cmd
}

// query is the filters as the API takes them: a duration back from now
// becomes the time it names (the API takes times only, and the next page
// must ask for the same one).
func (f auditFilter) query(now time.Time) url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"tenant": f.tenant, "actor": f.actor, "action": f.action,
		"since": timeParam(f.since, now), "until": timeParam(f.until, now)} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return q
}

// timeParam is v, or the time a positive duration v names back from now.
func timeParam(v string, now time.Time) string {
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d).UTC().Format(time.RFC3339)
	}
	return v
}

// auditCommand is the audit command that asked for q, as the next page's
// hint repeats it.
func auditCommand(q url.Values) string {
	parts := []string{"audit"}
	for _, k := range auditParams {
		if v := q.Get(k); v != "" {
			parts = append(parts, "--"+k, shellQuote(v))
		}
	}
	if v := q.Get("limit"); v != "" {
		parts = append(parts, "--page-size", v)
	}
	return strings.Join(parts, " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9._:@/+=,-]+$`)

// shellQuote quotes v for a shell when it needs it.
func shellQuote(v string) string {
	if shellSafe.MatchString(v) {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
