package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// The tenant operations a person asks for that run as the tenant's next
// operation (suspend, resume, move, a plan or settings change): the API
// answers 202 once the workflow accepted one, and --wait follows it in
// the tenant's state until it ends.

// change is one such operation as --wait follows it.
type change struct {
	noun string
	// phase reads where it stands in the tenant's state ("": not there).
	phase func(tenantView) (phase, errMsg string)
	// running are its phases until it ends; done is the phase it ends
	// well in (any other end is a failure).
	running []string
	done    string
}

func phases[P ~string](ps ...P) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = string(p)
	}
	return out
}

func suspensionPhase(t tenantView) (string, string) {
	if s := t.Suspension; s != nil {
		return s.Phase, s.Error
	}
	return "", ""
}

var (
	suspendChange = change{noun: "suspend", phase: suspensionPhase,
		running: phases(tenant.SuspendQueued, tenant.SuspendRunning), done: string(tenant.SuspendDone)}
	resumeChange = change{noun: "resume", phase: suspensionPhase,
		running: phases(tenant.ResumeQueued, tenant.ResumeRunning), done: string(tenant.ResumeDone)}
	moveChange = change{noun: "move", phase: func(t tenantView) (string, string) {
		if m := t.Move; m != nil {
			return m.Phase, m.Error
		}
		return "", ""
	}, running: phases(tenant.MoveQueued, tenant.MovePreparing, tenant.MovePreCopy, tenant.MoveSyncing, tenant.MoveStarting, tenant.MoveRetiring),
		done: string(tenant.MoveDone)}
	planChange = change{noun: "plan change", phase: func(t tenantView) (string, string) {
		if p := t.PlanChange; p != nil {
			return p.Phase, p.Error
		}
		return "", ""
	}, running: phases(tenant.PlanQueued, tenant.PlanRunning), done: string(tenant.PlanDone)}
	settingsChange = change{noun: "settings change", phase: func(t tenantView) (string, string) {
		if s := t.SettingsChange; s != nil {
			return s.Phase, s.Error
		}
		return "", ""
	}, running: phases(tenant.PlanQueued, tenant.PlanRunning), done: string(tenant.PlanDone)}
)

// waitFlag adds --wait to a command whose operation runs as the tenant's
// next one.
func waitFlag(cmd *cobra.Command, wait *bool) {
	cmd.Flags().BoolVarP(wait, "wait", "w", false, "follow it until it ends (exit 6 if it fails)")
}

// accepted ends a command whose operations the tenant accepted: with
// --wait it follows them (summary on stderr with -o json, as create --wait
// does), else it prints the answer and how to follow it.
func (a *app) accepted(ctx context.Context, c *Client, name string, resp *Response, summary string, wait bool, changes ...change) error {
	switch {
	case wait && len(changes) > 0:
		if a.json() {
			printLine(a.io.Err, summary)
		}
		return a.watch(ctx, a.pollChanges(c, name, changes...))
	case a.json():
		return printJSON(a.io.Out, resp.Body)
	}
	printLine(a.io.Out, summary)
	if len(changes) > 0 {
		printf(a.io.Out, "follow it: tenantflow tenants get %s\n", name)
	}
	return nil
}

// pollChanges follows changes in the tenant's state until each has
// ended: well when each reached its done phase.
func (a *app) pollChanges(c *Client, name string, changes ...change) poll {
	var last frame
	return func(ctx context.Context) (frame, error) {
		t, resp, err := getTenant(ctx, c, name)
		if err != nil {
			return frame{}, err
		}
		if t.Stale && last.title != "" { // a summary without the changes: keep the last seen
			last.raw = resp.Body
			return last, nil
		}
		f := frame{title: fmt.Sprintf("tenant %s: %s", name, t.State), done: t.Progress.Done, total: t.Progress.Total,
			step: t.Progress.Step, raw: resp.Body}
		if t.Stale {
			return f, nil
		}
		if t.Progress.Step != "" {
			f.items = append(f.items, item{key: "step", text: fmt.Sprintf("tenant %s: step %s", name, progressText(t.Progress))})
		}
		var ended []string
		ok := true
		for _, ch := range changes {
			phase, errMsg := ch.phase(t)
			if slices.Contains(ch.running, phase) {
				f.items = append(f.items, item{key: ch.noun, text: fmt.Sprintf("tenant %s: %s: %s", name, ch.noun, phase)})
				continue
			}
			ok = ok && phase == ch.done
			ended = append(ended, joinNonEmpty(": ", ch.noun, cmp.Or(phase, "not in its state"), errMsg))
		}
		if len(ended) == len(changes) {
			f.end = &ending{ok: ok, msg: fmt.Sprintf("tenant %s: %s", name, strings.Join(ended, "; "))}
		}
		last = f
		return f, nil
	}
}

func (a *app) tenantsSuspend() *cobra.Command {
	var reason, message string
	var wait bool
	cmd := &cobra.Command{
		Use:   "suspend NAME --reason TEXT [--message TEXT]",
		Short: "suspend a tenant: the maintenance page on its URL, its services stopped, its accounts disabled, its data kept (ops, distributor)",
		Args:  args("NAME"),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in its state and the audit trail, never shown to its users)")
	cmd.Flags().StringVar(&message, "message", "", "what the maintenance page says (default: the API's)")
	waitFlag(cmd, &wait)
	_ = cmd.MarkFlagRequired("reason")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		body := map[string]string{"reason": reason}
		if message != "" {
			body["message"] = message
		}
		resp, err := c.Update(ctx, http.MethodPost, apiPath("v1", "tenants", args[0], "suspend"), body)
		if err != nil {
			return err
		}
		return a.suspension(ctx, c, args[0], resp, wait, suspendChange)
	})
	return cmd
}

func (a *app) tenantsResume() *cobra.Command {
	var reason string
	var wait bool
	cmd := &cobra.Command{
		Use:   "resume NAME [--reason TEXT]",
		Short: "bring a suspended tenant back into service (ops, distributor)",
		Args:  args("NAME"),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in its state and the audit trail)")
	waitFlag(cmd, &wait)
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		var body any // the API takes no body as no reason
		if reason != "" {
			body = map[string]string{"reason": reason}
		}
		resp, err := c.Update(ctx, http.MethodPost, apiPath("v1", "tenants", args[0], "resume"), body)
		if err != nil {
			return err
		}
		return a.suspension(ctx, c, args[0], resp, wait, resumeChange)
	})
	return cmd
}

// suspension shows the answer of a suspend or a resume.
func (a *app) suspension(ctx context.Context, c *Client, name string, resp *Response, wait bool, ch change) error {
	var ans suspensionAnswer
	if err := resp.Decode(&ans); err != nil {
		return err
	}
	s := ans.Suspension
	text := fmt.Sprintf("tenant %s: suspension %s, asked by %s", name, s.Phase, s.By)
	if s.Reason != "" {
		text += " (" + s.Reason + ")"
	}
	if ch.noun == "resume" {
		text += ", resume asked by " + s.ResumedBy
		if s.ResumeReason != "" {
			text += " (" + s.ResumeReason + ")"
		}
	}
	return a.accepted(ctx, c, name, resp, text, wait, ch)
}

func (a *app) tenantsMove() *cobra.Command {
	var to string
	var wait bool
	cmd := &cobra.Command{
		Use:   "move NAME [--to HOST]",
		Short: "move a placed tenant to another fleet host with its data, live (ops)",
		Args:  args("NAME"),
	}
	cmd.Flags().StringVar(&to, "to", "", "the target host, registered and active (default: the registry chooses one with room)")
	waitFlag(cmd, &wait)
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		var body any // the API takes no body as "the registry chooses"
		if to != "" {
			body = map[string]string{"to": to}
		}
		resp, err := c.Update(ctx, http.MethodPost, apiPath("v1", "tenants", args[0], "move"), body)
		if err != nil {
			return err
		}
		var m moveView
		if err := resp.Decode(&m); err != nil {
			return err
		}
		text := fmt.Sprintf("tenant %s: move %s, %s → %s", args[0], m.Phase, m.From, cmp.Or(m.To, "a host the registry chooses"))
		return a.accepted(ctx, c, args[0], resp, text, wait, moveChange)
	})
	return cmd
}

// tenantChangeFlags are the flags of tenants set.
type tenantChangeFlags struct {
	plan, window string
	windowGiven  bool // --window "" removes the window
	set, unset   []string
	wait         bool
}

func (a *app) tenantsSet() *cobra.Command {
	var f tenantChangeFlags
	cmd := &cobra.Command{
		Use:   "set NAME [--plan P] [--set KEY=VALUE]... [--unset KEY]... [--window W]",
		Short: "change a tenant's plan, settings or maintenance window (ops, distributor)",
		Long: `Change a tenant's plan, settings or maintenance window. The window changes at
once; a plan or settings change runs as the tenant's next operation (--wait
follows it). --unset puts a setting back to its template's default.

  tenantflow tenants set acme --plan large --wait
  tenantflow tenants set acme --set TITLE='Acme CRM' --unset LOG_LEVEL
  tenantflow tenants set acme --window "Sun 02:00-05:00 Europe/Paris"   (--window "": none)`,
		Args: args("NAME"),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.plan, "plan", "", "another of the template's plans (small, medium, large)")
	fl.StringArrayVar(&f.set, "set", nil, "a setting the template allows, KEY=VALUE (repeatable)")
	fl.StringArrayVar(&f.unset, "unset", nil, "a setting back to its template's default, KEY (repeatable)")
	fl.StringVar(&f.window, "window", "", `maintenance window, e.g. "Sun 02:00-05:00 Europe/Paris" ("": none)`)
	waitFlag(cmd, &f.wait)
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		f.windowGiven = cmd.Flags().Changed("window")
		body, err := patchBody(f)
		if err != nil {
			return err
		}
		resp, err := c.Update(ctx, http.MethodPatch, apiPath("v1", "tenants", args[0]), body)
		var apiErr *APIError
		if errors.As(err, &apiErr) && len(body) > 1 {
			// The API makes the changes one by one (window, plan,
			// settings): those before the refused one stand.
			printf(a.io.Err, "note: the changes before the refused one (window, plan, settings, in that order) stand: see tenantflow tenants get %s\n", args[0])
		}
		if err != nil {
			return err
		}
		return a.tenantChanged(ctx, c, args[0], resp, f)
	})
	return cmd
}

// patchBody is PATCH /v1/tenants/{name}'s body from the flags given.
func patchBody(f tenantChangeFlags) (map[string]any, error) {
	body := map[string]any{}
	if f.plan != "" {
		body["plan"] = f.plan
	}
	if f.windowGiven {
		body["maintenanceWindow"] = f.window
	}
	set, err := parseSettings(f.set)
	if err != nil {
		return nil, err
	}
	settings := map[string]*string{}
	for k, v := range set {
		settings[k] = &v
	}
	for _, k := range f.unset {
		if k == "" || strings.Contains(k, "=") {
			return nil, usageError(fmt.Sprintf("--unset %q: want KEY", k))
		}
		if _, ok := set[k]; ok {
			return nil, usageError(fmt.Sprintf("%s is given both --set and --unset", k))
		}
		settings[k] = nil // null: back to the default
	}
	if len(settings) > 0 {
		body["settings"] = settings
	}
	if len(body) == 0 {
		return nil, usageError("nothing to change: give --plan, --set, --unset or --window")
	}
	return body, nil
}

// tenantChanged shows PATCH's answer: the tenant (200: the window alone,
// changed at once), or the changes accepted (202).
func (a *app) tenantChanged(ctx context.Context, c *Client, name string, resp *Response, f tenantChangeFlags) error {
	if resp.Status == http.StatusOK {
		return present(a, resp, func(t tenantView) error {
			printf(a.io.Out, "tenant %s: maintenance window %s\n", name, cmp.Or(t.MaintenanceWindow, "none (at any time)"))
			return nil
		})
	}
	var ch tenantChanges
	if err := resp.Decode(&ch); err != nil {
		return err
	}
	var lines []string
	var changes []change
	if f.windowGiven {
		lines = append(lines, fmt.Sprintf("tenant %s: maintenance window changed", name))
	}
	if p := ch.PlanChange; p != nil {
		lines = append(lines, fmt.Sprintf("tenant %s: plan change %s → %s, %s", name, p.From, p.To, p.Phase))
		changes = append(changes, planChange)
	}
	if s := ch.SettingsChange; s != nil {
		lines = append(lines, fmt.Sprintf("tenant %s: settings change %s: %s", name, s.Phase, settingsText(s.Settings)))
		changes = append(changes, settingsChange)
	}
	return a.accepted(ctx, c, name, resp, strings.Join(lines, "\n"), f.wait, changes...)
}

// settingsText is "LOG_LEVEL=debug TITLE (default)".
func settingsText(m map[string]*string) string {
	parts := make([]string, 0, len(m))
	for _, k := range spec.SortedKeys(m) {
		if v := m[k]; v != nil {
			parts = append(parts, k+"="+*v)
		} else {
			parts = append(parts, k+" (default)")
		}
	}
	return strings.Join(parts, " ")
}

// changeFields are the tenant's move, plan and settings changes, under way
// or the last, for tenants get.
func changeFields(t tenantView) [][2]string {
	var kv [][2]string
	if m := t.Move; m != nil {
		kv = append(kv, [2]string{"move", joinNonEmpty(": ", fmt.Sprintf("%s, %s → %s", m.Phase, m.From, m.To), m.Error)})
	}
	if p := t.PlanChange; p != nil {
		kv = append(kv, [2]string{"plan change", joinNonEmpty(": ", fmt.Sprintf("%s, %s → %s", p.Phase, p.From, p.To), p.Error)})
	}
	if s := t.SettingsChange; s != nil {
		kv = append(kv, [2]string{"settings change", joinNonEmpty(": ", s.Phase+", "+settingsText(s.Settings), s.Error)})
	}
	return kv
}
