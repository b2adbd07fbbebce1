package cli

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/hosts"
)

func (a *app) hostsCmd() *cobra.Command {
	return group(&cobra.Command{
		Use:     "hosts",
		Aliases: []string{"host"},
		Short:   "the Docker hosts of the fleet: list, cordon, drain, evacuate (ops)",
	}, a.hostsLs(), a.hostsGet(), a.hostsState("cordon", "take no new tenant; those on it keep running"),
		a.hostsState("uncordon", "take new tenants again"), a.hostsMoveAll("drain", "drain"), a.hostsMoveAll("evacuate", "evacuation"), a.hostsMoves())
}

// hostView is what the CLI reads of a host (GET /v1/hosts): the
// registry's host, with its room as the API shows it.
type hostView struct {
	hosts.Host
	Reserved hostCapacity `json:"reserved"`
	Free     hostCapacity `json:"free"`
	Tenants  []string     `json:"tenants"`
	Worker   struct {
		Polling bool `json:"polling"`
	} `json:"worker"`
}

// hostCapacity is room as the API shows it: CPUs and a memory quantity.
type hostCapacity struct {
	CPUs   float64 `json:"cpus"`
	Memory string  `json:"memory"`
}

func (c hostCapacity) String() string { return fmt.Sprintf("%gcpu %s", c.CPUs, c.Memory) }

func (a *app) hostsLs() *cobra.Command {
	cmd := &cobra.Command{Use: "ls", Short: "list the hosts with their state, room and tenants", Args: args()}
	cmd.RunE = a.run(func(ctx context.Context, c *Client, _ []string) error {
		resp, err := c.Get(ctx, "/v1/hosts", nil)
		if err != nil {
			return err
		}
		return present(a, resp, func(list struct {
			Hosts []hostView `json:"hosts"`
		}) error {
			rows := make([][]string, 0, len(list.Hosts))
			for _, h := range list.Hosts {
				rows = append(rows, []string{h.Name, string(h.State), h.Zone(), strconv.Itoa(len(h.Tenants)),
					h.Free.String(), h.Capacity.String(), workerText(h), h.Reason})
			}
			return table(a.io.Out, []string{"NAME", "STATE", "ZONE", "TENANTS", "FREE", "CAPACITY", "WORKER", "REASON"}, rows)
		})
	})
	return cmd
}

func workerText(h hostView) string {
	if h.Worker.Polling {
		return "polling"
	}
	return "not polling"
}

func (a *app) hostsGet() *cobra.Command {
	cmd := &cobra.Command{Use: "get NAME", Short: "show a host and the tenants it holds room for", Args: args("NAME")}
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		resp, err := c.Get(ctx, apiPath("v1", "hosts", args[0]), nil)
		if err != nil {
			return err
		}
		return present(a, resp, a.printHost)
	})
	return cmd
}

func (a *app) printHost(h hostView) error {
	var labels []string
	for _, k := range spec.SortedKeys(h.Labels) {
		labels = append(labels, k+"="+h.Labels[k])
	}
	if err := fields(a.io.Out,
		[2]string{"name", h.Name}, [2]string{"state", string(h.State)}, [2]string{"reason", h.Reason},
		[2]string{"docker", h.Docker}, [2]string{"address", h.Address}, [2]string{"labels", strings.Join(labels, ", ")},
		[2]string{"capacity", h.Capacity.String()}, [2]string{"reserved", h.Reserved.String()}, [2]string{"free", h.Free.String()},
		[2]string{"worker", workerText(h)}); err != nil {
		return err
	}
	if len(h.Reservations) == 0 {
		return nil
	}
	printLine(a.io.Out, "")
	rows := make([][]string, 0, len(h.Reservations))
	for _, t := range spec.SortedKeys(h.Reservations) {
		r := h.Reservations[t]
		rows = append(rows, []string{t, r.Need.String(), age(a.now(), r.At)})
	}
	return table(a.io.Out, []string{"TENANT", "RESERVED", "SINCE"}, rows)
}

// hostsState cordons or uncordons a host.
func (a *app) hostsState(verb, what string) *cobra.Command {
	var reason string
	cmd := &cobra.Command{Use: verb + " NAME [--reason R]", Short: verb + " a host: " + what, Args: args("NAME")}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept on the host and in the audit trail)")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		resp, err := c.Update(ctx, http.MethodPost, apiPath("v1", "hosts", args[0], verb), map[string]string{"reason": reason})
		if err != nil {
			return err
		}
		return present(a, resp, func(h hostView) error {
			printf(a.io.Out, "host %s: %s\n", h.Name, h.State)
			return nil
		})
	})
	return cmd
}

// hostsMoveAll drains a host (its tenants moved away) or evacuates a lost
// one (its tenants brought back elsewhere from their off-site backups).
func (a *app) hostsMoveAll(verb, noun string) *cobra.Command {
	var reason string
	var maxParallel int
	short := "move every tenant of a host away, live, and leave it draining"
	if verb == "evacuate" {
		short = "bring every tenant of a lost host back on healthy hosts from its newest off-site backup"
	}
	cmd := &cobra.Command{Use: verb + " NAME [--max-parallel N] [--reason R]", Short: short, Args: args("NAME")}
	cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the audit trail)")
	cmd.Flags().IntVar(&maxParallel, "max-parallel", 0, "tenants moved at a time, 1-10 (default: the API's, 2)")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		body := map[string]any{"reason": reason}
		if maxParallel != 0 {
			body["maxParallel"] = maxParallel
		}
		resp, err := c.Post(ctx, apiPath("v1", "hosts", args[0], verb), body)
		if err != nil {
			return err
		}
		if a.json() {
			return printJSON(a.io.Out, resp.Body)
		}
		flag := ""
		if verb == "evacuate" {
			flag = " --evacuation"
		}
		printf(a.io.Out, "%s of host %s started\nfollow it: tenantflow hosts moves %s%s\n", noun, args[0], args[0], flag)
		return nil
	})
	return cmd
}

// hostsMoves shows a host's drain or evacuation, running or the last.
func (a *app) hostsMoves() *cobra.Command {
	var evacuation bool
	cmd := &cobra.Command{Use: "moves NAME [--evacuation]", Short: "show a host's drain (or evacuation): each tenant's move", Args: args("NAME")}
	cmd.Flags().BoolVar(&evacuation, "evacuation", false, "the host's evacuation rather than its drain")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		noun := "drain"
		if evacuation {
			noun = "evacuation"
		}
		resp, err := c.Get(ctx, apiPath("v1", "hosts", args[0], noun), nil)
		if err != nil {
			return err
		}
		return present(a, resp, func(d hosts.Drain) error {
			if err := fields(a.io.Out, [2]string{noun, string(d.Phase)}, [2]string{"by", d.By}, [2]string{"reason", d.Reason},
				[2]string{"started", when(&d.StartedAt)}, [2]string{"finished", when(d.FinishedAt)}); err != nil {
				return err
			}
			printLine(a.io.Out, "")
			rows := make([][]string, 0, len(d.Tenants))
			for _, t := range d.Tenants {
				interruption := ""
				if t.InterruptionMs != nil {
					interruption = fmt.Sprintf("%dms", *t.InterruptionMs)
				}
				rows = append(rows, []string{t.Tenant, string(t.Outcome), t.To, interruption, t.Error})
			}
			return table(a.io.Out, []string{"TENANT", "OUTCOME", "TO", "INTERRUPTION", "ERROR"}, rows)
		})
	})
	return cmd
}
