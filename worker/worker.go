// Package worker wires configuration to clients to registrations: it builds
// the runtime driver, registers the workflows and activities on the task
// queue and runs the Temporal worker until its context ends. Several
// processes running it share the task queue; scaling out is Temporal's job.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/runtime"
	"github.com/tenantflow/tenantflow/internal/config"
	"github.com/tenantflow/tenantflow/workflows"
)

// Config holds the worker's own settings (Temporal settings are dialled by
// the caller, which shares them with the API).
type Config struct {
	Docker docker.Config
	// StopTimeout is how long running activities get to finish on shutdown.
	StopTimeout time.Duration
}

// Register binds the settings to flags and TENANTFLOW_* variables.
func (c *Config) Register(s *config.Set) {
	s.String(&c.Docker.Host, "docker-host", "TENANTFLOW_DOCKER_HOST", "", "Docker Engine address (default: DOCKER_HOST or the local socket)")
	s.String(&c.Docker.PublishIP, "docker-publish-ip", "TENANTFLOW_DOCKER_PUBLISH_IP", "127.0.0.1", "host address tenant endpoints are published on")
	s.Duration(&c.StopTimeout, "stop-timeout", "TENANTFLOW_WORKER_STOP_TIMEOUT", 30*time.Second, "grace period for running activities on shutdown")
}

// Deps are the clients the activities use.
type Deps struct {
	Runtime runtime.Driver
}

// RegisterWorkflows registers every workflow under its stable type name; the
// replay tests use it too, so they replay exactly what workers run.
func RegisterWorkflows(r sdkworker.WorkflowRegistry) {
	r.RegisterWorkflowWithOptions(workflows.TenantWorkflow, workflow.RegisterOptions{Name: workflows.TenantWorkflowType})
}

// Register puts every workflow and activity on a worker.
func Register(r sdkworker.Registry, deps Deps) {
	RegisterWorkflows(r)
	r.RegisterActivity(&runtime.Activities{Driver: deps.Runtime, Heartbeat: activity.RecordHeartbeat})
}

// New builds the worker for the task queue.
func New(c client.Client, taskQueue string, cfg Config, deps Deps) sdkworker.Worker {
	host, _ := os.Hostname()
	w := sdkworker.New(c, taskQueue, sdkworker.Options{
		Identity:          fmt.Sprintf("tenantflow-worker@%s:%d", host, os.Getpid()),
		WorkerStopTimeout: cfg.StopTimeout,
	})
	Register(w, deps)
	return w
}

// CheckSearchAttributes fails with the command to run when the namespace
// lacks a search attribute the workflows upsert: otherwise every tenant
// workflow would fail its first workflow task, far from the cause.
func CheckSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes of namespace %s: %w", namespace, err)
	}
	var missing []string
	for _, k := range workflows.SearchAttributeKeys {
		if resp.GetCustomAttributes()[k.GetName()] != enumspb.INDEXED_VALUE_TYPE_KEYWORD {
			missing = append(missing, k.GetName())
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("namespace %s lacks Keyword search attributes %s: run `temporal operator search-attribute create --namespace %s --type Keyword --name %s`",
			namespace, strings.Join(missing, ", "), namespace, strings.Join(missing, " --name "))
	}
	return nil
}

// Run starts the worker and stops it gracefully when ctx ends.
func Run(ctx context.Context, c client.Client, namespace, taskQueue string, cfg Config, deps Deps, log *slog.Logger) error {
	if err := CheckSearchAttributes(ctx, c, namespace); err != nil {
		return err
	}
	w := New(c, taskQueue, cfg, deps)
	if err := w.Start(); err != nil {
		return fmt.Errorf("start worker on task queue %s: %w", taskQueue, err)
	}
	log.Info("worker started", "taskQueue", taskQueue, "namespace", namespace)
	<-ctx.Done()
	log.Info("worker stopping", "grace", cfg.StopTimeout)
	w.Stop()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
