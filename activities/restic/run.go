package restic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go.temporal.io/sdk/temporal"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// waitDelay is how long a cancelled restic has, after its SIGINT, to
// remove its lock from the repository and exit before it is killed.
const waitDelay = 10 * time.Second

// stderrTail is how much of restic's standard error an error carries.
const stderrTail = 4096

// repository is one restic repository as a command's target.
type repository struct {
	// location is RESTIC_REPOSITORY's value; the off-site one holds the
	// worker's credential, so it goes only into the child's environment,
	// never into argv (ps shows argv) or a message.
	location string
	// name is what logs and errors show.
	name string
	// key is the password file (RESTIC_PASSWORD_FILE).
	key string
}

// command is one run of restic.
type command struct {
	repo repository
	// from is the source of copy and of init --copy-chunker-params.
	from *repository
	args []string
	// dir is the working directory (a volume backed up as ".").
	dir string
	// stdout receives the output as it is (dump); without it, each
	// line goes to onLine when set, and otherwise the output is
	// collected and returned.
	stdout io.Writer
	onLine func(line []byte)
}

// resticError is a failed run of restic: what it was asked, how it ended
// and the end of what it said, scrubbed of the off-site password.
type resticError struct {
	op     string
	repo   string
	err    error
	stderr string
}

func (e *resticError) Error() string {
	msg := fmt.Sprintf("restic %s on %s: %v", e.op, e.repo, e.err)
	if e.stderr != "" {
		msg += ": " + e.stderr
	}
	return msg
}

func (e *resticError) Unwrap() error { return e.err }

// exitCode is restic's exit status (-1: it did not exit by itself).
func (e *resticError) exitCode() int {
	var ee *exec.ExitError
	if errors.As(e.err, &ee) {
		return ee.ExitCode()
	}
	return -1
}

// noRepository: the repository does not exist (restic 0.14 has no exit
// code for it, only the message).
func (e *resticError) noRepository() bool {
	return strings.Contains(e.stderr, "Is there a repository at the following location?") ||
		strings.Contains(e.stderr, "<config/> does not exist")
}

// refused: the REST server refuses the worker's credential.
func (e *resticError) refused() bool {
	return strings.Contains(e.stderr, "401 Unauthorized") || strings.Contains(e.stderr, "403 Forbidden")
}

// wrongKey: the repository does not open with the key.
func (e *resticError) wrongKey() bool {
	return strings.Contains(e.stderr, "wrong password or no key found")
}

// infrastructure: the failure says nothing about the repository's
// content (a lock held, the network, the local disk, a cancellation).
func (e *resticError) infrastructure() bool {
	if errors.Is(e.err, context.Canceled) || errors.Is(e.err, context.DeadlineExceeded) || e.exitCode() == -1 {
		return true
	}
	for _, s := range []string{
		"repository is already locked", "unable to create lock", "connection refused",
		"connection reset", "no such host", "i/o timeout", "TLS handshake", "unexpected HTTP response (5",
		"no space left on device", "too many open files", "cannot allocate memory", "context canceled",
	} {
		if strings.Contains(e.stderr, s) {
			return true
		}
	}
	return false
}

// asResticError returns the restic failure inside err.
func asResticError(err error) (*resticError, bool) {
	var re *resticError
	ok := errors.As(err, &re)
	return re, ok
}

// secrets are the forms in which the off-site password could appear in
// restic's output: as it is, and escaped as in a URL.
func (a *Activities) secrets() []string {
	pw := a.Config.OffsitePassword
	if pw == "" {
		return nil
	}
	out := []string{pw}
	if u := url.UserPassword("x", pw).String(); u != "x:"+pw {
		out = append(out, strings.TrimPrefix(u, "x:"))
	}
	for _, esc := range []string{url.QueryEscape(pw), url.PathEscape(pw)} {
		if esc != pw {
			out = append(out, esc)
		}
	}
	return out
}

// scrub removes the off-site password from s.
func (a *Activities) scrub(s string) string {
	for _, secret := range a.secrets() {
		s = strings.ReplaceAll(s, secret, "***")
	}
	return s
}

// running is a started restic.
type running struct {
	a      *Activities
	c      command
	cmd    *exec.Cmd
	stdout *bytes.Buffer
	stderr *tailBuffer
	lines  *lineWriter
	ctx    context.Context
	began  time.Time
	killed bool
}

// start runs restic with c's arguments after the global ones. The child
// gets a minimal environment (never the worker's, which holds the
// off-site password in clear): the repository and key by variables, and
// UTC for --time.
//
// restic runs without its cache (--no-cache). The cache keeps local
// copies of a repository's metadata (index, snapshots, trees) so that a
// remote repository is not read again; ours are local (a disk, or an NFS
// share the workers mount), where reading the metadata from the
// repository costs what reading the cache would. A cache would only
// double that metadata on disk, grow with the number of tenants, need a
// clean-up of its own at erasure, and sit in one place shared by every
// worker on the host. The off-site repository is written by copy, which
// reads its (per-tenant, small) index and snapshots once per run, and is
// read only by drills, which read everything anyway.
func (a *Activities) start(ctx context.Context, c command, stdin bool) (*running, io.WriteCloser, error) {
	args := append([]string{"--no-cache"}, c.args...)
	cmd := exec.CommandContext(ctx, a.binary(), args...)
	cmd.Dir = c.dir
	cmd.Env = resticEnv(c)
	cmd.SysProcAttr = sysProcAttr()
	// SIGINT lets restic remove its lock from the repository.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = waitDelay
	r := &running{a: a, c: c, cmd: cmd, ctx: ctx, stderr: &tailBuffer{max: stderrTail}}
	cmd.Stderr = r.stderr
	switch {
	case c.stdout != nil:
		cmd.Stdout = c.stdout
	case c.onLine != nil:
		r.lines = &lineWriter{fn: c.onLine}
		cmd.Stdout = r.lines
	default:
		r.stdout = &bytes.Buffer{}
		cmd.Stdout = r.stdout
	}
	var w io.WriteCloser
	if stdin {
		p, err := cmd.StdinPipe()
		if err != nil {
			return nil, nil, r.fail(err)
		}
		w = p
	}
	r.began = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, nil, r.fail(err)
	}
	return r, w, nil
}

// resticEnv is the child's whole environment.
func resticEnv(c command) []string {
	env := []string{"TZ=UTC", "RESTIC_PROGRESS_FPS=1",
		"RESTIC_REPOSITORY=" + c.repo.location, "RESTIC_PASSWORD_FILE=" + c.repo.key}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if c.from != nil {
		env = append(env, "RESTIC_FROM_REPOSITORY="+c.from.location, "RESTIC_FROM_PASSWORD_FILE="+c.from.key)
	}
	return env
}

func (a *Activities) binary() string {
	if a.Config.Binary == "" {
		return "restic"
	}
	return a.Config.Binary
}

// kill ends restic at once (SIGKILL): it can neither finish a snapshot
// nor remove its lock, which the next activity's restic unlock removes.
func (r *running) kill() {
	r.killed = true
	_ = r.cmd.Process.Kill()
}

// wait waits for restic and returns its collected output.
func (r *running) wait() ([]byte, error) {
	err := r.cmd.Wait()
	if r.lines != nil {
		r.lines.flush()
	}
	r.a.log().Debug("restic ran", "args", r.c.args, "repository", r.c.repo.name, "took", time.Since(r.began), "err", err)
	if err != nil {
		return nil, r.fail(err)
	}
	if r.stdout == nil {
		return nil, nil
	}
	return r.stdout.Bytes(), nil
}

func (r *running) fail(err error) error {
	if ctxErr := context.Cause(r.ctx); ctxErr != nil && !errors.Is(err, ctxErr) {
		err = fmt.Errorf("%w (%w)", ctxErr, err)
	}
	op := "command"
	if len(r.c.args) > 0 {
		op = r.c.args[0]
	}
	re := &resticError{op: op, repo: r.c.repo.name, err: err, stderr: r.a.scrub(strings.TrimSpace(r.stderr.String()))}
	if re.damaged() {
		// Retrying reads the same damaged bytes: say so at once. The
		// restic error stays inside for drillFailed and the callers.
		return temporal.NewNonRetryableApplicationError(re.Error(), ErrRepositoryDamaged, re)
	}
	return re
}

// damaged: restic read data of the repository that is not what it wrote
// (a flipped bit on the disk, a truncated pack).
func (e *resticError) damaged() bool {
	for _, s := range []string{"ciphertext verification failed", "invalid data returned", "hash does not match", "repository contains errors"} {
		if strings.Contains(e.stderr, s) {
			return true
		}
	}
	return false
}

// run runs restic to its end and returns its output (see command).
func (a *Activities) run(ctx context.Context, c command) ([]byte, error) {
	r, _, err := a.start(ctx, c, false)
	if err != nil {
		return nil, err
	}
	return r.wait()
}

// snapshot is one entry of restic snapshots --json.
type snapshot struct {
	ID       string    `json:"id"`
	ShortID  string    `json:"short_id"`
	Time     time.Time `json:"time"`
	Paths    []string  `json:"paths"`
	Hostname string    `json:"hostname"`
	Tags     []string  `json:"tags"`
}

// tag is the value of the snapshot's tag with the prefix (kind:), or "".
func (s snapshot) tag(prefix string) string {
	for _, t := range s.Tags {
		if v, ok := strings.CutPrefix(t, prefix); ok {
			return v
		}
	}
	return ""
}

func (s snapshot) has(tag string) bool {
	for _, t := range s.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// snapshots lists the repository's snapshots, those with tag when set.
func (a *Activities) snapshots(ctx context.Context, repo repository, tag string) ([]snapshot, error) {
	args := []string{"snapshots", "--json"}
	if tag != "" {
		args = append(args, "--tag", tag)
	}
	out, err := a.run(ctx, command{repo: repo, args: args})
	if err != nil {
		return nil, err
	}
	var snaps []snapshot
	if err := json.Unmarshal(out, &snaps); err != nil {
		return nil, fmt.Errorf("restic snapshots on %s: unreadable output: %w", repo.name, err)
	}
	return snaps, nil
}

// unlockStale removes the locks that restic finds stale (their process
// is gone, or they are older than 30 minutes). The caller holds the
// tenant's flock, so none is one of ours that still works.
// Without a lock in the local repository's locks/ directory (the
// repository format's layout) there is nothing to remove, and no restic
// runs: each run spends half a second deriving the key.
func (a *Activities) unlockStale(ctx context.Context, repo repository) error {
	if locks, err := os.ReadDir(filepath.Join(repo.location, "locks")); err == nil && len(locks) == 0 {
		return nil
	}
	_, err := a.run(ctx, command{repo: repo, args: []string{"unlock"}})
	return err
}

// repositoryBytes is the size of the repository on its disk: what its
// files take, summed (no restic run, which would spend half a second
// deriving the key and read the whole index).
func (a *Activities) repositoryBytes(_ context.Context, repo repository) (int64, error) {
	var n int64
	err := filepath.WalkDir(repo.location, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		n += fi.Size()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", repo.name, err)
	}
	return n, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// lineWriter hands each complete line written to it to fn.
type lineWriter struct {
	fn      func([]byte)
	partial []byte
}

// maxLine bounds a line kept while it is incomplete.
const maxLine = 1 << 20

func (l *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(l.partial)+len(p) <= maxLine {
				l.partial = append(l.partial, p...)
			}
			break
		}
		line := p[:i]
		if len(l.partial) > 0 {
			line = append(l.partial, line...)
			l.partial = l.partial[:0]
		}
		l.fn(line)
		p = p[i+1:]
	}
	return n, nil
}

func (l *lineWriter) flush() {
	if len(l.partial) > 0 {
		l.fn(l.partial)
		l.partial = nil
	}
}

// exitSignal reports whether err is a process killed by a signal.
func exitSignal(err error) bool {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
			return ws.Signaled()
		}
	}
	return false
}
