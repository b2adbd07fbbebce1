package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"golang.org/x/sync/errgroup"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/internal/config"
	"github.com/tenantflow/tenantflow/internal/temporalx"
	"github.com/tenantflow/tenantflow/testsuite/demoimage"
	"github.com/tenantflow/tenantflow/worker"
)

func runWorker(ctx context.Context, args []string, log *slog.Logger) error {
	s := config.New("worker")
	var tcfg temporalx.Config
	var wcfg worker.Config
	var metricsListen string
	tcfg.Register(s)
	wcfg.Register(s)
	s.String(&metricsListen, "metrics-listen", "TENANTFLOW_WORKER_METRICS_LISTEN", "127.0.0.1:9464", "address of the worker's /metrics endpoint (empty: off)")
	if err := parse(s, args); err != nil {
		return err
	}
	reg := newRegistry()
	c, err := dial(ctx, tcfg, reg, log)
	if err != nil {
		return err
	}
	defer c.Close()
	stop, err := startWorker(ctx, c, tcfg, wcfg, log)
	if err != nil {
		return err
	}
	defer stop()
	if metricsListen == "" {
		<-ctx.Done()
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler(reg))
	return serveHTTP(ctx, metricsListen, mux, log)
}

func runAPI(ctx context.Context, args []string, log *slog.Logger) error {
	s := config.New("api")
	var tcfg temporalx.Config
	var a apiSettings
	tcfg.Register(s)
	a.register(s)
	if err := parse(s, args); err != nil {
		return err
	}
	reg := newRegistry()
	c, err := dial(ctx, tcfg, reg, log)
	if err != nil {
		return err
	}
	defer c.Close()
	h, err := buildAPI(a, tcfg, c, reg, log)
	if err != nil {
		return err
	}
	return serveHTTP(ctx, a.Listen, h, log)
}

// runWorkerAndAPI runs both in this process on one client, which also lets
// the server hand the first workflow task of a new tenant straight to this
// process (eager workflow start).
func runWorkerAndAPI(ctx context.Context, tcfg temporalx.Config, wcfg worker.Config, a apiSettings, log *slog.Logger) error {
	reg := newRegistry()
	c, err := dial(ctx, tcfg, reg, log)
	if err != nil {
		return err
	}
	defer c.Close()
	stop, err := startWorker(ctx, c, tcfg, wcfg, log)
	if err != nil {
		return err
	}
	defer stop()
	h, err := buildAPI(a, tcfg, c, reg, log)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveHTTP(gctx, a.Listen, h, log) })
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
