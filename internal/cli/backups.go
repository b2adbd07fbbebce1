package cli

import (
	"context"
	"fmt"
	"net/http"

	"github.com/spf13/cobra"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// tenantsBackup takes a backup of a tenant now, as its next operation.
func (a *app) tenantsBackup() *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:   "backup NAME [--reason R]",
		Short: "back a tenant up now: the backup runs as its next operation (ops, distributor)",
		Args:  args("NAME"),
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept with the backup)")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		body := map[string]string{}
		if reason != "" {
			body["reason"] = reason
		}
		resp, err := c.Update(ctx, http.MethodPost, apiPath("v1", "tenants", args[0], "backups"), body)
		if err != nil {
			return err
		}
		return present(a, resp, func(b struct {
			ID         string `json:"id"`
			Status     string `json:"status"`
			WaitingFor string `json:"waitingFor"`
		}) error {
			printf(a.io.Out, "backup %s of %s: %s", b.ID, args[0], b.Status)
			if b.WaitingFor != "" {
				printf(a.io.Out, " (waits for %s)", b.WaitingFor)
			}
			printf(a.io.Out, "\nsee it: tenantflow tenants backups %s\n", args[0])
			return nil
		})
	})
	return cmd
}

// tenantsBackups lists the backups the tenant's retention keeps.
func (a *app) tenantsBackups() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backups NAME",
		Short: "list a tenant's backups, newest last, with their off-site copies and drills",
		Args:  args("NAME"),
	}
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		resp, err := c.Get(ctx, apiPath("v1", "tenants", args[0], "backups"), nil)
		if err != nil {
			return err
		}
		return present(a, resp, a.printBackups)
	})
	return cmd
}

func (a *app) printBackups(b tenant.Backups) error {
	rows := make([][]string, 0, len(b.List))
	for _, r := range b.List {
		offsite := r.OffsiteError
		if r.OffsiteAt != nil {
			offsite = age(a.now(), *r.OffsiteAt) + " ago"
		}
		drill := ""
		if r.Drill != nil {
			drill = r.Drill.Outcome
		}
		rows = append(rows, []string{r.ID, r.Reason, age(a.now(), r.CreatedAt), bytesText(r.Bytes), bytesText(r.Added), offsite, drill})
	}
	if err := table(a.io.Out, []string{"ID", "REASON", "AGE", "SIZE", "ADDED", "OFF-SITE", "DRILL"}, rows); err != nil {
		return err
	}
	printLine(a.io.Out, "")
	return fields(a.io.Out, [2]string{"next", when(b.NextAt)}, [2]string{"next drill", when(b.NextDrillAt)},
		[2]string{"running", b.Running}, [2]string{"last error", b.LastError})
}

// bytesText is a size for a person (1.5 MiB).
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
