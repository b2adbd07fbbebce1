package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// dumpHost adds to dirHost a key/value "database" per instance whose dump
// and restore commands are the demo db's: dump writes the store as sorted
// JSON, restore replaces the store. The real engine runs the demo app's
// own tools in testsuite/e2e; this covers the activities' bookkeeping.
type dumpHost struct {
	*dirHost
	mu      sync.Mutex
	live    map[string]string
	scratch map[string]string // nil: no scratch instance
	dumps   int
	// breakRestore makes the scratch instance's restore lose a key.
	breakRestore bool
}

func (h *dumpHost) run(store *map[string]string, cmd []string, stdin io.Reader, stdout io.Writer, lossy bool) error {
	switch cmd[len(cmd)-1] {
	case "dump":
		h.dumps++
		return json.NewEncoder(stdout).Encode(*store)
	case "restore":
		var in map[string]string
		if err := json.NewDecoder(stdin).Decode(&in); err != nil {
			return temporal.NewNonRetryableApplicationError("bad dump: "+err.Error(), "ServiceCommandFailed", nil)
		}
		if lossy {
			for k := range in {
				delete(in, k)
				break
			}
		}
		*store = in
		return nil
	}
	return fmt.Errorf("unknown command %v", cmd)
}

func (h *dumpHost) ExecInService(_ context.Context, _, _ string, _ spec.Service, cmd []string, stdin io.Reader, stdout io.Writer) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.run(&h.live, cmd, stdin, stdout, false)
}

func (h *dumpHost) StartScratchInstance(context.Context, string, spec.Service) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.scratch = map[string]string{}
	return nil
}

func (h *dumpHost) ExecInScratchInstance(_ context.Context, _ string, _ spec.Service, cmd []string, stdin io.Reader, stdout io.Writer) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.scratch == nil {
		return fmt.Errorf("no scratch instance")
	}
	return h.run(&h.scratch, cmd, stdin, stdout, h.breakRestore)
}

func (h *dumpHost) RemoveScratchInstance(context.Context, string, spec.Service) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.scratch = nil
	return nil
}

var dbService = spec.Service{Name: "db", Mounts: []spec.Mount{{Volume: "dbdata", Path: "/data"}},
	Backup: &spec.ServiceBackup{Dump: []string{"/demo-app", "dump"}, Restore: []string{"/demo-app", "restore"}}}

func TestDumpsAreStoredVerifiedAndLoaded(t *testing.T) {
	host := &dumpHost{dirHost: newHost(t), live: map[string]string{"hits": "3", "name": "acme"}}
	require.NoError(t, os.WriteFile(filepath.Join(host.volume(t, tenant, "data"), "hits"), []byte("3"), 0o644))
	host.volume(t, tenant, "dbdata")
	a := newActivities(t, host)
	ctx := context.Background()

	in := DumpInput{Tenant: tenant, ID: "b1", Services: []spec.Service{dbService}}
	require.NoError(t, a.DumpServices(ctx, in))
	require.NoError(t, a.DumpServices(ctx, in), "a retry keeps the dump")
	require.Equal(t, 1, host.dumps, "the dump was taken once")
	bk, err := a.BackupVolumes(ctx, BackupInput{Tenant: tenant, ID: "b1", Volumes: []string{"data"}, Dumps: []string{"db"}})
	require.NoError(t, err)
	require.Len(t, bk.Dumps, 1)
	require.Equal(t, "db.dump", bk.Dumps[0].File)

	// sha256sum -c accepts the backup, dump included.
	if sha, err := exec.LookPath("sha256sum"); err == nil {
		cmd := exec.Command(sha, "-c", "--quiet", "SHA256SUMS")
		cmd.Dir = bk.Location
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, mustRead(t, filepath.Join(bk.Location, "SHA256SUMS")), "db.dump")
	}

	ref := BackupRef{Tenant: tenant, ID: "b1", ManifestSHA256: bk.ManifestSHA256, Dumps: []spec.Service{dbService}}
	_, err = a.VerifyBackup(ctx, ref)
	require.NoError(t, err)
	require.Nil(t, host.scratch, "the scratch instance is removed")

	// Restore: the db's volume is emptied, the dump loaded into the
	// running service.
	require.NoError(t, os.WriteFile(filepath.Join(host.volume(t, tenant, "dbdata"), "stale"), []byte("x"), 0o644))
	host.live = map[string]string{"other": "data"}
	_, err = a.RestoreVolumes(ctx, ref)
	require.NoError(t, err)
	left, err := os.ReadDir(host.volume(t, tenant, "dbdata"))
	require.NoError(t, err)
	require.Empty(t, left)
	require.NoError(t, a.LoadDumps(ctx, ref))
	require.Equal(t, map[string]string{"hits": "3", "name": "acme"}, host.live)
}

func TestDumpThatDoesNotRestoreFailsVerification(t *testing.T) {
	host := &dumpHost{dirHost: newHost(t), live: map[string]string{"hits": "3", "name": "acme"}, breakRestore: true}
	host.volume(t, tenant, "dbdata")
	a := newActivities(t, host)
	ctx := context.Background()
	require.NoError(t, a.DumpServices(ctx, DumpInput{Tenant: tenant, ID: "b1", Services: []spec.Service{dbService}}))
	bk, err := a.BackupVolumes(ctx, BackupInput{Tenant: tenant, ID: "b1", Dumps: []string{"db"}})
	require.NoError(t, err)
	_, err = a.VerifyBackup(ctx, BackupRef{Tenant: tenant, ID: "b1", ManifestSHA256: bk.ManifestSHA256, Dumps: []spec.Service{dbService}})
	harness.RequireNonRetryable(t, err, ErrVerificationFailed)
	require.Contains(t, err.Error(), "dumps as sha256")
	require.Nil(t, host.scratch)
}

func TestChangedDumpIsNeverLoaded(t *testing.T) {
	host := &dumpHost{dirHost: newHost(t), live: map[string]string{"hits": "3"}}
	host.volume(t, tenant, "dbdata")
	a := newActivities(t, host)
	ctx := context.Background()
	require.NoError(t, a.DumpServices(ctx, DumpInput{Tenant: tenant, ID: "b1", Services: []spec.Service{dbService}}))
	bk, err := a.BackupVolumes(ctx, BackupInput{Tenant: tenant, ID: "b1", Dumps: []string{"db"}})
	require.NoError(t, err)
	ref := BackupRef{Tenant: tenant, ID: "b1", ManifestSHA256: bk.ManifestSHA256, Dumps: []spec.Service{dbService}}
	a.Open = func(name string) (io.ReadCloser, error) {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		b[len(b)/2] ^= 1
		return io.NopCloser(bytes.NewReader(b)), nil
	}
	host.live = map[string]string{"kept": "yes"}
	harness.RequireNonRetryable(t, a.LoadDumps(ctx, ref), ErrVerificationFailed)
	require.Equal(t, map[string]string{"kept": "yes"}, host.live, "nothing was loaded")
	_, err = a.VerifyBackup(ctx, ref)
	harness.RequireNonRetryable(t, err, ErrVerificationFailed)
}

func TestBackupNeedsTheDumpsItLists(t *testing.T) {
	a := newActivities(t, &dumpHost{dirHost: newHost(t)})
	_, err := a.BackupVolumes(context.Background(), BackupInput{Tenant: tenant, ID: "b1", Dumps: []string{"db"}})
	harness.RequireNonRetryable(t, err, ErrInvalidInput)
	// A runtime that cannot run commands cannot take dumps.
	b := newActivities(t, newHost(t))
	harness.RequireNonRetryable(t, b.DumpServices(context.Background(), DumpInput{Tenant: tenant, ID: "b1", Services: []spec.Service{dbService}}), ErrInvalidInput)
}

func mustRead(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

// cmdHost is a DumpHost whose restore command the test provides; dump
// writes size bytes of a fixed pattern, the same every time. Unlike
// dumpHost it runs commands concurrently, as the runtime does, and records
// whether two restores ever overlapped.
type cmdHost struct {
	*dirHost
	size    int64
	restore func(ctx context.Context, stdin io.Reader) error
	running atomic.Int32
	overlap atomic.Bool
}

func (h *cmdHost) exec(ctx context.Context, cmd []string, stdin io.Reader, stdout io.Writer) error {
	switch cmd[len(cmd)-1] {
	case "dump":
		chunk := bytes.Repeat([]byte("0123456789abcdef"), 1<<12) // 64 KiB
		for left := h.size; left > 0; left -= int64(len(chunk)) {
			if _, err := stdout.Write(chunk[:min(int64(len(chunk)), left)]); err != nil {
				return err
			}
		}
		return nil
	case "restore":
		if h.running.Add(1) > 1 {
			h.overlap.Store(true)
		}
		defer h.running.Add(-1)
		return h.restore(ctx, stdin)
	}
	return fmt.Errorf("unknown command %v", cmd)
}

func (h *cmdHost) ExecInService(ctx context.Context, _, _ string, _ spec.Service, cmd []string, stdin io.Reader, stdout io.Writer) error {
	return h.exec(ctx, cmd, stdin, stdout)
}

func (h *cmdHost) ExecInScratchInstance(ctx context.Context, _ string, _ spec.Service, cmd []string, stdin io.Reader, stdout io.Writer) error {
	return h.exec(ctx, cmd, stdin, stdout)
}

func (h *cmdHost) StartScratchInstance(context.Context, string, spec.Service) error  { return nil }
func (h *cmdHost) RemoveScratchInstance(context.Context, string, spec.Service) error { return nil }

// dumpedBackup takes a backup of the db service's dump (size bytes) with
// host and returns its ref.
func dumpedBackup(t *testing.T, a *Activities, host *cmdHost, size int64) BackupRef {
	t.Helper()
	ctx := context.Background()
	host.size = size
	host.volume(t, tenant, "dbdata")
	require.NoError(t, a.DumpServices(ctx, DumpInput{Tenant: tenant, ID: "d1", Services: []spec.Service{dbService}}))
	bk, err := a.BackupVolumes(ctx, BackupInput{Tenant: tenant, ID: "d1", Dumps: []string{"db"}})
	require.NoError(t, err)
	return BackupRef{Tenant: tenant, ID: "d1", ManifestSHA256: bk.ManifestSHA256, Dumps: []spec.Service{dbService}}
}

// A restore tool that runs longer than the heartbeat timeout must not look
// like a lost worker: the activity heartbeats while it runs, whether or
// not bytes flow.
func TestDumpRestoreHeartbeatsWhileTheToolRuns(t *testing.T) {
	for name, run := range map[string]func(a *Activities, ref BackupRef) error{
		"load": func(a *Activities, ref BackupRef) error { return a.LoadDumps(context.Background(), ref) },
		"verify": func(a *Activities, ref BackupRef) error {
			_, err := a.VerifyBackup(context.Background(), ref)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			host := &cmdHost{dirHost: newHost(t)}
			a := newActivities(t, host)
			ref := dumpedBackup(t, a, host, 1000)
			beats := make(chan struct{}, 1000)
			a.Heartbeat = func(context.Context, ...any) {
				select {
				case beats <- struct{}{}:
				default:
				}
			}
			host.restore = func(_ context.Context, stdin io.Reader) error {
				if _, err := io.Copy(io.Discard, stdin); err != nil {
					return err
				}
				for len(beats) > 0 { // only those sent while the tool runs count
					<-beats
				}
				timeout := time.After(5 * time.Second)
				for range 3 {
					select {
					case <-beats:
					case <-timeout:
						return errors.New("no heartbeat while the restore tool ran")
					}
				}
				return nil
			}
			require.NoError(t, run(a, ref))
		})
	}
}

// A retry of LoadDumps that starts while the attempt it replaces still runs
// the restore tool waits for the backup's lock, heartbeating, and fails
// retryably when the wait is over: the tool never runs twice at once.
func TestLoadDumpsExcludesAConcurrentAttempt(t *testing.T) {
	host := &cmdHost{dirHost: newHost(t)}
	a := newActivities(t, host)
	ref := dumpedBackup(t, a, host, 1000)
	a.lockWait = 500 * time.Millisecond
	type attempt struct{}
	var waits atomic.Int32
	a.Heartbeat = func(ctx context.Context, details ...any) {
		if ctx.Value(attempt{}) == 2 && strings.Contains(fmt.Sprint(details...), "waiting for another attempt") {
			waits.Add(1)
		}
	}
	started, release := make(chan struct{}), make(chan struct{})
	var restores atomic.Int32
	host.restore = func(_ context.Context, stdin io.Reader) error {
		if _, err := io.Copy(io.Discard, stdin); err != nil {
			return err
		}
		if restores.Add(1) == 1 {
			close(started)
			select {
			case <-release:
			case <-time.After(10 * time.Second):
				return errors.New("never released")
			}
		}
		return nil
	}
	first := make(chan error, 1)
	go func() { first <- a.LoadDumps(context.WithValue(context.Background(), attempt{}, 1), ref) }()
	<-started

	err := a.LoadDumps(context.WithValue(context.Background(), attempt{}, 2), ref)
	require.ErrorContains(t, err, "in use by another attempt")
	var appErr *temporal.ApplicationError
	require.False(t, errors.As(err, &appErr), "retryable: %v", err)
	require.Positive(t, waits.Load(), "the waiting attempt heartbeats")
	require.False(t, host.overlap.Load(), "two restores ran at once")
	require.EqualValues(t, 1, restores.Load())

	close(release)
	require.NoError(t, <-first)
	require.NoError(t, a.LoadDumps(context.Background(), ref), "a later retry loads")
	require.False(t, host.overlap.Load())
}

// A dump larger than the worker's memory must not be read into it: the
// memory a 64 MiB dump costs to verify and to load stays far below its
// size.
func TestLargeDumpIsStreamed(t *testing.T) {
	const size = 64 << 20
	host := &cmdHost{dirHost: newHost(t)}
	a := newActivities(t, host)
	ref := dumpedBackup(t, a, host, size)
	var fed atomic.Int64
	host.restore = func(_ context.Context, stdin io.Reader) error {
		n, err := io.Copy(io.Discard, stdin)
		fed.Store(n)
		return err
	}
	for name, run := range map[string]func() error{
		"load":   func() error { return a.LoadDumps(context.Background(), ref) },
		"verify": func() error { _, err := a.VerifyBackup(context.Background(), ref); return err },
	} {
		fed.Store(0) // each run must feed the whole dump itself
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		require.NoError(t, run(), name)
		runtime.ReadMemStats(&after)
		require.EqualValues(t, size, fed.Load(), name)
		alloc := after.TotalAlloc - before.TotalAlloc
		t.Logf("%s: %d KiB allocated for a %d MiB dump", name, alloc>>10, size>>20)
		require.Less(t, alloc, uint64(size/8), "%s: %d bytes allocated for a %d byte dump", name, alloc, size)
	}
}

// A dump whose file changes after its check is not fed whole to the
// restore tool: the tripwire withholds its end and fails.
func TestTripwireWithholdsAChangedEnd(t *testing.T) {
	data := []byte("the dump as it was checked")
	changed := bytes.Clone(data)
	changed[len(changed)-1] ^= 1
	var got bytes.Buffer
	tw := newTripwire(bytes.NewReader(changed), int64(len(data)), sha256Hex(data), "dump of db", &progress{})
	_, err := io.Copy(&got, iotest.OneByteReader(tw))
	harness.RequireNonRetryable(t, err, ErrVerificationFailed)
	require.Less(t, got.Len(), len(data), "the end is withheld")

	got.Reset()
	tw = newTripwire(bytes.NewReader(append(bytes.Clone(data), "more"...)), int64(len(data)), sha256Hex(data), "dump of db", &progress{})
	_, err = io.Copy(&got, tw)
	require.NoError(t, err, "bytes past the manifest's size are never read")
	require.Equal(t, data, got.Bytes())
}
