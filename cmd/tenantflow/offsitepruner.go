package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"golang.org/x/sync/errgroup"

	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/internal/config"
	"github.com/tenantflow/tenantflow/internal/temporalx"
)

// Settings of the off-site pruner that are not restic's or Temporal's.
const (
	envPruneTaskQueue     = "TENANTFLOW_PRUNE_TASK_QUEUE"
	envPrunerMetrics      = "TENANTFLOW_PRUNER_METRICS_LISTEN"
	envWorkersTaskQueue   = "TENANTFLOW_TASK_QUEUE"
	envWorkerStopTimeout  = "TENANTFLOW_WORKER_STOP_TIMEOUT"
	defaultPruneStopGrace = 30 * time.Second
)

// runOffsitePruner runs the off-site pruner: a Temporal worker of its own
// that holds the off-site delete credential, which the workers never
// hold, and serves PruneOffsite alone (see restic.Pruner).
func runOffsitePruner(ctx context.Context, args []string, log *slog.Logger) error {
	s := config.New("offsite-pruner")
	var p pruneSettings
	p.register(s)
	if err := parse(s, args); err != nil {
		return err
	}
	return p.run(ctx, log)
}

// pruneSettings are the off-site pruner's settings.
type pruneSettings struct {
	// temporal is dialled as the workers dial it; its TaskQueue is the
	// workers' queue, which the pruner must not poll.
	temporal      temporalx.Config
	prune         restic.PruneConfig
	queue         string
	metricsListen string
	stopTimeout   time.Duration
}

func (p *pruneSettings) register(s *config.Set) {
	p.temporal.Register(s)
	if f := s.FS.Lookup("task-queue"); f != nil {
		f.Usage = "the workers' task queue, which the pruner must not poll (env " + envWorkersTaskQueue + ")"
	}
	p.prune.Register(s)
	s.String(&p.queue, "prune-task-queue", envPruneTaskQueue, restic.DefaultPruneQueue, "task queue the pruner polls: the workers' "+restic.EnvOffsitePruner)
	s.String(&p.metricsListen, "metrics-listen", envPrunerMetrics, "", "address of the pruner's /metrics endpoint (empty: off)")
	s.Duration(&p.stopTimeout, "stop-timeout", envWorkerStopTimeout, defaultPruneStopGrace, "grace period for a running prune on shutdown (restic prune resumes where it stopped)")
}

// temporalConfig is the Temporal configuration with the pruner's queue.
func (p pruneSettings) temporalConfig() temporalx.Config {
	c := p.temporal
	c.TaskQueue = p.queue
	return c
}

// validate reports every bad setting by its name before anything is
// dialled.
func (p pruneSettings) validate() error {
	var problems config.Problems
	problems.Append(p.prune.Validate())
	switch p.queue {
	case "":
		problems.Add(envPruneTaskQueue, "must not be empty")
	case p.temporal.TaskQueue:
		// It would take the workers' activities and fail them all.
		problems.Add(envPruneTaskQueue, "%q is the workers' task queue (%s): the pruner polls one of its own, the workers' %s",
			p.queue, envWorkersTaskQueue, restic.EnvOffsitePruner)
	}
	if p.stopTimeout < 0 {
		problems.Add(envWorkerStopTimeout, "must not be negative")
	}
	// Temporal's own settings; the queue is checked above.
	tcfg := p.temporal
	tcfg.TaskQueue = restic.DefaultPruneQueue
	problems.Append(tcfg.Validate())
	return problems.Err()
}

func (p pruneSettings) run(ctx context.Context, log *slog.Logger) error {
	if err := p.validate(); err != nil {
		return err
	}
	pruner, err := restic.NewPruner(p.prune, log)
	if err != nil {
		return err
	}
	if err := checkPruner(ctx, p.prune, log); err != nil {
		return err
	}
	reg := newRegistry()
	tcfg := p.temporalConfig()
	c, err := dial(ctx, tcfg, reg, log)
	if err != nil {
		return err
	}
	defer c.Close()
	w := newPruneWorker(c, p, pruner)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start the off-site pruner on task queue %s: %w", p.queue, err)
	}
	log.Info("off-site pruner started", "taskQueue", p.queue, "namespace", tcfg.Namespace, "server", p.prune.URL, "user", p.prune.User)
	defer func() {
		log.Info("off-site pruner stopping", "grace", p.stopTimeout)
		w.Stop()
	}()
	g, gctx := errgroup.WithContext(ctx)
	if p.metricsListen != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", metricsHandler(reg))
		g.Go(func() error { return serveHTTP(gctx, p.metricsListen, mux, log) })
	}
	g.Go(func() error { <-gctx.Done(); return nil })
	return g.Wait()
}

// checkPruner runs the pruner's start-up check: a setting to fix stops
// it; a prune server that does not answer yet is only a warning, as the
// workers' integrations are, since PruneOffsite retries.
func checkPruner(ctx context.Context, cfg restic.PruneConfig, log *slog.Logger) error {
	err := (restic.PruneCheck{Config: cfg}).Check(ctx)
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		log.Info("off-site prune server answers and deletes", "server", cfg.URL)
	case errors.As(err, &appErr) && appErr.NonRetryable():
		return err
	default:
		log.Warn("off-site prune server not ready; prunes retry", "error", err)
	}
	return nil
}

// newPruneWorker is the pruner's Temporal worker: no workflow, and the
// Pruner's one activity, PruneOffsite, on the pruner's own queue.
func newPruneWorker(c client.Client, p pruneSettings, pruner *restic.Pruner) worker.Worker {
	host, _ := os.Hostname()
	w := worker.New(c, p.queue, worker.Options{
		Identity:          fmt.Sprintf("tenantflow-offsite-pruner@%s:%d", host, os.Getpid()),
		WorkerStopTimeout: p.stopTimeout,
	})
	pruner.Heartbeat = activity.RecordHeartbeat
	w.RegisterActivity(pruner)
	return w
}
