package restic_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// A restore puts the backup's files and database back in the live
// tenant, replacing what changed since; a backup that does not read back
// is refused before the live volume is touched.
func TestRestoreIntoTheLiveTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "", nil)
	ctx := ctxFor(t)
	const tenant = "acme"
	data := e.host.volume(tenant, "data")
	bigSum := writeRandom(t, filepath.Join(data, "big.bin"), 8<<20, 1)
	writeFile(t, filepath.Join(data, "conf", "app.yaml"), "answer: 42\n")
	dbFile := filepath.Join(e.host.service(tenant, "db"), "db.data")
	writeFile(t, dbFile, "rows: 1, 2, 3\n")
	db := dbService("db")
	if _, err := e.a.TakeBackup(ctx, restic.BackupInput{Tenant: tenant, ID: "b1", Volumes: []string{"data"}, Dumps: []spec.Service{db}}); err != nil {
		t.Fatal(err)
	}

	// Life goes on: files change, appear and go; the database changes.
	writeRandom(t, filepath.Join(data, "big.bin"), 8<<20, 2)
	writeFile(t, filepath.Join(data, "new.txt"), "written after the backup\n")
	if err := os.RemoveAll(filepath.Join(data, "conf")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dbFile, "rows: 1, 2, 3, 4, 5\n")

	got, err := e.a.RestoreBackup(ctx, restic.RestoreInput{Tenant: tenant, ID: "b1", Dumps: []spec.Service{db}})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "b1" || got.Files != 3 {
		t.Fatalf("restored: %+v", got)
	}
	if sum := fileSum(t, filepath.Join(data, "big.bin")); sum != bigSum {
		t.Errorf("big.bin is %s after the restore, want the backup's %s", sum, bigSum)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "conf", "app.yaml")); string(b) != "answer: 42\n" {
		t.Errorf("conf/app.yaml after the restore: %q", b)
	}
	if _, err := os.Stat(filepath.Join(data, "new.txt")); !os.IsNotExist(err) {
		t.Errorf("a file written after the backup survives its restore: %v", err)
	}
	if b, _ := os.ReadFile(dbFile); string(b) != "rows: 1, 2, 3\n" {
		t.Errorf("the database after the restore: %q", b)
	}
	if left := e.host.leftScratches(); len(left) > 0 {
		t.Errorf("scratch volumes left behind: %v", left)
	}

	// An unknown backup is refused, and so is one whose data does not
	// read back; the live volume keeps what it has.
	_, err = e.a.RestoreBackup(ctx, restic.RestoreInput{Tenant: tenant, ID: "b9", Dumps: []spec.Service{db}})
	harness.RequireNonRetryable(t, err, restic.ErrBackupNotFound)
	writeFile(t, filepath.Join(data, "new.txt"), "after the restore\n")
	corruptLargestPack(t, filepath.Join(e.cfg.Repos, tenant, "data"))
	_, err = e.a.RestoreBackup(ctx, restic.RestoreInput{Tenant: tenant, ID: "b1", Dumps: []spec.Service{db}})
	harness.RequireNonRetryable(t, err, restic.ErrRestoreFailed)
	if b, _ := os.ReadFile(filepath.Join(data, "new.txt")); string(b) != "after the restore\n" {
		t.Errorf("a refused restore touched the live volume: new.txt is %q", b)
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// An empty volume (a new tenant's, often) is backed up as empty: restic
// takes no snapshot of nothing. The backup drills, copies, and restores
// the volume empty again.
func TestAnEmptyVolumeIsBackedUpAndRestoredEmpty(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "", nil)
	ctx := ctxFor(t)
	const tenant = "acme"
	data := e.host.volume(tenant, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	dbFile := filepath.Join(e.host.service(tenant, "db"), "db.data")
	writeFile(t, dbFile, "rows: 1\n")
	db := dbService("db")
	b, err := e.a.TakeBackup(ctx, restic.BackupInput{Tenant: tenant, ID: "b1", Volumes: []string{"data"}, Dumps: []spec.Service{db}})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Parts) != 2 || b.Parts[1].Kind != restic.PartVolume || b.Parts[1].Snapshot != "" || b.Parts[1].Files != 0 {
		t.Fatalf("parts: %+v", b.Parts)
	}
	if _, err := e.a.DrillBackup(ctx, restic.DrillInput{Tenant: tenant, ID: "b1", Dumps: []spec.Service{db}}); err != nil {
		t.Fatalf("drill of a backup with an empty volume: %v", err)
	}

	writeFile(t, filepath.Join(data, "new.txt"), "written after the backup\n")
	writeFile(t, dbFile, "rows: 1, 2\n")
	if _, err := e.a.RestoreBackup(ctx, restic.RestoreInput{Tenant: tenant, ID: "b1", Dumps: []spec.Service{db}}); err != nil {
		t.Fatal(err)
	}
	if entries, err := os.ReadDir(data); err != nil || len(entries) != 0 {
		t.Errorf("the volume after restoring its empty backup: %v %v", entries, err)
	}
	if got, _ := os.ReadFile(dbFile); string(got) != "rows: 1\n" {
		t.Errorf("the database after the restore: %q", got)
	}
	// Once it has content, the next backup takes a snapshot of it.
	writeFile(t, filepath.Join(data, "a.txt"), "a\n")
	b2, err := e.a.TakeBackup(ctx, restic.BackupInput{Tenant: tenant, ID: "b2", Volumes: []string{"data"}, Dumps: []spec.Service{db}})
	if err != nil {
		t.Fatal(err)
	}
	if b2.Parts[1].Snapshot == "" || b2.Parts[1].Files != 1 {
		t.Fatalf("parts: %+v", b2.Parts)
	}
}
