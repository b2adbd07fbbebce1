package harness

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr is "127.0.0.1:<port>".
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// RequireBinary returns the path of a program, or reports it unavailable
// (skip locally, fail in CI) naming the Debian package that provides it.
func RequireBinary(t testing.TB, name, debianPackage string) string {
	t.Helper()
	SkipShort(t, name)
	p, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, "%s not found (apt-get install %s)", name, debianPackage)
	}
	return p
}

// WaitFor polls ready until it succeeds or timeout passes, then fails the
// test with ready's last error.
func WaitFor(t testing.TB, what string, timeout time.Duration, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = ready(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s not ready after %s: %v", what, timeout, err)
}

// Process is a server a test runs in the foreground (no daemonizing). It
// can be stopped and started again, for tests of an outage.
type Process struct {
	t    testing.TB
	name string
	args []string
	env  []string
	dir  string

	mu  sync.Mutex // guards cmd
	cmd *exec.Cmd
	out SyncBuffer // output of every run
}

// NewProcess describes a server; Start runs it. Its output is shown when
// the test fails. The process is killed when the test ends.
func NewProcess(t testing.TB, dir string, env []string, name string, args ...string) *Process {
	t.Helper()
	SkipShort(t, name)
	p := &Process{t: t, name: name, args: args, env: env, dir: dir}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.Output())
		}
	})
	return p
}

// Start runs the process (again).
func (p *Process) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		p.t.Fatalf("%s already running", p.name)
	}
	cmd := exec.Command(p.name, p.args...)
	cmd.Dir = p.dir
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.cmd = cmd
}

// take returns the running process, if any, and forgets it.
func (p *Process) take() *exec.Cmd {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := p.cmd
	p.cmd = nil
	return cmd
}

// Stop terminates the process (SIGTERM, then SIGKILL after 5 s) and waits.
func (p *Process) Stop() {
	cmd := p.take()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// Kill ends the process at once (SIGKILL to its process group), as a
// crash or an OOM kill would, and waits for it.
func (p *Process) Kill() {
	cmd := p.take()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	_ = cmd.Wait()
}

// Output is what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// SyncBuffer is a bytes.Buffer that goroutines (exec's output copiers, a
// logger) write while the test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// DialReady is a ready func for WaitFor: the TCP port accepts connections.
func DialReady(addr string) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("dial %s: %w", addr, err)
		}
		return c.Close()
	}
}

// Pid is the running process's id (0 when it is not running).
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}
