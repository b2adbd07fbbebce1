package restic_test

import (
	"bytes"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// A backup copied to an append-only off-site server is drilled from
// there, by this worker and by one that has only the keys; a corrupted
// local repository fails its drill; erasure leaves nothing that reads
// any copy; and the off-site password shows in no error and no log line.
func TestOffsiteDrillCorruptionAndErasure(t *testing.T) {
	t.Parallel()
	password := "pw@/%+ " + harness.RandomHex(t, 8)
	srv := startRclone(t, "worker1", password)
	offsite := func(c *restic.Config) {
		c.OffsiteURL, c.OffsiteUser, c.OffsitePassword = srv.url, srv.user, srv.password
	}
	e := newEnv(t, "", offsite)
	ctx := ctxFor(t)
	const tenant = "globex"
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	check := func(err error) error { note(err); return err }
	if err := check((restic.Check{Config: e.cfg}).Check(ctx)); err != nil {
		t.Fatal(err)
	}

	data := e.host.volume(tenant, "data")
	writeRandom(t, filepath.Join(data, "blob.bin"), 3<<20, 5)
	writeFile(t, filepath.Join(data, "notes", "a.txt"), "hello\n")
	if err := os.Symlink("notes/a.txt", filepath.Join(data, "link")); err != nil {
		t.Fatal(err)
	}
	writeRandom(t, filepath.Join(e.host.service(tenant, "db"), "db.data"), 2<<20, 6)
	dumps := []spec.Service{dbService("db")}
	b, err := e.a.TakeBackup(ctx, restic.BackupInput{Tenant: tenant, ID: "b1", Volumes: []string{"data"}, Dumps: dumps})
	if check(err) != nil {
		t.Fatal(err)
	}

	c, err := e.a.CopyOffsite(ctx, restic.Ref{Tenant: tenant, ID: "b1"})
	if check(err) != nil {
		t.Fatal(err)
	}
	if c.Copied != 3 || c.CopiedAt.IsZero() {
		t.Fatalf("first copy: %+v, want the 2 parts and the manifest", c)
	}
	c, err = e.a.CopyOffsite(ctx, restic.Ref{Tenant: tenant, ID: "b1"})
	if check(err) != nil || c.Copied != 0 {
		t.Fatalf("second copy: %+v, %v; want nothing copied again", c, err)
	}
	_, err = e.a.CopyOffsite(ctx, restic.Ref{Tenant: tenant, ID: "nope"})
	note(err)
	harness.RequireNonRetryable(t, err, restic.ErrBackupNotFound)

	d, err := e.a.DrillBackup(ctx, restic.DrillInput{Tenant: tenant, ID: "b1", Offsite: true, Dumps: dumps})
	if check(err) != nil {
		t.Fatal(err)
	}
	if d.Files != b.Parts[0].Files+b.Parts[1].Files || d.Bytes != b.Bytes || !d.Offsite {
		t.Fatalf("off-site drill: %+v, backup: %+v", d, b)
	}
	if left := e.host.leftScratches(); len(left) != 0 {
		t.Fatalf("the drill left %v", left)
	}

	// Another worker with only a copy of the keys drills the off-site copy.
	other := t.TempDir()
	copyDir(t, e.cfg.Keys, filepath.Join(other, "keys"))
	e2 := newEnv(t, other, offsite)
	if _, err := e2.a.DrillBackup(ctx, restic.DrillInput{Tenant: tenant, ID: "b1", Offsite: true, Dumps: dumps}); check(err) != nil {
		t.Fatalf("off-site drill from another worker: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e2.cfg.Repos, tenant)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the other worker made a local repository: %v", err)
	}

	// A data pack of the local repository rots: its drill fails.
	corruptLargestPack(t, filepath.Join(e.cfg.Repos, tenant, "data"))
	_, err = e.a.DrillBackup(ctx, restic.DrillInput{Tenant: tenant, ID: "b1", Dumps: dumps})
	note(err)
	appErr := harness.RequireNonRetryable(t, err, restic.ErrDrillFailed)
	if !strings.Contains(appErr.Message(), "volume data") && !strings.Contains(appErr.Message(), "dump of db") {
		t.Fatalf("the failed drill does not name the part: %v", err)
	}
	if left := e.host.leftScratches(); len(left) != 0 {
		t.Fatalf("the failed drill left %v", left)
	}

	// Erasure: the key goes, and with it every copy.
	key, err := os.ReadFile(filepath.Join(e.cfg.Keys, tenant+".key"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*restic.Activities{e.a, e2.a} {
		if err := check(a.EraseBackups(ctx, restic.EraseInput{Tenant: tenant})); err != nil {
			t.Fatal(err)
		}
	}
	if err := check(e.a.EraseBackups(ctx, restic.EraseInput{Tenant: tenant})); err != nil {
		t.Fatalf("a second erasure: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.Repos, tenant)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the local repository is still there: %v", err)
	}
	if list, err := e.a.ListBackups(ctx, tenant); check(err) != nil || len(list) != 0 {
		t.Fatalf("ListBackups after erasure: %v, %v", list, err)
	}
	_, err = e.a.DrillBackup(ctx, restic.DrillInput{Tenant: tenant, ID: "b1", Offsite: true, Dumps: dumps})
	note(err)
	harness.RequireNonRetryable(t, err, restic.ErrKeyGone)
	if where := filesHolding(t, []string{e.root, other}, key); len(where) != 0 {
		t.Fatalf("the erased key is still in %v", where)
	}
	// The off-site data is still there (only the key made it readable)...
	offRepo := "rest:" + userURL(srv) + restic.OffsiteName(tenant, key) + "/"
	oldKey := filepath.Join(t.TempDir(), "old.key")
	writeFile(t, oldKey, string(key))
	if out, err := resticCLI(t, offRepo, oldKey, "snapshots"); err != nil {
		t.Fatalf("the off-site repository does not open with the erased key: %v\n%s", err, out)
	}
	// ...and a new tenant of the same name, with a new key, gets an
	// off-site repository of its own beside it.
	if _, err := e.a.TakeBackup(ctx, restic.BackupInput{Tenant: tenant, ID: "b1", Volumes: []string{"data"}}); check(err) != nil {
		t.Fatal(err)
	}
	if _, err := e.a.CopyOffsite(ctx, restic.Ref{Tenant: tenant, ID: "b1"}); check(err) != nil {
		t.Fatalf("off-site copy of a new tenant of an erased tenant's name: %v", err)
	}
	if _, err := e.a.DrillBackup(ctx, restic.DrillInput{Tenant: tenant, ID: "b1", Offsite: true}); check(err) != nil {
		t.Fatal(err)
	}
	newKey := filepath.Join(e.cfg.Keys, tenant+".key")
	if out, err := resticCLI(t, offRepo, newKey, "snapshots"); err == nil {
		t.Fatalf("the erased tenant's off-site repository opens with the new tenant's key:\n%s", out)
	}

	// A worker with a wrong off-site password fails, and says nothing of
	// the password either.
	wrong := "wrong@pw%" + harness.RandomHex(t, 4)
	e3 := newEnv(t, e.root, func(c *restic.Config) { offsite(c); c.OffsitePassword = wrong })
	if err := check((restic.Check{Config: e3.cfg}).Check(ctx)); err == nil || !strings.Contains(err.Error(), "refuses") {
		t.Fatalf("check with a wrong password: %v", err)
	}
	if _, err := e3.a.CopyOffsite(ctx, restic.Ref{Tenant: tenant, ID: "b1"}); check(err) == nil {
		t.Fatal("a copy with a wrong off-site password succeeded")
	}

	if os.Getenv("RESTIC_TEST_VERBOSE") != "" {
		for _, err := range errs {
			t.Logf("error: %v", err)
		}
	}
	logs := e.logs.String() + e2.logs.String() + e3.logs.String()
	for _, secret := range []string{password, url.QueryEscape(password), url.PathEscape(password), strings.TrimPrefix(url.UserPassword("x", password).String(), "x:"),
		wrong, url.QueryEscape(wrong), url.PathEscape(wrong)} {
		for _, err := range errs {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("an error holds the off-site password: %v", err)
			}
		}
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds the off-site password %q", secret)
		}
	}
	if len(errs) < 5 {
		t.Fatalf("only %d errors checked for the password", len(errs))
	}
}

// userURL is the server's URL with the credential, as restic takes it.
func userURL(srv rcloneServer) string {
	u, _ := url.Parse(srv.url)
	u.User = url.UserPassword(srv.user, srv.password)
	u.Path = "/" + srv.user + "/"
	return u.String()
}

// corruptLargestPack flips bytes in the middle of the repository's
// largest pack file: the volume's data.
func corruptLargestPack(t *testing.T, dataDir string) {
	t.Helper()
	var packs []string
	sizes := map[string]int64{}
	_ = filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			fi, _ := d.Info()
			packs = append(packs, path)
			sizes[path] = fi.Size()
		}
		return nil
	})
	if len(packs) == 0 {
		t.Fatalf("no pack files in %s", dataDir)
	}
	sort.Slice(packs, func(i, j int) bool { return sizes[packs[i]] > sizes[packs[j]] })
	p := packs[0]
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+64; i++ {
		b[i] ^= 0xff
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// copyDir copies the regular files of src into dst (keys restored from
// their own backup on another machine).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	names, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if !n.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, n.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// filesHolding lists the files under roots that contain secret.
func filesHolding(t *testing.T, roots []string, secret []byte) []string {
	t.Helper()
	var out []string
	for _, root := range roots {
		_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(path)
			if err == nil && bytes.Contains(b, secret) {
				out = append(out, path)
			}
			return nil
		})
	}
	return out
}
