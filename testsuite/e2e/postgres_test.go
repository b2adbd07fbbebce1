package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// postgresImage makes the postgres template's image with the script
// `make postgres-image` runs (nothing to do when the engine has it, a
// minute or two from nothing) and returns its tag, how long the script
// took and what it said it did (nothing when the image was there).
func postgresImage(t testing.TB) (tag string, took time.Duration, did string) {
	t.Helper()
	harness.SkipShort(t, "the postgres image")
	script := filepath.Join(harness.RepoRoot(), "tools", "images", "postgres", "build.sh")
	if _, err := exec.LookPath("docker"); err != nil {
		harness.Unavailable(t, "the docker CLI, which %s (make postgres-image) needs: %v", script, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, script)
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	took = time.Since(start)
	if err != nil {
		if strings.Contains(stderr.String(), "debootstrap is not installed") {
			harness.Unavailable(t, "debootstrap, to build the postgres image (make postgres-image): %s", stderr.String())
		}
		t.Fatalf("make postgres-image (%s): %v\n%s", script, err, stderr.String())
	}
	lines := strings.Fields(string(out))
	require.NotEmpty(t, lines, "%s prints the tag last", script)
	return lines[len(lines)-1], took, strings.TrimSpace(stderr.String())
}

// postgresTemplate is the postgres template, which must run the image the
// script makes.
func postgresTemplate(t testing.TB, tag string) *spec.Template {
	t.Helper()
	tpls, err := spec.LoadTemplates(filepath.Join(harness.RepoRoot(), "deploy", "templates"))
	require.NoError(t, err)
	tpl := tpls["default"]
	require.NotNil(t, tpl, "deploy/templates/default.yaml")
	images := []string{}
	for _, s := range tpl.Services {
		images = append(images, s.Image)
	}
	require.Contains(t, images, tag, "the template runs the image build.sh makes")
	return tpl
}

// provisionTimed asks for a tenant, waits until it is active and returns
// how long that took and its URL.
func (p *platform) provisionTimed(name, template string) (time.Duration, string) {
	p.t.Helper()
	start := time.Now()
	p.requestTenant(name, template, "prod")
	st := p.waitState(name, 50*time.Millisecond, 3*time.Minute)
	took := time.Since(start)
	require.Equal(p.t, string(tenant.StateActive), st["state"], st)
	return took, st["url"].(string)
}

// pgRow is a row of the demo app's rows table as GET /rows answers it.
type pgRow struct {
	ID    int64  `json:"id"`
	Value string `json:"value"`
}

// addPGRow writes a row through the app (POST /rows).
func addPGRow(t *testing.T, base, value string) pgRow {
	t.Helper()
	resp, err := http.Post(base+"/rows?value="+url.QueryEscape(value), "", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(b))
	var r pgRow
	require.NoError(t, json.Unmarshal(b, &r), string(b))
	require.Equal(t, value, r.Value)
	return r
}

// pgRows reads the rows back through the app (GET /rows): the status and,
// on 200, the rows.
func pgRows(t *testing.T, base string) (int, []pgRow) {
	t.Helper()
	resp, err := http.Get(base + "/rows")
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	var rows []pgRow
	require.NoError(t, json.Unmarshal(b, &rows), string(b))
	return resp.StatusCode, rows
}

// demoHits posts n hits and returns the app's GET / answer.
func demoHits(t *testing.T, base string, n int) map[string]any {
	t.Helper()
	for range n {
		resp, err := http.Post(base+"/hits", "", nil)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	}
	resp, err := http.Get(base + "/")
	require.NoError(t, err)
	defer resp.Body.Close()
	var v map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
	return v
}

// The image script does its work once: run again, it finds the image and
// returns at once. The first run here is cold only on a machine that has
// neither the image nor the cached root filesystem (see the log).
func TestPostgresImageIsBuiltOnce(t *testing.T) {
	tag, first, did := postgresImage(t)
	t.Logf("make postgres-image: %s (%s)", first.Round(time.Millisecond), strings.ReplaceAll(did, "\n", "; "))
	tag2, warm, did2 := postgresImage(t)
	require.Equal(t, tag, tag2)
	require.Empty(t, did2, "a second run builds nothing")
	require.Less(t, warm, 3*time.Second, "a second run only checks the engine's image")
	t.Logf("make postgres-image again: %s", warm.Round(time.Millisecond))
	postgresTemplate(t, tag)

	d := harness.Docker(t)
	img, err := d.Client().ImageInspect(context.Background(), tag)
	require.NoError(t, err)
	require.Equal(t, "SIGINT", img.Config.StopSignal, "a fast shutdown: the app's connections do not hold it up")
	require.Equal(t, []string{"/usr/local/bin/postgres-entrypoint"}, img.Config.Entrypoint)
	require.Contains(t, img.Config.Env, "PGDATA=/var/lib/postgresql/data")
	t.Logf("%s: %d MB", tag, img.Size/1e6)
}

// A tenant of the postgres template keeps the app's data in PostgreSQL:
// the hit counter's mirror and rows written through the app, read back,
// also after its database restarted on its volume. Its provisioning is
// timed against a tenant of the default (key/value) template.
func TestPostgresTenantKeepsItsRows(t *testing.T) {
	tag, _, _ := postgresImage(t)
	postgresTemplate(t, tag)
	p := startPlatform(t)
	kvName, pgName := tenantName("kv"), tenantName("pg")
	t.Cleanup(func() { p.destroy(kvName); p.destroy(pgName) })

	kvTook, kvURL := p.provisionTimed(kvName, "light")
	pgTook, pgURL := p.provisionTimed(pgName, "default")
	t.Logf("provisioning until active: default (kv db) %s, postgres %s", kvTook.Round(time.Millisecond), pgTook.Round(time.Millisecond))

	require.Equal(t, "2", demoHits(t, kvURL, 2)["dbHits"], "the kv db mirrors the counter as before")
	code, _ := pgRows(t, kvURL)
	require.Equal(t, http.StatusNotImplemented, code, "rows need PostgreSQL")

	app := demoHits(t, pgURL, 3)
	require.Equal(t, "3", app["dbHits"], "PostgreSQL mirrors the counter: %v", app)
	require.Nil(t, app["dbError"])
	code, rows := pgRows(t, pgURL)
	require.Equal(t, http.StatusOK, code)
	require.Empty(t, rows, "a new tenant's table is empty")
	var want []pgRow
	for _, v := range []string{"first", "it's 'quoted'", "ünïcødé ✓", "two\nlines\tand a \\ backslash"} {
		want = append(want, addPGRow(t, pgURL, v))
	}
	_, rows = pgRows(t, pgURL)
	require.Equal(t, want, rows)

	// The database restarts on its volume: the cluster is not made again,
	// and the app reconnects.
	ctx := context.Background()
	start := time.Now()
	require.NoError(t, p.driver.Client().ContainerRestart(ctx, docker.ContainerName(pgName, "db"), container.StopOptions{}))
	require.Eventually(t, func() bool {
		code, rows = pgRows(t, pgURL)
		return code == http.StatusOK
	}, time.Minute, 100*time.Millisecond, "the app reads its rows again")
	t.Logf("database restarted and read again in %s", time.Since(start).Round(time.Millisecond))
	require.Equal(t, want, rows)
	require.Equal(t, "3", demoHits(t, pgURL, 0)["dbHits"])
	logs := dbLogs(t, p.driver, pgName)
	require.Equal(t, 1, strings.Count(logs, "created the cluster"), "initdb ran once:\n%s", logs)
}

// dbLogs is what the tenant's db container wrote.
func dbLogs(t *testing.T, d *docker.Driver, tenantName string) string {
	t.Helper()
	rc, err := d.Client().ContainerLogs(context.Background(), docker.ContainerName(tenantName, "db"),
		container.LogsOptions{ShowStdout: true, ShowStderr: true})
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return string(b)
}

// The template's dump restores into a fresh instance of the database that
// dumps to the very same bytes, the check a backup's verification makes:
// with the template's commands run as the Docker driver runs them.
func TestPostgresDumpRestoresToTheSameBytes(t *testing.T) {
	tag, _, _ := postgresImage(t)
	tpl := postgresTemplate(t, tag)
	p := startPlatform(t)
	name := tenantName("pgdump")
	t.Cleanup(func() { p.destroy(name) })
	_, base := p.provisionTimed(name, "default")
	demoHits(t, base, 2)
	values := []string{"alpha", "it's 'quoted'", "ünïcødé ✓", "two\nlines\tand a \\ backslash", `\. and \copy`}
	for _, v := range values {
		addPGRow(t, base, v)
	}

	// The scratch instance gets a password of its own: the commands use
	// the trusted local socket.
	env, err := tpl.Render(name, "prod", map[string]string{"db_password": harness.RandomHex(t, 16)})
	require.NoError(t, err)
	i := slices.IndexFunc(env.Services, func(s spec.Service) bool { return s.Name == "db" })
	require.GreaterOrEqual(t, i, 0)
	db := env.Services[i]
	require.NotNil(t, db.Backup)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var dump bytes.Buffer
	start := time.Now()
	require.NoError(t, p.driver.ExecInService(ctx, name, "", db, db.Backup.Dump, nil, &dump))
	t.Logf("dump: %d bytes in %s", dump.Len(), time.Since(start).Round(time.Millisecond))
	for _, v := range values {
		require.Contains(t, dump.String(), copyEscape(v), "the dump holds the row %q", v)
	}
	sum := sha256.Sum256(dump.Bytes())
	again := dumpSHA(t, func(w io.Writer) error { return p.driver.ExecInService(ctx, name, "", db, db.Backup.Dump, nil, w) })
	require.Equal(t, hex.EncodeToString(sum[:]), again, "two dumps of the same data are the same bytes")

	t.Cleanup(func() { _ = p.driver.RemoveScratchInstance(context.Background(), name, db) })
	start = time.Now()
	require.NoError(t, p.driver.StartScratchInstance(ctx, name, db))
	// A retried restore loads the dump again over the first one.
	for attempt := range 2 {
		require.NoError(t, p.driver.ExecInScratchInstance(ctx, name, db, db.Backup.Restore, bytes.NewReader(dump.Bytes()), io.Discard), "restore %d", attempt+1)
		restored := dumpSHA(t, func(w io.Writer) error { return p.driver.ExecInScratchInstance(ctx, name, db, db.Backup.Dump, nil, w) })
		require.Equal(t, hex.EncodeToString(sum[:]), restored, "restore %d: the fresh instance dumps to the same bytes", attempt+1)
	}
	t.Logf("scratch instance started, restored twice and dumped in %s", time.Since(start).Round(time.Millisecond))

	// A dump that does not load fails the restore command.
	err = p.driver.ExecInScratchInstance(ctx, name, db, db.Backup.Restore, strings.NewReader("INSERT INTO no_such_table VALUES (1);\n"), io.Discard)
	require.ErrorContains(t, err, "no_such_table")
}

// dumpSHA is the SHA-256 of what dump writes.
func dumpSHA(t *testing.T, dump func(io.Writer) error) string {
	t.Helper()
	h := sha256.New()
	require.NoError(t, dump(h))
	return hex.EncodeToString(h.Sum(nil))
}

// copyEscape is v as a plain dump's COPY data writes it.
func copyEscape(v string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\t", `\t`).Replace(v)
}

// A postgres tenant goes through decommission and restore as the platform
// runs them: its database is backed up by the template's dump into its
// repository, drilled in a scratch instance, and loaded back on restore
// into a new database, rows and all.
func TestPostgresTenantDecommissionedAndRestoredKeepsItsRows(t *testing.T) {
	tag, _, _ := postgresImage(t)
	postgresTemplate(t, tag)
	harness.RequireBinary(t, "restic", "restic")
	dir := t.TempDir()
	p := startPlatformWith(t, &wiring.Config{Backup: backup.Config{Retention: time.Hour},
		Restic: restic.Config{Repos: filepath.Join(dir, "repos"), Keys: filepath.Join(dir, "keys"), Binary: "restic"}})
	name := tenantName("pgdecom")
	t.Cleanup(func() { p.destroy(name) })
	_, base := p.provisionTimed(name, "default")
	demoHits(t, base, 2)
	var want []pgRow
	for _, v := range []string{"kept", "through a 'decommission'", "ünïcødé ✓"} {
		want = append(want, addPGRow(t, base, v))
	}

	code, body, _ := p.doAs("distributor-"+p.token, http.MethodDelete, "/v1/tenants/"+name, map[string]any{"reason": "postgres e2e"})
	require.Equal(t, http.StatusAccepted, code, body)
	p.waitFor(name, 50*time.Millisecond, 10*time.Second, "awaiting confirmation", phaseIs(tenant.PhaseAwaitingConfirmation))
	start := time.Now()
	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/decommission/confirm", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	st := p.waitFor(name, 50*time.Millisecond, 3*time.Minute, "decommissioned", phaseIs(tenant.PhaseRetained, tenant.PhaseFailed))
	t.Logf("decommission (dump, verified restore into a scratch instance): %s", time.Since(start).Round(time.Millisecond))
	d := decommissionOf(st)
	require.Equal(t, string(tenant.StateDecommissioned), st["state"], st)
	require.Empty(t, d["error"])
	require.NotEmpty(t, d["verifiedAt"])
	// The default template's tenants are decommissioned through their
	// repository: the final backup, drilled (the dump loaded into a
	// scratch instance and dumped again to the same bytes).
	final, _ := d["final"].(map[string]any)
	require.NotNil(t, final, "the final backup is in the repository: %v", d)
	require.Nil(t, d["backup"], "no archive")
	require.Empty(t, p.scratchVolumes(name))
	// Without the retained database volume the restore makes a new
	// cluster: the rows can only come back from the dump.
	require.NoError(t, p.driver.Client().VolumeRemove(context.Background(), docker.VolumeName(name, "dbdata"), false))

	start = time.Now()
	code, body, _ = p.doAs("distributor-"+p.token, http.MethodPost, "/v1/tenants/"+name+"/restore", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	st = p.waitFor(name, 50*time.Millisecond, 3*time.Minute, "restored", phaseIs(tenant.PhaseRestored, tenant.PhaseRetained))
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	t.Logf("restore: %s", time.Since(start).Round(time.Millisecond))
	base = st["url"].(string)
	code, rows := pgRows(t, base)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, want, rows, "the rows came back from the dump")
	require.Equal(t, "2", demoHits(t, base, 0)["dbHits"])
	require.Contains(t, dbLogs(t, p.driver, name), "created the cluster", "the restored db started on a new volume")
}
