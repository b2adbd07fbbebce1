package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/internal/config"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/temporaltest"
)

// withoutTenantflowEnv hides the TENANTFLOW_* variables of the test's
// environment, so only the flags given count.
func withoutTenantflowEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "TENANTFLOW_") {
			t.Setenv(k, "") // restored after the test
			require.NoError(t, os.Unsetenv(k))
		}
	}
}

// validPrunerArgs are settings that pass validate.
func validPrunerArgs(t *testing.T) []string {
	t.Helper()
	return []string{
		"-codec-keys", temporaltest.TestCodecKeys,
		"-restic-keys", t.TempDir(),
		"-offsite-prune-url", "http://127.0.0.1:1/",
		"-offsite-user", "worker",
		"-offsite-prune-password", "prune-secret",
	}
}

func parsePrunerArgs(t *testing.T, args []string) (pruneSettings, error) {
	t.Helper()
	s := config.New("offsite-pruner")
	var p pruneSettings
	p.register(s)
	return p, parse(s, args)
}

// A bad setting stops the pruner before it dials anything, with the
// setting's name; the password never shows.
func TestOffsitePrunerNamesBadSettings(t *testing.T) {
	withoutTenantflowEnv(t)
	p, err := parsePrunerArgs(t, validPrunerArgs(t))
	require.NoError(t, err)
	require.NoError(t, p.validate(), "the valid settings")
	assert.Equal(t, restic.DefaultPruneQueue, p.queue, "the default queue")
	assert.Equal(t, restic.DefaultPruneQueue, p.temporalConfig().TaskQueue, "the queue dialled")

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no prune URL", []string{"-offsite-prune-url", ""}, []string{restic.EnvOffsitePruneURL}},
		{"prune URL with a credential", []string{"-offsite-prune-url", "http://worker:prune-secret@backup:8000/"}, []string{restic.EnvOffsitePruneURL}},
		{"not http", []string{"-offsite-prune-url", "ftp://worker:prune-secret@backup/"}, []string{restic.EnvOffsitePruneURL}},
		{"not a URL", []string{"-offsite-prune-url", "http://worker:prune-secret@backup:port/"}, []string{restic.EnvOffsitePruneURL}},
		{"no password", []string{"-offsite-prune-password", ""}, []string{restic.EnvOffsitePrunePassword}},
		{"no user", []string{"-offsite-user", ""}, []string{restic.EnvOffsiteUser}},
		{"relative keys", []string{"-restic-keys", "keys"}, []string{restic.EnvKeys}},
		{"no restic", []string{"-restic-binary", ""}, []string{restic.EnvBinary}},
		{"no queue", []string{"-prune-task-queue", ""}, []string{envPruneTaskQueue}},
		{"the workers' queue", []string{"-prune-task-queue", "tenantflow"}, []string{envPruneTaskQueue, envWorkersTaskQueue}},
		{"no codec keys", []string{"-codec-keys", ""}, []string{"TENANTFLOW_CODEC_KEYS"}},
		{"all at once", []string{"-offsite-prune-url", "", "-offsite-prune-password", "", "-prune-task-queue", ""},
			[]string{restic.EnvOffsitePruneURL, restic.EnvOffsitePrunePassword, envPruneTaskQueue}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			err := runOffsitePruner(ctx, append(validPrunerArgs(t), tc.args...), slog.New(slog.DiscardHandler))
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "prune-secret")
			assert.Less(t, time.Since(start), time.Second, "refused before dialling")
		})
	}
}

// pruneCaller stands for the tenant workflow: it sends PruneOffsite, or
// another activity named by the test, to the pruner's queue.
func pruneCaller(ctx workflow.Context, queue, activityName string, in restic.RetentionInput) (restic.Retention, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue: queue, StartToCloseTimeout: time.Minute, RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1},
	})
	var out restic.Retention
	var act any = activityName
	if activityName == "" {
		var p *restic.Pruner
		act = p.PruneOffsite
	}
	err := workflow.ExecuteActivity(ctx, act, in).Get(ctx, &out)
	return out, err
}

// The pruner serves PruneOffsite, and nothing else, on its queue, through
// a prune server it checked at start-up; it stops on its context.
func TestOffsitePrunerServesPruneOffsite(t *testing.T) {
	rclone := harness.RequireBinary(t, "rclone", "rclone")
	harness.RequireBinary(t, "restic", "restic")
	tt := temporaltest.StartTemporal(t)
	withoutTenantflowEnv(t)

	// The prune server: rclone without --append-only.
	addr := harness.Addr(harness.FreePort(t))
	home := t.TempDir()
	srv := harness.NewProcess(t, home, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}, rclone, "serve", "restic",
		"--addr", addr, "--private-repos", "--user", "worker", "--pass", "prune-secret", filepath.Join(home, "data"))
	srv.Start()
	harness.WaitFor(t, "rclone serve restic", 10*time.Second, harness.DialReady(addr))
	keys := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(keys, "acme.key"), []byte(strings.Repeat("ab", 32)), 0o600))

	suffix := harness.UniqueSuffix()
	queue, metrics := "prune-test-"+suffix, harness.Addr(harness.FreePort(t))
	args := []string{
		"-temporal-address", tt.Config.Address, "-temporal-namespace", tt.Config.Namespace, "-codec-keys", temporaltest.TestCodecKeys,
		"-restic-keys", keys, "-offsite-prune-url", "http://" + addr + "/", "-offsite-user", "worker", "-offsite-prune-password", "prune-secret",
		"-prune-task-queue", queue, "-metrics-listen", metrics, "-stop-timeout", "5s",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- runOffsitePruner(ctx, args, harness.Logger(t)) }()
	harness.WaitFor(t, "the pruner's /metrics", 20*time.Second, func() error {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/metrics: %s", resp.Status)
		}
		return nil
	})

	caller := "prune-caller-" + suffix
	w := worker.New(tt.Client, caller, worker.Options{})
	w.RegisterWorkflowWithOptions(pruneCaller, workflow.RegisterOptions{Name: "PruneCaller"})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
	call := func(activityName, tenant string) (restic.Retention, error) {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		run, err := tt.Client.ExecuteWorkflow(cctx, client.StartWorkflowOptions{ID: "prune-" + tenant + activityName + suffix, TaskQueue: caller}, "PruneCaller", queue, activityName,
			restic.RetentionInput{Tenant: tenant, Keep: spec.Keep{Last: 1}})
		require.NoError(t, err)
		var out restic.Retention
		err = run.Get(cctx, &out)
		return out, err
	}

	// acme has a key and nothing off-site yet: nothing to prune.
	r, err := call("", "acme")
	require.NoError(t, err)
	assert.Equal(t, []string{}, r.Kept)
	assert.Equal(t, []string{}, r.Forgotten)
	// A bad tenant name reaches the pruner and comes back for good.
	_, err = call("", "Not-A-Label")
	require.Error(t, err)
	assert.Contains(t, err.Error(), restic.ErrInvalidInput)
	// The workers' activities are not the pruner's.
	_, err = call("ApplyRetention", "acme")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "ApplyRetention")
	assert.Contains(t, err.Error(), "Supported types: [PruneOffsite]")

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the pruner did not stop")
	}
}
