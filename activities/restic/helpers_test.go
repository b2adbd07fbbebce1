package restic_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// dirHost is a runtime made of directories: a volume is
// <root>/volumes/<tenant>/<volume>, a service's data lives in
// <root>/services/<tenant>/<service>, where its commands run, and a
// scratch instance's in <root>/scratch-instances/<tenant>/<service>.
// The system under test is restic; this stands in for Docker.
type dirHost struct {
	root string

	mu        sync.Mutex
	scratches map[string]int // scratch volumes and instances made, by name; -1 when removed
}

func newDirHost(t *testing.T, root string) *dirHost {
	t.Helper()
	return &dirHost{root: root, scratches: map[string]int{}}
}

func (h *dirHost) volume(tenant, vol string) string {
	return filepath.Join(h.root, "volumes", tenant, vol)
}

func (h *dirHost) service(tenant, svc string) string {
	return filepath.Join(h.root, "services", tenant, svc)
}

func (h *dirHost) scratchInstance(tenant, svc string) string {
	return filepath.Join(h.root, "scratch-instances", tenant, svc)
}

func (h *dirHost) VolumeDir(_ context.Context, tenant, _, vol string) (string, error) {
	dir := h.volume(tenant, vol)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("volume %s of %s: %w", vol, tenant, err)
	}
	return dir, nil
}

func (h *dirHost) ScratchVolume(_ context.Context, tenant, name string) (string, error) {
	dir := filepath.Join(h.root, "scratch-volumes", tenant, name)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	h.made("volume:" + name)
	return dir, os.MkdirAll(dir, 0o755)
}

func (h *dirHost) RemoveScratchVolume(_ context.Context, tenant, name string) error {
	h.removed("volume:" + name)
	return os.RemoveAll(filepath.Join(h.root, "scratch-volumes", tenant, name))
}

func (h *dirHost) ExecInService(ctx context.Context, tenant, _ string, svc spec.Service, cmd []string, stdin io.Reader, stdout io.Writer) error {
	return execIn(ctx, h.service(tenant, svc.Name), cmd, stdin, stdout)
}

func (h *dirHost) StartScratchInstance(_ context.Context, tenant string, svc spec.Service) error {
	dir := h.scratchInstance(tenant, svc.Name)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	h.made("instance:" + svc.Name)
	return os.MkdirAll(dir, 0o755)
}

func (h *dirHost) ExecInScratchInstance(ctx context.Context, tenant string, svc spec.Service, cmd []string, stdin io.Reader, stdout io.Writer) error {
	return execIn(ctx, h.scratchInstance(tenant, svc.Name), cmd, stdin, stdout)
}

func (h *dirHost) RemoveScratchInstance(_ context.Context, tenant string, svc spec.Service) error {
	h.removed("instance:" + svc.Name)
	return os.RemoveAll(h.scratchInstance(tenant, svc.Name))
}

func (h *dirHost) made(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.scratches[name]++
}

func (h *dirHost) removed(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.scratches[name] = -1
}

// leftScratches are the scratch volumes and instances made and not
// removed.
func (h *dirHost) leftScratches() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for name, n := range h.scratches {
		if n > 0 {
			out = append(out, name)
		}
	}
	return out
}

// execIn runs a service's command in dir, as the Docker driver does in a
// container: a non-zero exit is a non-retryable ServiceCommandFailed.
func execIn(ctx context.Context, dir string, argv []string, stdin io.Reader, stdout io.Writer) error {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdin = stdin
	cmd.Stdout = stdout
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errAs(err, &ee) {
		msg := fmt.Sprintf("%q exited with %d: %s", argv, ee.ExitCode(), strings.TrimSpace(stderr.String()))
		return temporal.NewNonRetryableApplicationError(msg, "ServiceCommandFailed", nil)
	}
	return err
}

func errAs(err error, target **exec.ExitError) bool {
	ee, ok := err.(*exec.ExitError) //nolint:errorlint // exec returns it unwrapped
	if ok {
		*target = ee
	}
	return ok
}

// env is one worker's view: its config, its host and what it logged.
type env struct {
	t    *testing.T
	root string
	cfg  restic.Config
	host *dirHost
	a    *restic.Activities
	logs *harness.SyncBuffer
}

// newEnv makes a worker whose repositories, keys and runtime are in root
// (a new temporary directory when empty).
func newEnv(t *testing.T, root string, edit func(*restic.Config)) *env {
	t.Helper()
	bin := harness.RequireBinary(t, "restic", "restic")
	if root == "" {
		root = t.TempDir()
	}
	cfg := restic.Config{Repos: filepath.Join(root, "repos"), Keys: filepath.Join(root, "keys"), Binary: bin}
	if edit != nil {
		edit(&cfg)
	}
	e := &env{t: t, root: root, cfg: cfg, host: newDirHost(t, filepath.Join(root, "host")), logs: &harness.SyncBuffer{}}
	log := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := restic.New(cfg, e.host, log)
	if err != nil {
		t.Fatal(err)
	}
	e.a = a
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("RESTIC_TEST_VERBOSE") != "" {
			t.Logf("activities' log:\n%s", e.logs.String())
		}
	})
	return e
}

// dbService is a "database" whose data is the file db.data in its
// directory; its dump is that file.
func dbService(name string) spec.Service {
	return spec.Service{Name: name, Backup: &spec.ServiceBackup{
		Dump:    []string{"cat", "db.data"},
		Restore: []string{"sh", "-c", "cat > db.data"},
	}}
}

// writeRandom writes n pseudo-random (incompressible) bytes to path.
func writeRandom(t *testing.T, path string, n int64, seed uint64) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	r := rand.NewChaCha8(s)
	if _, err := io.CopyN(io.MultiWriter(f, h), r, n); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// resticCLI runs restic on a repository with a key file, as an operator
// would, and returns its output.
func resticCLI(t *testing.T, repo, key string, args ...string) (string, error) {
	t.Helper()
	// Minutes: a deletion the server refuses is retried for most of one.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "restic", append([]string{"--no-cache"}, args...)...)
	cmd.Env = append(os.Environ(), "RESTIC_REPOSITORY="+repo, "RESTIC_PASSWORD_FILE="+key)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// snapshotTags lists the tags of the repository's snapshots with tag.
func snapshotTags(t *testing.T, repo, key, tag string) [][]string {
	t.Helper()
	out, err := resticCLI(t, repo, key, "snapshots", "--json", "--tag", tag)
	if err != nil {
		t.Fatalf("restic snapshots: %v: %s", err, out)
	}
	var snaps []struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal([]byte(out), &snaps); err != nil {
		t.Fatalf("restic snapshots: %v: %s", err, out)
	}
	var tags [][]string
	for _, s := range snaps {
		tags = append(tags, s.Tags)
	}
	return tags
}

// dirSize is the size of the files under dir.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// rcloneServer is an off-site server: rclone serve restic, one private
// directory per user.
type rcloneServer struct {
	url, user, password, dir string
}

// startRclone starts the workers' off-site server: append-only.
func startRclone(t *testing.T, user, password string) rcloneServer {
	t.Helper()
	return serveRclone(t, filepath.Join(t.TempDir(), "data"), user, password, true)
}

// startRclonePair starts the two off-site servers of the pruning design
// over one storage: the workers' (append-only) and the pruner's (which
// deletes), each with its own password for the same user.
func startRclonePair(t *testing.T, user, workerPassword, prunePassword string) (worker, prune rcloneServer) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	return serveRclone(t, dir, user, workerPassword, true), serveRclone(t, dir, user, prunePassword, false)
}

func serveRclone(t *testing.T, dir, user, password string, appendOnly bool) rcloneServer {
	t.Helper()
	harness.RequireBinary(t, "rclone", "rclone")
	home := t.TempDir()
	addr := harness.Addr(harness.FreePort(t))
	args := []string{"serve", "restic", "--addr", addr, "--private-repos", "--user", user, "--pass", password, dir}
	if appendOnly {
		args = append(args, "--append-only")
	}
	p := harness.NewProcess(t, home, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}, "rclone", args...)
	p.Start()
	harness.WaitFor(t, "rclone serve restic", 10*time.Second, harness.DialReady(addr))
	return rcloneServer{url: "http://" + addr + "/", user: user, password: password, dir: dir}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// flock takes an exclusive flock on f, as another activity would.
func flock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) }
