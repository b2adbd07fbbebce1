package restic_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// The off-site copy is pruned as the local repository is, by the pruner
// alone, through a server of its own over the same storage: the backups
// local retention forgets are forgotten off-site too (their data goes),
// pinned ones stay, and so does what the workers copy next. The workers'
// append-only credential cannot forget; a retry changes nothing; a tenant
// without an off-site repository gives nothing to prune, an erased one
// ErrKeyGone; and neither password shows in an error or a log line.
func TestPruneOffsite(t *testing.T) {
	t.Parallel()
	workerPassword := "worker@/%+ " + harness.RandomHex(t, 8)
	prunePassword := "prune@/%+ " + harness.RandomHex(t, 8)
	wsrv, psrv := startRclonePair(t, "worker1", workerPassword, prunePassword)
	e := newEnv(t, "", func(c *restic.Config) {
		c.OffsiteURL, c.OffsiteUser, c.OffsitePassword = wsrv.url, wsrv.user, wsrv.password
		c.OffsitePruner = restic.DefaultPruneQueue
	})
	pr := newPrunerEnv(t, e.cfg.Keys, psrv)
	ctx := ctxFor(t)
	const tenant = "initech"
	var errs []error
	note := func(err error) error {
		if err != nil {
			errs = append(errs, err)
		}
		return err
	}

	// b1..b4, each with 2 MB of its own, copied off-site.
	data := e.host.volume(tenant, "data")
	for i, id := range []string{"b1", "b2", "b3", "b4"} {
		writeRandom(t, filepath.Join(data, "blob.bin"), 2<<20, uint64(40+i))
		if _, err := e.a.TakeBackup(ctx, restic.BackupInput{Tenant: tenant, ID: id, Volumes: []string{"data"}}); note(err) != nil {
			t.Fatal(err)
		}
		c, err := e.a.CopyOffsite(ctx, restic.Ref{Tenant: tenant, ID: id})
		if note(err) != nil {
			t.Fatal(err)
		}
		if c.Copied != 2 || c.Prune != restic.DefaultPruneQueue {
			t.Fatalf("copy of %s: %+v, want 2 snapshots and the pruner's queue", id, c)
		}
	}
	// b5 fails after its first part, which a copy interrupted before the
	// manifest brought off-site.
	writeRandom(t, filepath.Join(e.host.service(tenant, "db"), "db.data"), 1<<20, 50)
	writeFile(t, filepath.Join(e.host.service(tenant, "cache"), "db.data"), "cache\n")
	broken := dbService("cache")
	broken.Backup.Dump = []string{"sh", "-c", "exit 3"}
	_, err := e.a.TakeBackup(ctx, restic.BackupInput{Tenant: tenant, ID: "b5", Volumes: []string{"data"}, Dumps: []spec.Service{dbService("db"), broken}})
	harness.RequireNonRetryable(t, note(err), "ServiceCommandFailed")
	local, key := filepath.Join(e.cfg.Repos, tenant), filepath.Join(e.cfg.Keys, tenant+".key")
	keyBytes, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	name := restic.OffsiteName(tenant, keyBytes)
	viaWorker, viaPruner := "rest:"+userURL(wsrv)+name+"/", "rest:"+userURL(psrv)+name+"/"
	if out, err := resticCLI(t, viaWorker, key, "copy", "--from-repo", local, "--from-password-file", key, "--tag", "backup:b5"); err != nil {
		t.Fatalf("copy of b5's part: %v\n%s", err, out)
	}
	want := map[string]int{"b1": 2, "b2": 2, "b3": 2, "b4": 2, "b5": 1}
	if got := backupsIn(t, viaPruner, key); !maps.Equal(got, want) {
		t.Fatalf("off-site before the prune: %v, want %v", got, want)
	}

	// The workers' credential cannot forget (restic retries the refused
	// deletions for most of a minute: meanwhile, the local retention).
	refused := make(chan string, 1)
	go func() {
		out, err := resticCLI(t, viaWorker, key, append([]string{"forget"}, snapshotIDsOf(t, viaWorker, key, "backup:b2")...)...)
		if err == nil {
			out = "no error: " + out
		}
		refused <- out
	}()
	in := restic.RetentionInput{Tenant: tenant, Keep: spec.Keep{Last: 2}, Pinned: []string{"b1"}, Now: time.Now().Add(2 * time.Hour)}
	lr, err := e.a.ApplyRetention(ctx, in)
	if note(err) != nil {
		t.Fatal(err)
	}
	if !slices.Equal(lr.Kept, []string{"b1", "b3", "b4"}) || !slices.Equal(lr.Forgotten, []string{"b2"}) {
		t.Fatalf("local retention kept %v and forgot %v", lr.Kept, lr.Forgotten)
	}

	// Meanwhile: nor can a pruner given the workers' server: it says so at once.
	misplaced := newPrunerEnv(t, e.cfg.Keys, wsrv)
	_, err = misplaced.p.PruneOffsite(ctx, in)
	appErr := harness.RequireNonRetryable(t, note(err), restic.ErrNotConfigured)
	if !strings.Contains(appErr.Message(), restic.EnvOffsitePruneURL) || !strings.Contains(appErr.Message(), "append-only") {
		t.Fatalf("a pruner on the append-only server: %v", err)
	}

	// A pruner with a wrong password is refused.
	wrongPassword := "wrong@/%+ " + harness.RandomHex(t, 8)
	wrong := newPrunerEnv(t, e.cfg.Keys, rcloneServer{url: psrv.url, user: psrv.user, password: wrongPassword})
	_, err = wrong.p.PruneOffsite(ctx, in)
	appErr = harness.RequireNonRetryable(t, note(err), restic.ErrNotConfigured)
	if !strings.Contains(appErr.Message(), restic.EnvOffsitePrunePassword) {
		t.Fatalf("a pruner with a wrong password: %v", err)
	}

	// Nothing to prune: a tenant never heard of, and one whose backups
	// were never copied.
	writeFile(t, filepath.Join(e.host.volume("hooli", "data"), "a.txt"), "a\n")
	if _, err := e.a.TakeBackup(ctx, restic.BackupInput{Tenant: "hooli", ID: "b1", Volumes: []string{"data"}}); note(err) != nil {
		t.Fatal(err)
	}
	for _, who := range []string{"nobody", "hooli"} {
		r, err := pr.p.PruneOffsite(ctx, restic.RetentionInput{Tenant: who, Keep: spec.Keep{Last: 1}})
		if note(err) != nil || r.Kept == nil || len(r.Kept)+len(r.Forgotten) != 0 {
			t.Fatalf("off-site retention of %s: %+v, %v; want nothing", who, r, err)
		}
	}

	if out := <-refused; !strings.Contains(out, "403 Forbidden") {
		t.Fatalf("forget through the workers' append-only server:\n%s", out)
	}
	if got := backupsIn(t, viaPruner, key); !maps.Equal(got, want) {
		t.Fatalf("off-site after a forget through the workers' server: %v, want %v", got, want)
	}

	// The pruner forgets what the local retention forgot, and the
	// interrupted copy's part; the prune gives b2's data back.
	repoDir := filepath.Join(psrv.dir, psrv.user, name)
	before := dirSize(t, repoDir)
	or, err := pr.p.PruneOffsite(ctx, in)
	if note(err) != nil {
		t.Fatal(err)
	}
	if !slices.Equal(or.Kept, lr.Kept) || !slices.Equal(or.Forgotten, lr.Forgotten) || or.RepositoryBytes != 0 {
		t.Fatalf("off-site retention: %+v, want what the local one kept and forgot: %+v", or, lr)
	}
	want = map[string]int{"b1": 2, "b3": 2, "b4": 2}
	if got := backupsIn(t, viaPruner, key); !maps.Equal(got, want) {
		t.Fatalf("off-site after the prune: %v, want %v", got, want)
	}
	if after := dirSize(t, repoDir); after > before-(3<<19) {
		t.Fatalf("the prune left %d of %d bytes off-site: b2's 2 MB are still there", after, before)
	}
	if out, err := resticCLI(t, viaPruner, key, "check"); err != nil {
		t.Fatalf("restic check off-site after the prune: %v\n%s", err, out)
	}
	if !pr.heartbeat("off-site retention of " + tenant) {
		t.Errorf("no heartbeat while pruning; got %v", pr.heartbeats)
	}

	// A retry keeps all and changes nothing.
	files := filesIn(t, repoDir)
	or, err = pr.p.PruneOffsite(ctx, in)
	if note(err) != nil || !slices.Equal(or.Kept, lr.Kept) || len(or.Forgotten) != 0 {
		t.Fatalf("retried off-site retention: %+v, %v", or, err)
	}
	if again := filesIn(t, repoDir); !maps.Equal(again, files) {
		t.Fatalf("the retry changed the off-site repository:\n%v\n%v", files, again)
	}

	// The workers go on copying to what the pruner left, and their copy
	// drills.
	writeRandom(t, filepath.Join(data, "blob.bin"), 2<<20, 60)
	if _, err := e.a.TakeBackup(ctx, restic.BackupInput{Tenant: tenant, ID: "b6", Volumes: []string{"data"}}); note(err) != nil {
		t.Fatal(err)
	}
	if _, err := e.a.CopyOffsite(ctx, restic.Ref{Tenant: tenant, ID: "b6"}); note(err) != nil {
		t.Fatal(err)
	}
	if _, err := e.a.DrillBackup(ctx, restic.DrillInput{Tenant: tenant, ID: "b6", Offsite: true}); note(err) != nil {
		t.Fatalf("off-site drill after the prune: %v", err)
	}

	// Erased: the key is gone, and with it any way to read the copy.
	if err := note(e.a.EraseBackups(ctx, restic.EraseInput{Tenant: tenant})); err != nil {
		t.Fatal(err)
	}
	_, err = pr.p.PruneOffsite(ctx, in)
	harness.RequireNonRetryable(t, note(err), restic.ErrKeyGone)

	// Not configured: it says which setting.
	_, err = (&restic.Pruner{}).PruneOffsite(ctx, in)
	appErr = harness.RequireNonRetryable(t, note(err), restic.ErrNotConfigured)
	if !strings.Contains(appErr.Message(), restic.EnvOffsitePruneURL) {
		t.Fatalf("unconfigured pruner: %v", err)
	}

	logs := e.logs.String() + pr.logs.String() + misplaced.logs.String() + wrong.logs.String()
	for _, pw := range []string{workerPassword, prunePassword, wrongPassword} {
		for _, secret := range []string{pw, url.QueryEscape(pw), url.PathEscape(pw), strings.TrimPrefix(url.UserPassword("x", pw).String(), "x:")} {
			for _, err := range errs {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("an error holds an off-site password: %v", err)
				}
			}
			if strings.Contains(logs, secret) {
				t.Errorf("the log holds the off-site password %q", secret)
			}
		}
	}
	if len(errs) < 5 {
		t.Fatalf("only %d errors checked for the passwords", len(errs))
	}
	if !strings.Contains(pr.logs.String(), `"restic ran"`) {
		t.Fatal("the pruner's log does not show its restic runs: the check for the password saw nothing")
	}
}

// prunerEnv is an off-site pruner with its log and heartbeats.
type prunerEnv struct {
	p    *restic.Pruner
	logs *harness.SyncBuffer

	mu         sync.Mutex
	heartbeats []string
}

func newPrunerEnv(t *testing.T, keys string, srv rcloneServer) *prunerEnv {
	t.Helper()
	pe := &prunerEnv{logs: &harness.SyncBuffer{}}
	log := slog.New(slog.NewJSONHandler(pe.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := restic.PruneConfig{Keys: keys, Binary: "restic", URL: srv.url, User: srv.user, Password: srv.password}
	p, err := restic.NewPruner(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	p.Heartbeat = func(_ context.Context, details ...any) {
		pe.mu.Lock()
		defer pe.mu.Unlock()
		pe.heartbeats = append(pe.heartbeats, fmt.Sprint(details...))
	}
	pe.p = p
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("RESTIC_TEST_VERBOSE") != "" {
			t.Logf("pruner's log:\n%s", pe.logs.String())
		}
	})
	return pe
}

// heartbeat reports whether a heartbeat began with label.
func (pe *prunerEnv) heartbeat(label string) bool {
	pe.mu.Lock()
	defer pe.mu.Unlock()
	return slices.ContainsFunc(pe.heartbeats, func(h string) bool { return strings.HasPrefix(h, label) })
}

// backupsIn counts the snapshots of each backup in the repository.
func backupsIn(t *testing.T, repo, key string) map[string]int {
	t.Helper()
	out, err := resticCLI(t, repo, key, "snapshots", "--json")
	if err != nil {
		t.Fatalf("restic snapshots: %v: %s", err, out)
	}
	var snaps []struct {
		Tags []string `json:"tags"`
	}
	if err := json.Unmarshal([]byte(out), &snaps); err != nil {
		t.Fatalf("restic snapshots: %v: %s", err, out)
	}
	count := map[string]int{}
	for _, s := range snaps {
		for _, tag := range s.Tags {
			if id, ok := strings.CutPrefix(tag, "backup:"); ok {
				count[id]++
			}
		}
	}
	return count
}

// snapshotIDsOf lists the ids of the repository's snapshots with tag.
func snapshotIDsOf(t *testing.T, repo, key, tag string) []string {
	t.Helper()
	out, err := resticCLI(t, repo, key, "snapshots", "--json", "--tag", tag)
	if err != nil {
		t.Errorf("restic snapshots: %v: %s", err, out)
		return nil
	}
	var snaps []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &snaps); err != nil {
		t.Errorf("restic snapshots: %v: %s", err, out)
	}
	var ids []string
	for _, s := range snaps {
		ids = append(ids, s.ID)
	}
	return ids
}

// filesIn maps the files under dir to their sizes.
func filesIn(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[strings.TrimPrefix(path, dir)] = fi.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// The pruner's settings are all required, each named when bad, and its
// password never shows.
func TestPruneConfig(t *testing.T) {
	err := restic.PruneConfig{}.Validate()
	if err == nil {
		t.Fatal("an empty pruner config is valid")
	}
	for _, env := range []string{restic.EnvKeys, restic.EnvBinary, restic.EnvOffsitePruneURL, restic.EnvOffsiteUser, restic.EnvOffsitePrunePassword} {
		if !strings.Contains(err.Error(), env) {
			t.Errorf("the error does not name %s: %v", env, err)
		}
	}
	bad := restic.PruneConfig{Keys: "keys", Binary: "restic", URL: "http://u:secret-pw@backup:8000/", User: "u", Password: "secret-pw"}
	err = bad.Validate()
	for _, env := range []string{restic.EnvKeys, restic.EnvOffsitePruneURL} {
		if err == nil || !strings.Contains(err.Error(), env) {
			t.Errorf("the error does not name %s: %v", env, err)
		}
	}
	if _, err := restic.NewPruner(bad, nil); err == nil {
		t.Error("NewPruner took a bad config")
	}
	good := restic.PruneConfig{Keys: filepath.Join(t.TempDir(), "none"), Binary: "restic", URL: "http://backup:8000/", User: "u", Password: "secret-pw"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(good); strings.Contains(s, "secret-pw") || !strings.Contains(s, "Password:(set)") {
		t.Errorf("String: %s", s)
	}
	if _, err := restic.NewPruner(good, nil); err == nil || !strings.Contains(err.Error(), restic.EnvKeys) {
		t.Errorf("NewPruner without the keys directory: %v", err)
	}

	// The workers' pruner queue goes with off-site copies.
	w := restic.Config{Repos: "/srv/repos", Keys: "/srv/keys", Binary: "restic", OffsitePruner: restic.DefaultPruneQueue}
	if err := w.Validate(); err == nil || !strings.Contains(err.Error(), restic.EnvOffsitePruner) {
		t.Errorf("a pruner queue without off-site copies: %v", err)
	}
	w.OffsiteURL, w.OffsiteUser, w.OffsitePassword = "http://backup:8000/", "u", "pw"
	if err := w.Validate(); err != nil {
		t.Error(err)
	}
}
