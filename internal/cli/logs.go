package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"time"

	"github.com/spf13/cobra"
)

// logsFlags are the flags of tenants logs.
type logsFlags struct {
	service, since     string
	tail               int
	follow, timestamps bool
}

func (a *app) tenantsLogs() *cobra.Command {
	var f logsFlags
	cmd := &cobra.Command{
		Use:   "logs NAME [--service S] [--since D] [--tail N] [-f]",
		Short: "print a tenant's container logs; -f follows them (ops, distributor)",
		Long: `Print a tenant's container logs, "service | line", as the API streams them
(-o json: its NDJSON lines as they are). With -f the lines are printed as they
are written, until Ctrl-C or the API ends the stream (after 30 minutes at most:
the command says how to go on).`,
		Args: args("NAME"),
	}
	fl := cmd.Flags()
	fl.StringVar(&f.service, "service", "", "only this service's containers (app, db, …)")
	fl.StringVar(&f.since, "since", "", `only lines since: a duration back from now ("10m") or an RFC 3339 time`)
	fl.IntVar(&f.tail, "tail", 0, "the last N lines (API default 100; 0: every line since --since)")
	fl.BoolVarP(&f.follow, "follow", "f", false, "go on printing lines as they are written")
	fl.BoolVarP(&f.timestamps, "timestamps", "t", false, "print each line's time")
	cmd.RunE = a.run(func(ctx context.Context, c *Client, args []string) error {
		q := url.Values{}
		for k, v := range map[string]string{"service": f.service, "since": f.since} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if cmd.Flags().Changed("tail") {
			q.Set("tail", strconv.Itoa(f.tail))
		}
		if f.follow {
			q.Set("follow", "true")
		}
		body, err := c.Stream(ctx, apiPath("v1", "tenants", args[0], "logs"), q)
		if err != nil {
			return err
		}
		defer body.Close()
		last, err := a.copyLogs(body, f.timestamps)
		switch {
		case ctx.Err() != nil:
			return ctx.Err() // Ctrl-C
		case err != nil:
			return err
		case f.follow:
			a.followEnded(args[0], f, last)
		}
		return nil
	})
	return cmd
}

// copyLogs prints the API's lines as they come, and returns the time of
// the last.
func (a *app) copyLogs(r io.Reader, timestamps bool) (time.Time, error) {
	br := bufio.NewReader(r) // no line length limit, unlike a Scanner
	var last time.Time
	for {
		b, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(b)) > 0 {
			var l logLine
			if jerr := json.Unmarshal(b, &l); jerr != nil {
				return last, fmt.Errorf("read the API's answer: %w", jerr)
			}
			last = l.Time
			a.printLogLine(b, l, timestamps)
		}
		switch {
		case errors.Is(err, io.EOF):
			return last, nil
		case err != nil:
			return last, fmt.Errorf("read the logs: %w", err)
		}
	}
}

// printLogLine writes one line: as it came with -o json, else "service |
// line" (its time first with timestamps).
func (a *app) printLogLine(raw []byte, l logLine, timestamps bool) {
	switch {
	case a.json():
		_ = printJSON(a.io.Out, raw)
	case timestamps:
		printf(a.io.Out, "%s %s | %s\n", l.Time.UTC().Format(time.RFC3339Nano), l.Service, l.Line)
	default:
		printf(a.io.Out, "%s | %s\n", l.Service, l.Line)
	}
}

// followEnded says, on stderr, that the API ended a followed stream (its
// 30-minute bound, or the containers stopped) and how to go on from the
// last line.
func (a *app) followEnded(name string, f logsFlags, last time.Time) {
	again := "tenantflow tenants logs " + name + " -f"
	if f.service != "" {
		again += " --service " + f.service
	}
	if !last.IsZero() {
		again += " --tail 0 --since " + last.UTC().Format(time.RFC3339Nano)
	}
	printf(a.io.Err, "note: the API ended the stream (it follows for 30 minutes at most, or the containers stopped); go on: %s\n", again)
}
