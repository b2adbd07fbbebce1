package cli

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tenantflow/tenantflow/activities/spec"
)

func (a *app) tenantsCmd() *cobra.Command {
	return group(&cobra.Command{
		Use:     "tenants",
		Aliases: []string{"tenant"},
		Short:   "list, create, read, change, suspend, move, back up, decommission and restore tenants; their domains and logs",
	}, a.tenantsLs(), a.tenantsGet(), a.tenantsCreate(), a.tenantsSet(), a.tenantsSuspend(), a.tenantsResume(), a.tenantsMove(),
		a.tenantsDomains(), a.tenantsLogs(), a.tenantsDecommission(), a.tenantsRestore(), a.tenantsCredentials(),
		a.tenantsBackup(), a.tenantsBackups())
}

func (a *app) tenantsLs() *cobra.Command {
	var state, stage string
	var p pager
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list tenants (from Temporal visibility: a change shows within a second or so)",
		Args:    args(),
	}
	cmd.Flags().StringVar(&state, "state", "", "only tenants in this state (active, provisioning, suspended, …)")
	cmd.Flags().StringVar(&stage, "stage", "", "only tenants of this stage (staging, prod)")
	p.flags(cmd, "tenants", "API default 100, at most 1000")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, _ []string) error {
		q := url.Values{}
		for k, v := range map[string]string{"state": state, "stage": stage} {
			if v != "" {
				q.Set(k, v)
			}
		}
		resp, err := c.Get(ctx, "/v1/tenants", p.query(q))
		if err != nil {
			return err
		}
		return presentPage(a, resp, "tenants ls", []string{"NAME", "STATE", "STAGE", "IMAGE", "RELEASE", "AGE"}, func(list tenantList) [][]string {
			rows := make([][]string, 0, len(list.Tenants))
			for _, t := range list.Tenants {
				rows = append(rows, []string{t.Name, t.State, t.Stage, shortImage(t.Image), t.Release, age(a.now(), t.StartTime)})
			}
			return rows
		})
	})
	return cmd
}

func (a *app) tenantsGet() *cobra.Command {
	var fresh bool
	cmd := &cobra.Command{
		Use:   "get NAME",
		Short: "show a tenant as its workflow reports it",
		Args:  args("NAME"),
	}
	cmd.Flags().BoolVar(&fresh, "fresh", false, "wait (up to 5 s) for the workflow's own answer rather than its last recorded state")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		q := url.Values{}
		if fresh {
			q.Set("fresh", "true")
		}
		resp, err := c.Get(ctx, apiPath("v1", "tenants", args[0]), q)
		if err != nil {
			return err
		}
		return present(a, resp, a.printTenant)
	})
	return cmd
}

func (a *app) printTenant(t tenantView) error {
	template := t.Template
	if t.Plan != "" {
		template += " (plan " + t.Plan + ")"
	}
	kv := [][2]string{
		{"name", t.Name}, {"state", t.State}, {"stage", t.Stage}, {"template", template},
		{"url", t.URL}, {"image", t.Image}, {"release", t.Release},
		{"maintenance window", t.MaintenanceWindow},
	}
	if t.Placement != nil {
		kv = append(kv, [2]string{"host", t.Placement.Host})
	}
	if t.State != "active" {
		kv = append(kv, [2]string{"progress", progressText(t.Progress)})
	}
	kv = append(kv, [2]string{"error", t.Error})
	if d := t.Degraded; d != nil {
		kv = append(kv, [2]string{"degraded", d.Host + ": " + d.Reason})
	}
	if s := t.Suspension; s != nil {
		kv = append(kv, [2]string{"suspension", joinNonEmpty(" · ", s.Phase, s.Reason, s.Error)})
	}
	if d := t.Decommission; d != nil {
		kv = append(kv, [2]string{"decommission", decommissionText(*d)})
	}
	kv = append(kv, changeFields(t)...)
	var services []string
	for _, s := range t.Services {
		services = append(services, s.Service+" "+shortImage(s.Image))
	}
	kv = append(kv, [2]string{"services", strings.Join(services, ", ")})
	var settings []string
	for _, k := range spec.SortedKeys(t.Settings) {
		settings = append(settings, k+"="+t.Settings[k])
	}
	kv = append(kv, [2]string{"settings", strings.Join(settings, " ")})
	var domains []string
	for _, d := range t.Domains {
		domains = append(domains, d.Host+" "+d.Status)
	}
	kv = append(kv, [2]string{"domains", strings.Join(domains, ", ")})
	if !t.CreatedAt.IsZero() {
		kv = append(kv, [2]string{"created", when(&t.CreatedAt)})
	}
	if t.Stale {
		kv = append(kv, [2]string{"stale", "yes: " + t.StaleReason + " (--fresh waits for the workflow)"})
	}
	return fields(a.io.Out, kv...)
}

func decommissionText(d decommissionView) string {
	s := d.Phase
	if d.RequestedBy != "" {
		s += ", asked by " + d.RequestedBy
	}
	if d.Reason != "" {
		s += " (" + d.Reason + ")"
	}
	if d.ConfirmedBy != "" {
		s += ", confirmed by " + d.ConfirmedBy
	}
	if r := when(d.RetentionUntil); r != "" {
		s += ", retained until " + r
	}
	if d.Error != "" {
		s += ": " + d.Error
	}
	return s
}

func (a *app) tenantsCreate() *cobra.Command {
	var stage, template, plan, host, window string
	var settings []string
	var wait bool
	cmd := &cobra.Command{
		Use:   "create NAME --stage prod|staging",
		Short: "create a tenant (its provisioning runs in its workflow; --wait follows it)",
		Args:  args("NAME"),
	}
	f := cmd.Flags()
	f.StringVar(&stage, "stage", "", "staging or prod (required)")
	f.StringVar(&template, "template", "", "template (API default: default)")
	f.StringVar(&plan, "plan", "", "one of the template's plans (small, medium, large)")
	f.StringVar(&host, "host", "", "pin the tenant to this fleet host")
	f.StringVar(&window, "window", "", `maintenance window, e.g. "Sun 02:00-05:00 Europe/Paris"`)
	f.StringArrayVar(&settings, "set", nil, "a setting the template allows, KEY=VALUE (repeatable): --set TITLE='Acme CRM'")
	f.BoolVarP(&wait, "wait", "w", false, "follow the provisioning until the tenant is active (exit 6 if it fails)")
	_ = cmd.MarkFlagRequired("stage")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		body := map[string]any{"name": args[0], "stage": stage}
		for k, v := range map[string]string{"template": template, "plan": plan, "host": host, "maintenanceWindow": window} {
			if v != "" {
				body[k] = v
			}
		}
		if len(settings) > 0 {
			m, err := parseSettings(settings)
			if err != nil {
				return err
			}
			body["settings"] = m
		}
		resp, err := c.Post(ctx, "/v1/tenants", body)
		if err != nil {
			return err
		}
		var created tenantCreated
		if err := resp.Decode(&created); err != nil {
			return err
		}
		switch {
		case wait:
			if a.json() {
				printf(a.io.Err, "tenant %s: %s\n", created.Name, created.Status)
			}
			return a.watch(ctx, a.pollTenant(c, created.Name))
		case a.json():
			return printJSON(a.io.Out, resp.Body)
		}
		printf(a.io.Out, "tenant %s: %s\nfollow it: tenantflow tenants get %s\n", created.Name, created.Status, created.Name)
		return nil
	})
	return cmd
}

// getTenant reads the tenant as GET /v1/tenants/{name} answers, with the
// answer kept for -o json.
func getTenant(ctx context.Context, c *Client, name string) (tenantView, *Response, error) {
	resp, err := c.Get(ctx, apiPath("v1", "tenants", name), nil)
	if err != nil {
		return tenantView{}, nil, err
	}
	var t tenantView
	err = resp.Decode(&t)
	return t, resp, err
}

// pollTenant follows a tenant until it is no longer provisioning: active
// ends well, anything else (failed) does not.
func (a *app) pollTenant(c *Client, name string) poll {
	var last progressView
	return func(ctx context.Context) (frame, error) {
		t, resp, err := getTenant(ctx, c, name)
		if err != nil {
			return frame{}, err
		}
		if t.Stale { // a summary without progress: keep the last seen
			t.Progress = last
		}
		last = t.Progress
		f := frame{title: fmt.Sprintf("tenant %s: %s", name, t.State), done: t.Progress.Done, total: t.Progress.Total,
			step: t.Progress.Step, raw: resp.Body}
		if t.Progress.Step != "" {
			f.items = []item{{key: "step", text: fmt.Sprintf("tenant %s: step %s", name, progressText(t.Progress))}}
		}
		switch t.State {
		case "provisioning", "":
		case "active":
			f.end = &ending{ok: true, msg: fmt.Sprintf("tenant %s is active: %s", name, t.URL)}
		default:
			f.end = &ending{msg: fmt.Sprintf("tenant %s is %s: %s", name, t.State, t.Error)}
		}
		return f, nil
	}
}

func (a *app) tenantsDecommission() *cobra.Command {
	var reason string
	var confirm, cancel, force bool
	cmd := &cobra.Command{
		Use:   "decommission NAME --reason TEXT [--confirm]",
		Short: "ask for a tenant's decommission; it waits for a confirmation (--confirm gives it)",
		Long: `Ask for a tenant's decommission. The request (who and why) is recorded and waits
for a confirmation; nothing is touched before. Then its services stop, a final
backup is taken and verified, and everything is torn down; the data is kept
for the retention period ('tenantflow tenants restore NAME' brings it back).

  tenantflow tenants decommission acme --reason "end of contract"            ask
  tenantflow tenants decommission acme --confirm                             confirm a pending request
  tenantflow tenants decommission acme --reason "end of contract" --confirm  both at once
  tenantflow tenants decommission acme --cancel                              withdraw a pending request
  tenantflow tenants decommission acme --reason … --force                    ops: no confirmation`,
		Args: args("NAME"),
	}
	f := cmd.Flags()
	f.StringVar(&reason, "reason", "", "why (recorded with the request); needed to ask")
	f.BoolVar(&confirm, "confirm", false, "confirm the request (after asking, with --reason; alone, the pending one)")
	f.BoolVar(&cancel, "cancel", false, "withdraw the request that awaits confirmation")
	f.BoolVar(&force, "force", false, "run it at once, without confirmation (ops only)")
	cmd.MarkFlagsMutuallyExclusive("cancel", "confirm")
	cmd.MarkFlagsMutuallyExclusive("cancel", "force")
	cmd.MarkFlagsMutuallyExclusive("cancel", "reason")
	cmd.MarkFlagsMutuallyExclusive("confirm", "force")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		name := args[0]
		path := apiPath("v1", "tenants", name)
		var resp *Response
		var err error
		switch {
		case cancel:
			resp, err = c.Update(ctx, "POST", path+"/decommission/cancel", nil)
		case reason == "" && confirm:
			resp, err = c.Update(ctx, "POST", path+"/decommission/confirm", nil)
		case reason == "":
			return usageError("--reason is required to ask for a decommission (--confirm alone confirms a pending one)")
		default:
			resp, err = c.Update(ctx, "DELETE", path, map[string]any{"reason": reason, "force": force})
			if err == nil && confirm {
				if err := a.printDecommission(resp); err != nil {
					return err
				}
				resp, err = c.Update(ctx, "POST", path+"/decommission/confirm", nil)
			}
		}
		if err != nil {
			return err
		}
		return a.printDecommission(resp)
	})
	return cmd
}

func (a *app) printDecommission(resp *Response) error {
	if a.json() {
		return printJSON(a.io.Out, resp.Body)
	}
	var d decommissionAnswer
	if err := resp.Decode(&d); err != nil {
		return err
	}
	printf(a.io.Out, "tenant %s: decommission %s\n", d.Name, decommissionText(d.Decommission))
	switch d.Decommission.Phase {
	case "awaiting-confirmation":
		printf(a.io.Out, "confirm: tenantflow tenants decommission %s --confirm   (or --cancel)\n", d.Name)
	case "cancelled":
	default:
		printf(a.io.Out, "follow it: tenantflow tenants get %s\n", d.Name)
	}
	return nil
}

func (a *app) tenantsRestore() *cobra.Command {
	var backup string
	cmd := &cobra.Command{
		Use:   "restore NAME",
		Short: "bring a decommissioned tenant back during its retention (--backup: put an active one back to a backup)",
		Args:  args("NAME"),
	}
	cmd.Flags().StringVar(&backup, "backup", "", "put an active tenant back to this backup (a safety backup is taken first)")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		var body any
		if backup != "" {
			body = map[string]string{"backup": backup}
		}
		resp, err := c.Update(ctx, "POST", apiPath("v1", "tenants", args[0], "restore"), body)
		if err != nil {
			return err
		}
		if backup != "" && !a.json() {
			printf(a.io.Out, "tenant %s: restore to backup %s asked\nfollow it: tenantflow tenants get %s\n", args[0], backup, args[0])
			return nil
		}
		return a.printDecommission(resp)
	})
	return cmd
}

func (a *app) tenantsCredentials() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credentials NAME",
		Short: "take the tenant's first account and its password: shown ONCE, never again",
		Args:  args("NAME"),
	}
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		resp, err := c.Update(ctx, "GET", apiPath("v1", "tenants", args[0], "credentials"), nil)
		if err != nil {
			return err
		}
		printf(a.io.Err, "warning: this password is shown once: the API will not give it again (410). Store it now.\n")
		if a.json() {
			return printJSON(a.io.Out, resp.Body)
		}
		var cr credentialsView
		if err := resp.Decode(&cr); err != nil {
			return err
		}
		return fields(a.io.Out, [2]string{"username", cr.Username}, [2]string{"dn", cr.DN}, [2]string{"password", cr.Password}, [2]string{"url", cr.URL})
	})
	return cmd
}

// parseSettings reads --set KEY=VALUE flags (a later one wins).
func parseSettings(flags []string) (map[string]string, error) {
	m := map[string]string{}
	for _, s := range flags {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			return nil, usageError(fmt.Sprintf("--set %q: want KEY=VALUE", s))
		}
		m[k] = v
	}
	return m, nil
}

func joinNonEmpty(sep string, parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), sep)
}
