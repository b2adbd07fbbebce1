package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/gitlab"
	"github.com/tenantflow/tenantflow/activities/openshift"
	"github.com/tenantflow/tenantflow/internal/config"
	"github.com/tenantflow/tenantflow/internal/demoimage"
	"github.com/tenantflow/tenantflow/internal/temporalx"
	"github.com/tenantflow/tenantflow/wiring"
)

func runWorker(ctx context.Context, args []string, log *slog.Logger) error {
	s := config.New("worker")
	var p process
	p.worker = &wiring.Config{}
	p.temporal.Register(s)
	p.worker.Register(s)
	s.String(&p.metricsListen, "metrics-listen", "TENANTFLOW_WORKER_METRICS_LISTEN", "127.0.0.1:9464", "address of the worker's /metrics endpoint (empty: off)")
	if err := parse(s, args); err != nil {
		return err
	}
	return p.run(ctx, log)
}

func runAPI(ctx context.Context, args []string, log *slog.Logger) error {
	s := config.New("api")
	var p process
	p.api = &apiSettings{GitLab: &gitlab.Config{}, OpenShift: &openshift.Config{}}
	p.temporal.Register(s)
	p.api.register(s)
	p.api.GitLab.Register(s)
	p.api.OpenShift.Register(s)
	if err := parse(s, args); err != nil {
		return err
	}
	return p.run(ctx, log)
}

// process is what one tenantflow process runs: a worker, the API, or both
// (dev) on one Temporal client, which also lets the server hand a new
// tenant's first workflow task straight to this process (eager start).
type process struct {
	temporal      temporalx.Config
	worker        *wiring.Config // nil: no worker
	api           *apiSettings   // nil: no API
	metricsListen string         // a /metrics endpoint of its own (worker)
}

func (p process) run(ctx context.Context, log *slog.Logger) error {
	var deps wiring.Deps
	if p.worker != nil {
		// Integration settings first: a bad one fails before any dialing.
		var err error
		if deps, err = wiring.NewIntegrations(*p.worker, log); err != nil {
			return err
		}
	}
	var files apiFiles
	if p.api != nil {
		// Local files first: a bad one fails without waiting for Temporal.
		var err error
		if files, err = loadAPIFiles(*p.api); err != nil {
			return err
		}
	}
	reg := newRegistry()
	c, err := dial(ctx, p.temporal, reg, log)
	if err != nil {
		return err
	}
	defer c.Close()
	if p.worker != nil {
		stop, err := startWorker(ctx, c, p.temporal, *p.worker, deps, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	g, gctx := errgroup.WithContext(ctx)
	if p.api != nil {
		h, err := buildAPI(*p.api, files, p.temporal, c, reg, log)
		if err != nil {
			return err
		}
		g.Go(func() error { return serveHTTP(gctx, p.api.Listen, h, log) })
	}
	if p.metricsListen != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", metricsHandler(reg))
		g.Go(func() error { return serveHTTP(gctx, p.metricsListen, mux, log) })
	}
	g.Go(func() error { <-gctx.Done(); return nil })
	return g.Wait()
}

func runDemoImage(ctx context.Context, args []string, log *slog.Logger) error {
	s := config.New("demo-image")
	var bin, tag, ver, host string
	s.String(&bin, "binary", "TENANTFLOW_DEMO_BINARY", "", "prebuilt static demo-app binary (default: compile it with go build)")
	s.String(&tag, "tag", "TENANTFLOW_DEMO_TAG", demoimage.Tag, "image tag")
	s.String(&ver, "version", "TENANTFLOW_DEMO_VERSION", "dev", "version the app reports on /version")
	s.String(&host, "docker-host", "TENANTFLOW_DOCKER_HOST", "", "Docker Engine address")
	if err := parse(s, args); err != nil {
		return err
	}
	d, err := docker.New(ctx, docker.Config{Host: host}, log)
	if err != nil {
		return fmt.Errorf("TENANTFLOW_DOCKER_HOST: %w", err)
	}
	defer d.Close()
	if bin == "" {
		dir, err := os.MkdirTemp("", "demo-app-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if bin, err = demoimage.CompileBinary(ctx, dir); err != nil {
			return err
		}
	}
	id, err := demoimage.Build(ctx, d, bin, tag, ver)
	if err != nil {
		return err
	}
	log.Info("demo image built", "tag", tag, "version", ver, "id", id)
	return nil
}
