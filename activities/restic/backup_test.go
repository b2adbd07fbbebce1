package restic_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// One tenant's life in one repository: a backup, its retry, a backup of
// unchanged data, a failed attempt and its retry, the list, and a prune.
func TestBackupsOfOneTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "", nil)
	ctx := ctxFor(t)
	const tenant = "acme"
	data := e.host.volume(tenant, "data")
	writeRandom(t, filepath.Join(data, "big.bin"), 20<<20, 1)
	writeFile(t, filepath.Join(data, "conf", "app.yaml"), "answer: 42\n")
	dbSum := writeRandom(t, filepath.Join(e.host.service(tenant, "db"), "db.data"), 1<<20, 2)
	in := restic.BackupInput{Tenant: tenant, ID: "b1", Volumes: []string{"data"}, Dumps: []spec.Service{dbService("db")}, Reason: "scheduled"}

	b1, err := e.a.TakeBackup(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(b1.Parts) != 2 || len(b1.Manifest) != 64 || b1.RepositoryBytes < 20<<20 {
		t.Fatalf("backup: %+v", b1)
	}
	db, vol := b1.Parts[0], b1.Parts[1]
	if db.Kind != restic.PartDump || db.Name != "db" || db.SHA256 != dbSum || db.Bytes != 1<<20 || len(db.Snapshot) != 64 {
		t.Errorf("dump part: %+v, want the sha256 %s of 1 MB", db, dbSum)
	}
	if vol.Kind != restic.PartVolume || vol.Name != "data" || vol.Files != 2 || vol.Bytes != 20<<20+11 || vol.Added < 20<<20 {
		t.Errorf("volume part: %+v", vol)
	}

	// A retry of a backup that completed returns it as it is.
	again, err := e.a.TakeBackup(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if again.Manifest != b1.Manifest || !slices.Equal(again.Parts, b1.Parts) || !again.CreatedAt.Equal(b1.CreatedAt) {
		t.Fatalf("retry of a complete backup: %+v, want %+v", again, b1)
	}
	// Under another id with other parts, it is refused.
	other := in
	other.Volumes = nil
	_, err = e.a.TakeBackup(ctx, other)
	harness.RequireNonRetryable(t, err, restic.ErrInvalidInput)

	// Unchanged data adds almost nothing.
	in.ID = "b2"
	b2, err := e.a.TakeBackup(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if b2.Bytes != b1.Bytes || b2.Added > b2.Bytes/100 {
		t.Fatalf("backup of unchanged data added %d of %d bytes", b2.Added, b2.Bytes)
	}

	// An attempt whose second dump fails: restic records no snapshot of
	// the failed dump, the first dump's snapshot is left without a
	// manifest, and the host's error passes on unchanged.
	writeRandom(t, filepath.Join(data, "big.bin"), 20<<20, 3) // new data for the prune below
	writeRandom(t, filepath.Join(e.host.service(tenant, "cache"), "db.data"), 4<<20, 4)
	broken := dbService("cache")
	broken.Backup.Dump = []string{"sh", "-c", "head -c 3000000 db.data; exit 3"}
	in.ID, in.Dumps = "b3", []spec.Service{dbService("db"), broken}
	_, err = e.a.TakeBackup(ctx, in)
	harness.RequireNonRetryable(t, err, "ServiceCommandFailed")
	repo, key := filepath.Join(e.cfg.Repos, tenant), filepath.Join(e.cfg.Keys, tenant+".key")
	if tags := snapshotTags(t, repo, key, "backup:b3"); len(tags) != 1 || !slices.Contains(tags[0], "dump:db") {
		t.Fatalf("after a failed dump, the snapshots of b3 are tagged %v, want only the dump of db", tags)
	}
	// The retry forgets the leftover and takes the whole backup.
	in.Dumps[1] = dbService("cache")
	b3, err := e.a.TakeBackup(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(b3.Parts) != 3 || b3.Parts[1].Name != "cache" || b3.Parts[1].Bytes != 4<<20 {
		t.Fatalf("retried backup: %+v", b3)
	}
	if tags := snapshotTags(t, repo, key, "backup:b3"); len(tags) != 4 {
		t.Fatalf("after the retry, b3 has the snapshots %v, want 3 parts and a manifest", tags)
	}

	list, err := e.a.ListBackups(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if ids := backupIDs(list); !slices.Equal(ids, []string{"b1", "b2", "b3"}) {
		t.Fatalf("ListBackups: %v", ids)
	}
	if list[0].Manifest != b1.Manifest || !slices.Equal(list[2].Parts, b3.Parts) || list[2].Reason != "scheduled" {
		t.Fatalf("ListBackups[0] = %+v, want %+v", list[0], b1)
	}

	// A failed attempt older than an hour is forgotten with the backups
	// the policy does not keep, and the prune gives their data back.
	in.ID, in.Dumps = "b4", []spec.Service{broken}
	_, err = e.a.TakeBackup(ctx, in)
	harness.RequireNonRetryable(t, err, "ServiceCommandFailed")
	if tags := snapshotTags(t, repo, key, "backup:b4"); len(tags) != 0 {
		t.Fatalf("the failed dump left the snapshots %v", tags)
	}
	in.Dumps = []spec.Service{dbService("db"), broken}
	_, err = e.a.TakeBackup(ctx, in)
	harness.RequireNonRetryable(t, err, "ServiceCommandFailed")
	before := dirSize(t, repo)
	r, err := e.a.ApplyRetention(ctx, restic.RetentionInput{Tenant: tenant, Keep: spec.Keep{Last: 1}, Now: time.Now().Add(2 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Kept, []string{"b3"}) || !slices.Equal(r.Forgotten, []string{"b1", "b2"}) {
		t.Fatalf("retention kept %v and forgot %v", r.Kept, r.Forgotten)
	}
	if after := dirSize(t, repo); after > before-15<<20 || r.RepositoryBytes > after || r.RepositoryBytes < 20<<20 {
		t.Fatalf("the prune left %d bytes of %d on disk (the forgotten backups' 20 MB are still there?); restic stats says %d", after, before, r.RepositoryBytes)
	}
	if tags := snapshotTags(t, repo, key, "backup:b4"); len(tags) != 0 {
		t.Fatalf("the parts of the failed attempt b4 were not forgotten: %v", tags)
	}
	list, err = e.a.ListBackups(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if ids := backupIDs(list); !slices.Equal(ids, []string{"b3"}) {
		t.Fatalf("ListBackups after the prune: %v", ids)
	}
	if out, err := resticCLI(t, repo, key, "check"); err != nil {
		t.Fatalf("restic check after the prune: %v\n%s", err, out)
	}
}

func backupIDs(list []restic.Backup) []string {
	var ids []string
	for _, b := range list {
		ids = append(ids, b.ID)
	}
	return ids
}

// Inputs that can never work fail for good, before anything is done.
func TestInvalidInputs(t *testing.T) {
	root := t.TempDir()
	a, err := restic.New(restic.Config{Repos: filepath.Join(root, "repos"), Keys: filepath.Join(root, "keys"), Binary: "restic"}, newDirHost(t, root), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, in := range map[string]restic.BackupInput{
		"tenant":          {Tenant: "Acme", ID: "b1"},
		"id":              {Tenant: "acme", ID: "b/1"},
		"long id":         {Tenant: "acme", ID: strings.Repeat("a", 129)},
		"volume":          {Tenant: "acme", ID: "b1", Volumes: []string{"../etc"}},
		"volume twice":    {Tenant: "acme", ID: "b1", Volumes: []string{"data", "data"}},
		"dump without it": {Tenant: "acme", ID: "b1", Dumps: []spec.Service{{Name: "db"}}},
	} {
		_, err := a.TakeBackup(ctx, in)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		harness.RequireNonRetryable(t, err, restic.ErrInvalidInput)
	}
	_, err = a.ApplyRetention(ctx, restic.RetentionInput{Tenant: "acme", TimeZone: "Mars/Olympus"})
	harness.RequireNonRetryable(t, err, restic.ErrInvalidInput)
	_, err = a.DrillBackup(ctx, restic.DrillInput{Tenant: "acme", ID: "b1", Dumps: []spec.Service{{Name: "db", Backup: &spec.ServiceBackup{Dump: []string{"cat"}}}}})
	harness.RequireNonRetryable(t, err, restic.ErrInvalidInput)

	// Nothing configured: every activity says so.
	off, err := restic.New(restic.Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = off.TakeBackup(ctx, restic.BackupInput{Tenant: "acme", ID: "b1"})
	harness.RequireNonRetryable(t, err, restic.ErrNotConfigured)
	_, err = a.CopyOffsite(ctx, restic.Ref{Tenant: "acme", ID: "b1"})
	harness.RequireNonRetryable(t, err, restic.ErrNotConfigured)
	_, err = a.DrillBackup(ctx, restic.DrillInput{Tenant: "acme", ID: "b1", Offsite: true})
	harness.RequireNonRetryable(t, err, restic.ErrNotConfigured)
	if err := (restic.Check{}).Check(ctx); err != nil {
		t.Fatalf("check of a worker without backups: %v", err)
	}

	// A repository whose key is gone is unreadable for ever.
	if err := os.MkdirAll(filepath.Join(root, "repos", "gone"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, err = a.TakeBackup(ctx, restic.BackupInput{Tenant: "gone", ID: "b1"})
	harness.RequireNonRetryable(t, err, restic.ErrKeyGone)
	_, err = a.ListBackups(ctx, "gone")
	harness.RequireNonRetryable(t, err, restic.ErrKeyGone)
	// A tenant without a repository has no backups.
	list, err := a.ListBackups(ctx, "newcomer")
	if err != nil || len(list) != 0 {
		t.Fatalf("ListBackups of a tenant without a repository: %v, %v", list, err)
	}
}

// An activity waits for another that holds the tenant's repository,
// heartbeating, until its context ends.
func TestWaitsForTheTenantsLock(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	keys := filepath.Join(root, "keys")
	a, err := restic.New(restic.Config{Repos: filepath.Join(root, "repos"), Keys: keys, Binary: "restic"}, newDirHost(t, root), nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(keys, "acme.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := flock(f); err != nil {
		t.Fatal(err)
	}
	beats := make(chan string, 100)
	a.Heartbeat = func(_ context.Context, details ...any) {
		select {
		case beats <- details[0].(string):
		default:
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err = a.TakeBackup(ctx, restic.BackupInput{Tenant: "acme", ID: "b1"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the context's end, got %v", err)
	}
	select {
	case b := <-beats:
		if !strings.Contains(b, "waiting for another activity") {
			t.Fatalf("heartbeat %q does not say it waits", b)
		}
	default:
		t.Fatal("no heartbeat while waiting")
	}
	if _, err := os.Stat(filepath.Join(root, "repos", "acme")); !os.IsNotExist(err) {
		t.Fatalf("the repository was touched while another activity held it: %v", err)
	}
}

// The quiesce hook holds the service while its volumes are read: pause
// before the first volume, resume after the last, also when a volume
// fails.
func TestQuiesceHoldsTheServiceWhileVolumesAreRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "", nil)
	ctx := ctxFor(t)
	const tenant = "acme"
	data := e.host.volume(tenant, "data")
	writeFile(t, filepath.Join(data, "a.txt"), "a\n")
	app := e.host.service(tenant, "app")
	writeFile(t, filepath.Join(app, "state"), "serving\n")
	// The pause records what the volume held when it began; the volume
	// backup must see the marker the pause wrote into it.
	q := &restic.Quiesce{Service: spec.Service{Name: "app"},
		Pause:  []string{"sh", "-c", "echo paused > state && echo held > " + filepath.Join(data, "held.txt")},
		Resume: []string{"sh", "-c", "echo serving > state"}}
	b, err := e.a.TakeBackup(ctx, restic.BackupInput{Tenant: tenant, ID: "q1", Volumes: []string{"data"}, Quiesce: q})
	if err != nil {
		t.Fatal(err)
	}
	if b.Parts[0].Files != 2 {
		t.Errorf("the volume was read before the pause: %+v", b.Parts[0])
	}
	if s, _ := os.ReadFile(filepath.Join(app, "state")); string(s) != "serving\n" {
		t.Errorf("the service was not resumed: %q", s)
	}

	// A volume that cannot be backed up still resumes the service.
	writeFile(t, filepath.Join(app, "state"), "serving\n")
	_, err = e.a.TakeBackup(ctx, restic.BackupInput{Tenant: tenant, ID: "q2", Volumes: []string{"data", "missing"}, Quiesce: q})
	if err == nil {
		t.Fatal("a backup of a missing volume succeeded")
	}
	if s, _ := os.ReadFile(filepath.Join(app, "state")); string(s) != "serving\n" {
		t.Errorf("a failed backup left the service paused: %q", s)
	}
}
