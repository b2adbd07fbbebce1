package cli

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/spf13/cobra"
)

func (a *app) tenantsDomains() *cobra.Command {
	return group(&cobra.Command{
		Use:     "domains",
		Aliases: []string{"domain"},
		Short:   "a tenant's custom domains: add, remove, list (ops, distributor)",
	}, a.domainsAdd(), a.domainsRm(), a.domainsLs())
}

func (a *app) domainsAdd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add NAME HOST",
		Short: "serve a tenant on a customer's domain too, once the customer proves it with a DNS TXT record",
		Args:  args("NAME", "HOST"),
	}
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		resp, err := c.Update(ctx, http.MethodPost, apiPath("v1", "tenants", args[0], "domains"), map[string]string{"host": args[1]})
		if err != nil {
			return err
		}
		return present(a, resp, func(d domainView) error {
			printf(a.io.Out, "domain %s of %s: %s\n", d.Host, args[0], d.Status)
			printf(a.io.Out, "the customer adds this DNS record; then it is served over HTTPS:\n  %s  %s  %q\n", d.Record.Name, d.Record.Type, d.Record.Value)
			printf(a.io.Out, "follow it: tenantflow tenants domains ls %s\n", args[0])
			return nil
		})
	})
	return cmd
}

func (a *app) domainsRm() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rm NAME HOST",
		Aliases: []string{"remove"},
		Short:   "take a custom domain off a tenant",
		Args:    args("NAME", "HOST"),
	}
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		resp, err := c.Update(ctx, http.MethodDelete, apiPath("v1", "tenants", args[0], "domains", args[1]), nil)
		if err != nil {
			return err
		}
		return present(a, resp, func(d domainView) error {
			printf(a.io.Out, "domain %s of %s: %s\n", d.Host, args[0], d.Status)
			return nil
		})
	})
	return cmd
}

// domainsLs reads the domains in the tenant's state: the API has no
// route of their own (-o json prints that tenant).
func (a *app) domainsLs() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ls NAME",
		Aliases: []string{"list"},
		Short:   "list a tenant's custom domains, the DNS records that prove them, and where each stands",
		Args:    args("NAME"),
	}
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		// a stale summary has no domains: wait for the workflow's answer
		resp, err := c.Get(ctx, apiPath("v1", "tenants", args[0]), url.Values{"fresh": {"true"}})
		if err != nil {
			return err
		}
		return present(a, resp, func(t tenantView) error {
			if t.Stale {
				return fmt.Errorf("tenant %s: its workflow did not answer (%s): its domains are not known now", args[0], t.StaleReason)
			}
			rows := make([][]string, 0, len(t.Domains))
			for _, d := range t.Domains {
				rows = append(rows, []string{d.Host, d.Status, d.Record.Name, d.Record.Type, d.Record.Value, age(a.now(), d.RequestedAt), d.Error})
			}
			return table(a.io.Out, []string{"HOST", "STATUS", "RECORD", "TYPE", "VALUE", "AGE", "ERROR"}, rows)
		})
	})
	return cmd
}
