// Command tenantflow runs the tenant-lifecycle orchestrator.
//
//	tenantflow worker      the Temporal worker (workflows + activities)
//	tenantflow api         the REST API
//	tenantflow dev         dev server + worker + API in one process tree (make run)
//	tenantflow offsite-pruner  prunes the off-site backup copies, with the
//	                       delete credential the workers never hold
//	tenantflow demo-image  build the demo tenant app image FROM scratch
//	tenantflow tenants|releases|builds|hosts …
//	                       the command line for people, over the REST API
//	                       (internal/cli)
//
// Every flag of the servers also reads a TENANTFLOW_* variable; -h lists
// them.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/tenantflow/tenantflow/internal/cli"
)

var version = "dev"

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	os.Exit(run())
}

// run runs the command and returns the process's exit code, once every
// deferred cleanup ran.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if slices.Contains(cli.Commands, os.Args[1]) {
		return cli.Run(ctx, os.Args[1:], cli.Stdio())
	}
	log := newLogger(os.Getenv("TENANTFLOW_LOG_LEVEL"))
	slog.SetDefault(log)
	args := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "worker":
		err = runWorker(ctx, args, log)
	case "api":
		err = runAPI(ctx, args, log)
	case "dev":
		err = runDev(ctx, args, log)
	case "demo-image":
		err = runDemoImage(ctx, args, log)
	case "offsite-pruner":
		err = runOffsitePruner(ctx, args, log)
	case "version":
		fmt.Println(version)
	case "-h", "--help", "help":
		usage()
	default:
		usage()
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil && !errors.Is(err, errHelp) {
		log.Error("tenantflow "+os.Args[1]+" failed", "error", err)
		return 1
	}
	return 0
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: tenantflow <command> [flags]

commands:
  worker      run the Temporal worker
  api         run the REST API
  dev         run a local Temporal dev server, the worker and the API (Ctrl-C stops all)
  demo-image  build the demo tenant app image on the local Docker Engine
  offsite-pruner
              prune the off-site backup copies to the tenants' retention, with
              the delete credential the workers never hold (a host of its own)
  version     print the version

  tenants     list, create, show, decommission and restore tenants; take credentials
  releases    create, list, show, watch, promote, pause, resume and abort releases
  builds      build a GitLab commit into the registry, show and watch builds
  hosts       list the Docker hosts; cordon, uncordon, drain and evacuate them (ops)
              (these four talk to the REST API: --api/TENANTFLOW_API_URL, --token/
              TENANTFLOW_TOKEN, ~/.config/tenantflow/config.yaml, or make run's
              .data/dev-tokens.json; -o json prints the API's answers)

Run 'tenantflow <command> -h' for its flags; each flag of worker, api, dev and
offsite-pruner has a TENANTFLOW_* variable.

`+cli.ExitCodesHelp)
}

var errHelp = errors.New("help requested")

func newLogger(level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l})).With("service", "tenantflow")
}
