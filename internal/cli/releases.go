package cli

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tenantflow/tenantflow/activities/spec"
)

func (a *app) releasesCmd() *cobra.Command {
	return group(&cobra.Command{
		Use:     "releases",
		Aliases: []string{"release"},
		Short:   "roll an image out to the fleet, follow it, promote, pause, resume or abort it",
	}, a.releasesCreate(), a.releasesLs(), a.releasesGet(), a.releasesWatch(), a.releasesPromote(),
		a.releaseControl("pause", "pause the release: the cut-overs under way finish, no other starts (ops)"),
		a.releaseControl("resume", "resume a paused release (ops)"),
		a.releaseControl("abort", "abort the release: cut-overs under way roll back, the wave's updated tenants are put back (ops)"))
}

// releaseFlags are the plan settings of releases create; only those given
// are sent, so the API's defaults apply to the others.
type releaseFlags struct {
	image, stage, id, rollbackOf               string
	tenants                                    []string
	all, backupBefore, restoreData, watch      bool
	canary, batchSize, maxParallel, maxPerHost int
	failureThreshold                           int
	healthTimeout, drain, promotionDeadline    string
}

func (a *app) releasesCreate() *cobra.Command {
	var r releaseFlags
	cmd := &cobra.Command{
		Use:   "create --image IMAGE (--stage S | --tenants a,b | --all) [plan flags]",
		Short: "start a release: staging first, then prod once promoted (or --rollback-of ID)",
		Long: `Start a release of an image pinned by digest (name@sha256:…): its staging tenants
first, then it waits for a developer's promote, then prod in waves (a canary,
then batches). Plan flags left out take the API's defaults.

  tenantflow releases create --image reg/app@sha256:… --all --canary 1 --batch-size 5 --watch
  tenantflow releases create --rollback-of 20261124-101500.123-0123456789ab-5f3c9a1e`,
		Args: args(),
	}
	f := cmd.Flags()
	f.StringVar(&r.image, "image", "", "the image, pinned by digest: name@sha256:<64 hex>")
	f.StringVar(&r.stage, "stage", "", "release to the tenants of this stage")
	f.StringSliceVar(&r.tenants, "tenants", nil, "release to these tenants: a,b,c")
	f.BoolVar(&r.all, "all", false, "release to every tenant")
	f.StringVar(&r.id, "id", "", "the release's id (default: time, digest and a random suffix); a repeat is refused")
	f.IntVar(&r.canary, "canary", 0, "prod canaries cut over first (0: no canary wave)")
	f.IntVar(&r.batchSize, "batch-size", 0, "tenants per prod wave (API default 5)")
	f.IntVar(&r.maxParallel, "max-parallel", 0, "cut-overs at once (default: the batch size)")
	f.IntVar(&r.maxPerHost, "max-per-host", 0, "cut-overs at once per fleet host (0: no limit)")
	f.IntVar(&r.failureThreshold, "failure-threshold", 0, "failures tolerated before the release pauses (0: the first pauses it)")
	f.StringVar(&r.healthTimeout, "health-timeout", "", `how long a new instance has to become healthy ("2m"; "0s": the template's checks decide)`)
	f.StringVar(&r.drain, "drain", "", `how long the old instance drains after the switch (API default "2s")`)
	f.StringVar(&r.promotionDeadline, "promotion-deadline", "", `end the release unless promoted within this ("72h"; "0s": none)`)
	f.BoolVar(&r.backupBefore, "backup-before", false, "back each tenant up before its cut-over")
	f.StringVar(&r.rollbackOf, "rollback-of", "", "roll back this finished release: each tenant it updated goes back to its previous image")
	f.BoolVar(&r.restoreData, "restore-data", false, "with --rollback-of: put back the data the release's backups took (--backup-before)")
	f.BoolVarP(&r.watch, "watch", "w", false, "then watch it (as releases watch)")
	cmd.MarkFlagsMutuallyExclusive("stage", "tenants", "all", "rollback-of")
	cmd.MarkFlagsMutuallyExclusive("image", "rollback-of")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, _ []string) error {
		body, err := releaseBody(cmd, r)
		if err != nil {
			return err
		}
		resp, err := c.Post(ctx, "/v1/releases", body)
		if err != nil {
			return err
		}
		var created releaseCreated
		if err := resp.Decode(&created); err != nil {
			return err
		}
		switch {
		case r.watch:
			if a.json() {
				printf(a.io.Err, "release %s: %s\n", created.ID, created.State)
			}
			return a.watch(ctx, a.pollRelease(c, created.ID, untilStop))
		case a.json():
			return printJSON(a.io.Out, resp.Body)
		}
		p := created.Plan
		printf(a.io.Out, "release %s: %s\nplan: canary %d, waves of %d (%d at once), health timeout %s, drain %s, failure threshold %d, promotion deadline %s\n",
			created.ID, created.State, p.Canary, p.BatchSize, p.MaxParallel, p.HealthTimeout, p.Drain, p.FailureThreshold, p.PromotionDeadline)
		printf(a.io.Out, "watch it: tenantflow releases watch %s\n", created.ID)
		return nil
	})
	return cmd
}

// releaseBody is POST /v1/releases's body from the flags given.
func releaseBody(cmd *cobra.Command, r releaseFlags) (map[string]any, error) {
	body := map[string]any{}
	if r.rollbackOf != "" {
		body["rollbackOf"] = r.rollbackOf
		if r.restoreData {
			body["restoreData"] = true
		}
	} else {
		if r.image == "" {
			return nil, usageError("--image is required (or --rollback-of ID)")
		}
		if r.restoreData {
			return nil, usageError("--restore-data goes with --rollback-of")
		}
		body["image"] = r.image
		switch {
		case r.stage != "":
			body["tenants"] = map[string]any{"stage": r.stage}
		case len(r.tenants) > 0:
			body["tenants"] = map[string]any{"names": r.tenants}
		case r.all:
			body["tenants"] = map[string]any{"all": true}
		default:
			return nil, usageError("say which tenants: --stage S, --tenants a,b or --all")
		}
	}
	set := cmd.Flags().Changed
	for flag, v := range map[string]struct {
		key   string
		value any
	}{
		"id": {"id", r.id}, "canary": {"canary", r.canary}, "batch-size": {"batchSize", r.batchSize},
		"max-parallel": {"maxParallel", r.maxParallel}, "max-per-host": {"maxPerHost", r.maxPerHost},
		"failure-threshold": {"failureThreshold", r.failureThreshold}, "health-timeout": {"healthTimeout", r.healthTimeout},
		"drain": {"drain", r.drain}, "promotion-deadline": {"promotionDeadline", r.promotionDeadline},
		"backup-before": {"backupBefore", r.backupBefore},
	} {
		if set(flag) {
			body[v.key] = v.value
		}
	}
	return body, nil
}

func (a *app) releasesLs() *cobra.Command {
	var p pager
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list"},
		Short:   "list releases, newest first (from Temporal visibility)",
		Args:    args(),
	}
	p.flags(cmd, "releases", "API default 100")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, _ []string) error {
		resp, err := c.Get(ctx, "/v1/releases", p.query(url.Values{}))
		if err != nil {
			return err
		}
		return presentPage(a, resp, "releases ls", []string{"ID", "STATUS", "IMAGE", "STARTED", "ENDED"}, func(list releaseList) [][]string {
			rows := make([][]string, 0, len(list.Releases))
			for _, r := range list.Releases {
				closed := ""
				if r.CloseTime != nil {
					closed = age(a.now(), *r.CloseTime)
				}
				rows = append(rows, []string{r.ID, r.Status, shortImage(r.Image), age(a.now(), r.StartTime), closed})
			}
			return rows
		})
	})
	return cmd
}

func (a *app) releasesGet() *cobra.Command {
	var summary bool
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "show a release and each tenant's part in it",
		Args:  args("ID"),
	}
	cmd.Flags().BoolVar(&summary, "summary", false, "tenants counted by status, not listed (a release of thousands)")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		q := url.Values{}
		if summary {
			q.Set("view", "summary")
		}
		resp, err := c.Get(ctx, apiPath("v1", "releases", args[0]), q)
		if err != nil {
			return err
		}
		return present(a, resp, a.printRelease)
	})
	return cmd
}

func (a *app) printRelease(r releaseView) error {
	kv := [][2]string{
		{"id", r.ID}, {"image", r.Image}, {"rollback of", r.RollbackOf}, {"state", r.State}, {"phase", r.Phase},
		{"wave", strconv.Itoa(r.Wave)}, {"progress", progressText(r.Progress)}, {"tenants", countsText(r)},
		{"failures", strconv.Itoa(r.Failures)}, {"paused", r.PauseReason}, {"promote refused", r.PromoteRejected},
		{"error", r.Error}, {"started", when(&r.StartedAt)}, {"finished", when(r.FinishedAt)}, {"next window", when(r.NextWindowAt)},
	}
	if p := r.Promotion; p != nil {
		kv = append(kv, [2]string{"promoted by", joinNonEmpty(": ", p.By, p.Reason)})
	}
	if err := fields(a.io.Out, kv...); err != nil {
		return err
	}
	if len(r.Tenants) == 0 {
		return nil
	}
	printLine(a.io.Out)
	rows := make([][]string, 0, len(r.Tenants))
	for _, t := range r.Tenants {
		rows = append(rows, []string{t.Name, t.Stage, strconv.Itoa(t.Wave), t.Status, t.Host, shortImage(t.From), tenantDetail(t, progressView{})})
	}
	return table(a.io.Out, []string{"TENANT", "STAGE", "WAVE", "STATUS", "HOST", "FROM", "DETAIL"}, rows)
}

func (a *app) releasesWatch() *cobra.Command {
	var untilEnd bool
	cmd := &cobra.Command{
		Use:   "watch ID",
		Short: "follow a release live until it ends, awaits promotion or pauses",
		Long: `Follow a release live: its state, waves, tenants counted by status, and each
tenant's status and cut-over step. On a terminal the display is redrawn with a
progress bar; otherwise (a script, a CI log) a line is printed per change; with
-o json each new answer of the API is printed on a line.

It stops when the release completes (exit 0; 6 if tenants failed), awaits
promotion (exit 0; 6 if staging failed), pauses (exit 6), or is aborted or not
promoted (exit 6). --until-end watches on through promotion and pauses.`,
		Args: args("ID"),
	}
	cmd.Flags().BoolVar(&untilEnd, "until-end", false, "watch on while the release awaits promotion or is paused, until it ends")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		until := untilStop
		if untilEnd {
			until = untilTheEnd
		}
		return a.watch(ctx, a.pollRelease(c, args[0], until))
	})
	return cmd
}

func (a *app) releasesPromote() *cobra.Command {
	var reason string
	var watch bool
	cmd := &cobra.Command{
		Use:   "promote ID --reason TEXT",
		Short: "let a release go on from staging to prod (developer)",
		Args:  args("ID"),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the release and the audit trail)")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "then watch prod's waves")
	_ = cmd.MarkFlagRequired("reason")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		return a.releaseAction(ctx, c, args[0], "promote", reason, watch)
	})
	return cmd
}

func (a *app) releaseControl(action, short string) *cobra.Command {
	var reason string
	var watch bool
	cmd := &cobra.Command{
		Use:   action + " ID --reason TEXT",
		Short: short,
		Args:  args("ID"),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the release and the audit trail)")
	_ = cmd.MarkFlagRequired("reason")
	if action == "resume" {
		cmd.Flags().BoolVarP(&watch, "watch", "w", false, "then watch the release")
	}
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		return a.releaseAction(ctx, c, args[0], action, reason, watch)
	})
	return cmd
}

// releaseAction sends promote, pause, resume or abort and shows the
// release's summary the API answers with.
func (a *app) releaseAction(ctx context.Context, c *Client, id, action, reason string, watch bool) error {
	resp, err := c.Update(ctx, "POST", apiPath("v1", "releases", id, action), map[string]string{"reason": reason})
	if err != nil {
		return err
	}
	if watch {
		until := untilStop
		if action == "promote" {
			until = untilProd
		}
		return a.watch(ctx, a.pollRelease(c, id, until))
	}
	if a.json() {
		return printJSON(a.io.Out, resp.Body)
	}
	var r releaseView
	if err := resp.Decode(&r); err != nil {
		return err
	}
	printf(a.io.Out, "release %s: %s · phase %s · wave %d\n", id, r.State, r.Phase, r.Wave)
	if s := countsText(r); s != "" {
		printf(a.io.Out, "tenants: %s\n", s)
	}
	if resp.Status == 202 {
		printf(a.io.Out, "accepted; prod starts shortly: tenantflow releases watch %s\n", id)
	}
	return nil
}

// statusOrder is how counts are listed: as workflows/release.TenantStatuses.
var statusOrder = []string{"pending", "updating", "updated", "unchanged", "rolled-back", "skipped", "failed", "reverted", "waiting-window"}

// countsText is "updated 3 · updating 1 · pending 4": the release's counts
// (a summary) or its tenants counted.
func countsText(r releaseView) string {
	counts := r.Counts
	if len(counts) == 0 {
		counts = map[string]int{}
		for _, t := range r.Tenants {
			counts[t.Status]++
		}
	}
	var parts []string
	for _, s := range statusOrder {
		if n := counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
		}
	}
	for _, s := range spec.SortedKeys(counts) { // a status this CLI does not know yet
		if !slices.Contains(statusOrder, s) && counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, counts[s]))
		}
	}
	return strings.Join(parts, " · ")
}

// tenantDetail says more of a tenant's part: its cut-over step while it
// updates (step, from the tenant's own progress), the time its cut-over
// took, its error, when its window opens.
func tenantDetail(t releaseTenant, step progressView) string {
	var parts []string
	if t.Canary {
		parts = append(parts, "canary")
	}
	switch t.Status {
	case "updating":
		if s := progressText(step); s != "" {
			parts = append(parts, "step "+s)
		}
	case "updated":
		if t.CutoverMillis > 0 {
			parts = append(parts, fmt.Sprintf("cut over in %dms", t.CutoverMillis))
		}
	case "waiting-window":
		if w := when(t.WindowOpensAt); w != "" {
			parts = append(parts, "window opens "+w)
		}
	}
	if t.Error != "" {
		parts = append(parts, t.Error)
	}
	return strings.Join(parts, "; ")
}
