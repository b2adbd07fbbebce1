// Package temporaltest starts a real Temporal dev server for tests, set up
// as `tenantflow dev` sets it up. It is apart from package testsuite so that
// integration tests of single activities do not compile the workflows.
package temporaltest

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/tenantflow/tenantflow/internal/codec"
	"github.com/tenantflow/tenantflow/internal/devserver"
	"github.com/tenantflow/tenantflow/internal/temporalx"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// TestCodecKeys is the payload key every test server uses. It is derived from
// a fixed phrase on purpose: the committed histories under testsuite/histories
// were recorded with it, and the replay tests must decrypt them. Never use it
// outside tests.
var TestCodecKeys = func() string {
	sum := sha256.Sum256([]byte("tenantflow test-only codec key"))
	return "test:" + base64.StdEncoding.EncodeToString(sum[:])
}()

// TestKeyring returns the keyring for TestCodecKeys.
func TestKeyring(t testing.TB) *codec.Keyring {
	k, err := codec.ParseKeys(TestCodecKeys)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ServerEnv chooses the server StartTemporal starts: "dev" (the
// default) or "cluster".
const ServerEnv = "TENANTFLOW_TEMPORAL_SERVER"

// Temporal is a real dev server started for one test (or benchmark).
type Temporal struct {
	Server *testsuite.DevServer
	Client client.Client
	Config temporalx.Config
	// cluster is the full server's processes (nil: the dev server).
	cluster *Cluster
}

// ServerPIDs names the server's processes, for benchmarks measuring
// their CPU and memory: the dev server's one process, or the full
// server and its PostgreSQL.
func (t *Temporal) ServerPIDs() (map[string]int, error) {
	if t.cluster != nil {
		return map[string]int{"temporal-server": t.cluster.proc.Pid(), "postgresql": t.cluster.Postgres.PID()}, nil
	}
	_, port, err := net.SplitHostPort(t.Config.Address)
	if err != nil {
		return nil, err
	}
	pid, err := harness.FindProcess("start-dev", "--port "+port+" ")
	if err != nil {
		return nil, err
	}
	return map[string]int{"temporal dev server": pid}, nil
}

// StartTemporal starts `temporal server start-dev` (the pinned CLI in bin/)
// on a free loopback port, in memory, configured as `make run` configures
// it, and stops it when the test ends.
//
// With TENANTFLOW_TEMPORAL_SERVER=cluster it starts the full server on
// PostgreSQL instead (StartCluster): the same tests, on the other server.
func StartTemporal(t testing.TB) *Temporal {
	t.Helper()
	if os.Getenv(ServerEnv) == "cluster" {
		return StartCluster(t).Temporal
	}
	harness.SkipShort(t, "the Temporal dev server")
	cli := harness.TemporalCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := temporalx.Config{Namespace: "default", TaskQueue: "tenantflow-test", CodecKeys: TestCodecKeys}
	srv, err := testsuite.StartDevServer(ctx, testsuite.DevServerOptions{
		ExistingPath:  cli,
		ClientOptions: &client.Options{Namespace: cfg.Namespace, Logger: tlog.NewStructuredLogger(harness.Logger(t))},
		LogLevel:      "error",
		ExtraArgs:     devserver.Args(),
		Stdout:        io.Discard,
	})
	if err != nil {
		t.Fatalf("start temporal dev server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Logf("stop temporal dev server: %v", err)
		}
	})
	cfg.Address = srv.FrontendHostPort()
	c, err := temporalx.Dial(ctx, cfg, harness.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &Temporal{Server: srv, Client: c, Config: cfg}
}

// Persistent is a dev server whose state lives in a SQLite file, so the
// test can kill it (SIGKILL, mid-workflow) and start it again on the same
// state and address.
type Persistent struct {
	*Temporal
	t    testing.TB
	proc *harness.Process
}

// StartPersistent starts `temporal server start-dev --db-filename` on a
// free loopback port, configured as StartTemporal's server.
func StartPersistent(t testing.TB) *Persistent {
	t.Helper()
	harness.SkipShort(t, "the Temporal dev server")
	cli := harness.TemporalCLI(t)
	dir := t.TempDir()
	port := harness.FreePort(t)
	args := append([]string{"server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", strconv.Itoa(port),
		"--db-filename", filepath.Join(dir, "temporal.db"), "--log-level", "error"}, devserver.Args()...)
	cfg := temporalx.Config{Namespace: "default", TaskQueue: "tenantflow-test", CodecKeys: TestCodecKeys,
		Address: harness.Addr(port)}
	p := &Persistent{t: t, proc: harness.NewProcess(t, dir, nil, cli, args...), Temporal: &Temporal{Config: cfg}}
	p.Start()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := temporalx.Dial(ctx, cfg, harness.Logger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	p.Client = c
	return p
}

// Start runs the server (again) and waits until its frontend accepts
// connections.
func (p *Persistent) Start() {
	p.t.Helper()
	p.proc.Start()
	harness.WaitFor(p.t, "temporal dev server", time.Minute, harness.DialReady(p.Config.Address))
}

// Kill ends the server with SIGKILL: no shutdown, no flush beyond what
// SQLite made durable.
func (p *Persistent) Kill() { p.proc.Kill() }
