// Package harness holds the shared test harnesses: real servers started on
// loopback for a test and stopped after it, and the demo image. The
// committed workflow histories live beside it in testsuite/histories.
package harness

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/internal/demoimage"
)

// RequireEnv is the variable CI sets so that a missing dependency fails a test
// instead of skipping it: nothing is silently skipped in CI.
const RequireEnv = "TENANTFLOW_REQUIRE_INTEGRATION"

// Unavailable skips the test locally and fails it when RequireEnv is set.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(RequireEnv) != "" {
		t.Fatalf("required integration dependency missing (%s is set): %s", RequireEnv, msg)
	}
	t.Skipf("skipped: %s (set %s=1 to make this a failure)", msg, RequireEnv)
}

// SkipShort skips the test in short mode (`go test -short`, `make unit`).
// Every harness that starts a server, runs a program or needs the Docker
// Engine or Temporal calls it first: short mode is an explicit choice to
// leave integrations out, so it skips even when RequireEnv is set.
func SkipShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("short mode: %s is an integration", what)
	}
}

// RepoRoot is the module root, found from this file's location so tests in
// any package can reach bin/ and deploy/.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0) // <root>/testsuite/harness/harness.go
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// Logger returns a JSON logger that writes through t.Log, so a failing
// test shows what the component said.
func Logger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	// t.Log panics once the test is over; background goroutines (SDK
	// pollers) may still log while cleanups run, so stop forwarding then.
	// The lock makes "not done yet, so log" one step.
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
	})
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// Docker connects to the local engine or reports it unavailable.
func Docker(t testing.TB) *docker.Driver {
	t.Helper()
	return DockerWith(t, docker.Config{})
}

// DockerWith is Docker with a driver configuration of the test's own.
func DockerWith(t testing.TB, cfg docker.Config) *docker.Driver {
	t.Helper()
	SkipShort(t, "the Docker Engine")
	d, err := docker.New(context.Background(), cfg, Logger(t))
	if err != nil {
		Unavailable(t, "Docker Engine: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

var demoOnce struct {
	sync.Mutex
	built map[string]error
	bin   string
}

// DemoImage builds the demo app image tag with the given version once per
// test process and returns the tag.
func DemoImage(t testing.TB, d *docker.Driver, tag, version string) string {
	t.Helper()
	return DemoImageWith(t, d, tag, version, demoimage.Options{})
}

// DemoImageUnhealthy is DemoImage for an image whose app always fails its
// health check (demoimage.BuildUnhealthy): a release candidate that must be
// rolled back. Give it a tag of its own; a tag names one image.
func DemoImageUnhealthy(t testing.TB, d *docker.Driver, tag, version string) string {
	t.Helper()
	return DemoImageWith(t, d, tag, version, demoimage.Options{Unhealthy: true})
}

// DemoImageWith is DemoImage for a deliberately bad candidate (opts).
// Give it a tag of its own; a tag names one image.
func DemoImageWith(t testing.TB, d *docker.Driver, tag, version string, opts demoimage.Options) string {
	t.Helper()
	demoOnce.Lock()
	defer demoOnce.Unlock()
	if demoOnce.built == nil {
		demoOnce.built = map[string]error{}
	}
	key := fmt.Sprintf("%s@%s#%+v", tag, version, opts)
	err, done := demoOnce.built[key]
	if !done {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if demoOnce.bin == "" {
			dir, derr := os.MkdirTemp("", "tenantflow-demoapp-")
			if derr != nil {
				t.Fatal(derr)
			}
			demoOnce.bin, err = demoimage.CompileBinary(ctx, dir)
		}
		if err == nil {
			_, err = demoimage.BuildWith(ctx, d, demoOnce.bin, tag, version, opts)
		}
		demoOnce.built[key] = err
	}
	if err != nil {
		t.Fatalf("build demo image %s: %v", tag, err)
	}
	return tag
}

// TemporalCLI is the pinned temporal CLI installed into bin/ by the Makefile.
func TemporalCLI(t testing.TB) string {
	t.Helper()
	return pinnedBinary(t, "TENANTFLOW_TEMPORAL_CLI", "temporal")
}

// DevCaddy is the pinned Caddy `make bin/caddy` installs into bin/, the
// one `make run` serves tenants with (TENANTFLOW_DEV_CADDY names another).
func DevCaddy(t testing.TB) string {
	t.Helper()
	return pinnedBinary(t, "TENANTFLOW_DEV_CADDY", "caddy")
}

// pinnedBinary is the program the Makefile installs as bin/<name>, or the
// one env names.
func pinnedBinary(t testing.TB, env, name string) string {
	t.Helper()
	SkipShort(t, name)
	p := os.Getenv(env)
	if p == "" {
		p = filepath.Join(RepoRoot(), "bin", name)
	}
	if _, err := exec.LookPath(p); err != nil {
		Unavailable(t, "%s at %s (run `make bin/%s`): %v", name, p, name, err)
	}
	return p
}

// UniqueSuffix is a short lower-case suffix that keeps the names of one
// test run apart from another's on a shared engine.
func UniqueSuffix() string {
	return strconv.FormatInt(time.Now().UnixNano()%1e7, 36)
}
