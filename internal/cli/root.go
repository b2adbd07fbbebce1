// Package cli is the tenantflow command line for people: `tenantflow
// tenants|releases|builds|hosts|audit …`. It talks only to the REST API, with the
// caller's bearer token, so it can do nothing that token's role may not;
// it prints tables (or the API's JSON with -o json), follows releases and
// builds live, and ends with an exit code scripts can branch on (exit.go).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Commands lists the top-level commands this package runs (main dispatches
// them here).
var Commands = []string{"tenants", "releases", "builds", "hosts", "audit"}

// IO is where the CLI writes and what it knows of the terminal.
type IO struct {
	Out, Err io.Writer
	// TTY says Out is a terminal: watch then redraws a progress display
	// instead of printing a line per change.
	TTY bool
	// Size is the terminal's width and height (nil or 0: unknown).
	Size func() (width, height int)
	// Getenv reads the environment (tests pass their own).
	Getenv func(string) string
}

// Stdio is the process's own standard output and error, and environment.
func Stdio() IO {
	fd := int(os.Stdout.Fd())
	return IO{
		Out: os.Stdout, Err: os.Stderr,
		TTY: term.IsTerminal(fd),
		Size: func() (int, int) {
			w, h, err := term.GetSize(fd)
			if err != nil {
				return 0, 0
			}
			return w, h
		},
		Getenv: os.Getenv,
	}
}

// Run runs `tenantflow args…` (args[0] one of Commands) and returns the
// exit code; errors go to stderr as `error: <field>: <message>`.
func Run(ctx context.Context, args []string, stdio IO) int {
	return run(ctx, args, newApp(stdio))
}

func run(ctx context.Context, args []string, a *app) int {
	stdio := a.io
	root := a.root()
	root.SetArgs(args)
	root.SetOut(stdio.Out)
	root.SetErr(stdio.Err)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	var ce *commandError
	if !errors.As(err, &ce) {
		// cobra's own: an unknown command or flag, a wrong argument count.
		printf(stdio.Err, "error: %v\nRun '%s --help' for usage.\n", err, cmd.CommandPath())
		return ExitUsage
	}
	code := exitCode(ce.err)
	a.report(ce.err, code)
	return code
}

// report prints a command's error on stderr.
func (a *app) report(err error, code int) {
	var apiErr *APIError
	switch {
	case code == ExitInterrupted:
		printLine(a.io.Err, "interrupted")
	case err.Error() == "":
		// the command said how it ended already (a watch)
	case errors.As(err, &apiErr) && apiErr.Status == 401:
		printf(a.io.Err, "error: %v (token from %s)\n", err, a.target.TokenFrom)
	default:
		printf(a.io.Err, "error: %v\n", err)
	}
}

// commandError marks an error a command returned, as opposed to one of
// cobra's (usage); exitCode decides its code.
type commandError struct{ err error }

func (e *commandError) Error() string { return e.err.Error() }
func (e *commandError) Unwrap() error { return e.err }

// app is one run of the CLI: its IO, global flags, and the API client.
type app struct {
	io    IO
	flags struct {
		api, token, as, output string
	}
	target target
	// pollEvery is the watch's polling period; retryWait bounds the wait
	// before an Update is sent again (tests shorten both).
	pollEvery, retryWait time.Duration
	now                  func() time.Time
}

func newApp(stdio IO) *app {
	if stdio.Getenv == nil {
		stdio.Getenv = os.Getenv
	}
	if stdio.Size == nil {
		stdio.Size = func() (int, int) { return 0, 0 }
	}
	return &app{io: stdio, pollEvery: time.Second, retryWait: 5 * time.Second, now: time.Now}
}

// configHelp says where the CLI finds the API and its token (each
// group's help).
const configHelp = `It talks to the REST API with your token: it can do nothing your role may not.
The API and the token come from, first found:
  --api, --token                       flags
  TENANTFLOW_API_URL, TENANTFLOW_TOKEN environment
  ~/.config/tenantflow/config.yaml     (or $TENANTFLOW_CONFIG) with the keys api and token
  .data/dev-tokens.json                what 'make run' writes ($TENANTFLOW_DATA_DIR): its ops token
                                       (--as developer|distributor: that role's), and the API
                                       at http://127.0.0.1:8080
-o json prints the API's answers as they are.`

func (a *app) root() *cobra.Command {
	root := &cobra.Command{
		Use:           "tenantflow",
		Short:         "Tenantflow's command line",
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if o := a.flags.output; o != "table" && o != "json" {
				return usageError(fmt.Sprintf("-o %q: want table or json", o))
			}
			return nil
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	pf := root.PersistentFlags()
	pf.StringVar(&a.flags.api, "api", "", "API URL (env "+EnvAPIURL+")")
	pf.StringVar(&a.flags.token, "token", "", "bearer token (env "+EnvToken+"; prefer it or the config file: flags show in ps)")
	pf.StringVar(&a.flags.as, "as", "", "use this role's token from the dev tokens file (.data/dev-tokens.json): ops, distributor or developer")
	pf.StringVarP(&a.flags.output, "output", "o", "table", "output: table, or json (the API's answer as is)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err.Error()) })
	root.SetUsageTemplate(root.UsageTemplate() + "\n" + ExitCodesHelp + "\n")
	root.AddCommand(a.tenantsCmd(), a.releasesCmd(), a.buildsCmd(), a.hostsCmd(), a.auditCmd())
	return root
}

// group makes cmd a command of subcommands: it shows its help, and an
// unknown subcommand is a usage error (cobra checks that only at the root).
func group(cmd *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	cmd.Long = "Tenantflow's " + cmd.Use + ": " + cmd.Short + ".\n\n" + configHelp
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageError(fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath()))
		}
		return c.Help()
	}
	cmd.AddCommand(subs...)
	return cmd
}

// run wraps a command's body: it connects to the API first, and marks what
// the body returns as the command's (see commandError).
func (a *app) run(body func(ctx context.Context, c *Client, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := a.connect(cmd)
		if err == nil {
			err = body(cmd.Context(), c, args)
		}
		if err != nil {
			return &commandError{err: err}
		}
		return nil
	}
}

func (a *app) connect(cmd *cobra.Command) (*Client, error) {
	t, err := resolve(lookup{api: a.flags.api, token: a.flags.token, as: a.flags.as,
		asSet: cmd.Flags().Changed("as"), getenv: a.io.Getenv})
	if err != nil {
		return nil, err
	}
	a.target = t
	c, err := NewClient(t.API, t.Token, a.io.Err)
	if err != nil {
		return nil, fmt.Errorf("%w (from %s)", err, t.APIFrom)
	}
	c.retryWait = a.retryWait
	return c, nil
}

// json tells -o json.
func (a *app) json() bool { return a.flags.output == "json" }

// args checks a command's positional arguments: exactly the names given,
// each a single path segment.
func args(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, got []string) error {
		if len(got) != len(names) {
			return usageError(fmt.Sprintf("%s takes %s", cmd.CommandPath(), strings.Join(names, " ")))
		}
		for i, v := range got {
			if v == "" || v == "." || v == ".." || strings.Contains(v, "/") {
				return usageError(fmt.Sprintf("%s %q is not a name", names[i], v))
			}
		}
		return nil
	}
}
