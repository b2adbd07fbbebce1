package e2e

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"
	"github.com/go-ldap/ldap/v3"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/tenantflow/tenantflow/activities/backup"
	"github.com/tenantflow/tenantflow/activities/cmdb"
	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

func decommissionOf(st map[string]any) map[string]any {
	d, _ := st["decommission"].(map[string]any)
	if d == nil {
		return map[string]any{}
	}
	return d
}

func phaseIs(phases ...tenant.Phase) func(map[string]any) bool {
	return func(st map[string]any) bool {
		phase, _ := decommissionOf(st)["phase"].(string)
		return slices.Contains(phases, tenant.Phase(phase))
	}
}

// proxyDo sends a request to the tenant's host through Caddy.
func proxyDo(t testing.TB, addr, method, host, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, nil)
	require.NoError(t, err)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// scratchVolumes lists the verification volumes left of a tenant.
func (p *platform) scratchVolumes(name string) []string {
	vs, err := p.driver.Client().VolumeList(context.Background(), volume.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", docker.LabelTenant+"="+name), filters.Arg("label", docker.LabelScratch+"=true"))})
	require.NoError(p.t, err)
	var out []string
	for _, v := range vs.Volumes {
		out = append(out, v.Name)
	}
	return out
}

// checkBackupOnDisk re-reads every archive of the backup and compares it
// with its manifest, as an operator would with sha256sum -c SHA256SUMS.
func checkBackupOnDisk(t *testing.T, location, manifestSHA string) backup.Manifest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(location, "manifest.json"))
	require.NoError(t, err)
	sum := sha256.Sum256(raw)
	require.Equal(t, manifestSHA, hex.EncodeToString(sum[:]), "the manifest is the one the tenant records")
	var m backup.Manifest
	require.NoError(t, json.Unmarshal(raw, &m))
	for _, v := range m.Volumes {
		f, err := os.Open(filepath.Join(location, v.Archive))
		require.NoError(t, err)
		h := sha256.New()
		n, err := io.Copy(h, f)
		f.Close()
		require.NoError(t, err)
		require.Equal(t, v.ArchiveBytes, n, v.Archive)
		require.Equal(t, v.ArchiveSHA256, hex.EncodeToString(h.Sum(nil)), v.Archive)
	}
	for _, d := range m.Dumps {
		b, err := os.ReadFile(filepath.Join(location, d.File))
		require.NoError(t, err)
		sum := sha256.Sum256(b)
		require.Equal(t, d.SHA256, hex.EncodeToString(sum[:]), d.File)
		require.EqualValues(t, d.Bytes, len(b), d.File)
	}
	entries, err := os.ReadDir(location)
	require.NoError(t, err)
	for _, e := range entries {
		require.False(t, strings.HasSuffix(e.Name(), ".partial"), "no half-written archive is left: %s", e.Name())
	}
	return m
}

func TestDecommissionKeepsTheDataAndRestoreBringsItBack(t *testing.T) {
	srv, cfg := startServers(t)
	cfg.Backup = backup.Config{Dir: t.TempDir(), Retention: time.Hour}
	p := startPlatformWith(t, cfg)
	// Data written through the app: a counter in its volume, mirrored in
	// the database's volume.
	name, host, bind := servingTenant(t, srv, p, "decom", 3)

	// The db's generated password: the dump and restore commands need the
	// db's environment, which must never show in plain text.
	info, err := p.driver.Client().ContainerInspect(context.Background(), docker.ContainerName(name, "db"))
	require.NoError(t, err)
	var dbPassword string
	for _, e := range info.Config.Env {
		if v, ok := strings.CutPrefix(e, "DB_PASSWORD="); ok {
			dbPassword = v
		}
	}
	require.Len(t, dbPassword, 32)

	// Bad requests start nothing.
	code, body, _ := p.doAs("distributor-"+p.token, http.MethodDelete, "/v1/tenants/"+name+"?force=true", nil)
	require.Equal(t, http.StatusForbidden, code, body)
	require.Equal(t, "force", body["field"])
	code, body, _ = p.do(http.MethodDelete, "/v1/tenants/"+name+"?force=maybe", nil)
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Equal(t, "force", body["field"])
	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/decommission/confirm", nil)
	require.Equal(t, http.StatusConflict, code, body)
	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/restore", nil)
	require.Equal(t, http.StatusConflict, code, body)

	// Two steps: the distributor asks, ops confirm.
	code, body, _ = p.doAs("distributor-"+p.token, http.MethodDelete, "/v1/tenants/"+name, map[string]any{"reason": "end of contract"})
	require.Equal(t, http.StatusAccepted, code, body)
	require.Equal(t, string(tenant.PhaseAwaitingConfirmation), body["decommission"].(map[string]any)["phase"])
	st := p.waitFor(name, 50*time.Millisecond, 5*time.Second, "awaiting confirmation", phaseIs(tenant.PhaseAwaitingConfirmation))
	require.Equal(t, string(tenant.StateActive), st["state"], "nothing happens before the confirmation")
	code, _ = proxyDo(t, srv.caddy.HTTPAddr, http.MethodGet, host, "/")
	require.Equal(t, http.StatusOK, code)
	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/decommission/confirm", nil)
	require.Equal(t, http.StatusAccepted, code, body)

	st = p.waitFor(name, 50*time.Millisecond, 2*time.Minute, "decommissioned", phaseIs(tenant.PhaseRetained, tenant.PhaseFailed))
	require.Equal(t, string(tenant.StateDecommissioned), st["state"], st)
	d := decommissionOf(st)
	require.Equal(t, "distributor", d["requestedBy"])
	require.Equal(t, "ops", d["confirmedBy"])
	require.Equal(t, "end of contract", d["reason"])
	require.NotEmpty(t, d["verifiedAt"])
	require.NotEmpty(t, d["retentionUntil"])
	require.Empty(t, d["error"])
	bk := d["backup"].(map[string]any)
	location := bk["location"].(string)
	require.True(t, strings.HasPrefix(location, cfg.Backup.Dir), location)
	m := checkBackupOnDisk(t, location, bk["manifestSha256"].(string))
	require.Len(t, m.Volumes, 1, "the app's volume is archived")
	require.Equal(t, "data", m.Volumes[0].Volume)
	require.Len(t, m.Dumps, 1, "the db is backed up by its own dump, as the template says")
	dump, err := os.ReadFile(filepath.Join(location, m.Dumps[0].File))
	require.NoError(t, err)
	require.JSONEq(t, `{"hits":"3"}`, string(dump))

	// Every system holds nothing of the tenant but what retention keeps:
	// its volumes, its disabled accounts, its obsolete CMDB entry.
	residue := p.residue(name)
	slices.Sort(residue)
	require.Equal(t, []string{"volume " + docker.VolumeName(name, "data"), "volume " + docker.VolumeName(name, "dbdata")}, residue)
	require.Empty(t, p.scratchVolumes(name))
	code, _ = srv.caddy.Admin(t, http.MethodGet, "/id/"+proxy.RouteIDPrefix+name, nil)
	require.Equal(t, http.StatusNotFound, code, "caddy route")
	require.Equal(t, "NXDOMAIN", srv.bind.DigStatus(t, host, "A"), "dns")
	_, err = os.Stat(filepath.Join(srv.prom.SDDir, "tenantflow-"+name+".json"))
	require.True(t, os.IsNotExist(err), "supervision target file")
	require.True(t, ldap.IsErrorWithCode(bind(), ldap.LDAPResultInvalidCredentials), "the account is disabled, not deleted")
	require.Equal(t, cmdb.StatusInactive, cmdbStatus(t, srv, name), "the CMDB entry is obsolete, with its history")

	// Restore: back on its URL, with its data.
	code, body, _ = p.doAs("distributor-"+p.token, http.MethodPost, "/v1/tenants/"+name+"/restore", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	st = p.waitFor(name, 50*time.Millisecond, 2*time.Minute, "restored", phaseIs(tenant.PhaseRestored, tenant.PhaseRetained))
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	code, page := proxyDo(t, srv.caddy.HTTPAddr, http.MethodGet, host, "/")
	require.Equal(t, http.StatusOK, code, page)
	var app map[string]any
	require.NoError(t, json.Unmarshal([]byte(page), &app))
	require.EqualValues(t, 3, app["hits"], "the app's volume came back")
	require.Equal(t, "3", app["dbHits"], "the database came back from its dump")
	require.Equal(t, []string{"127.0.0.1"}, srv.bind.DigShort(t, host, "A"))
	require.NoError(t, bind(), "the account works again")
	require.Equal(t, cmdb.StatusActive, cmdbStatus(t, srv, name))
	_, err = os.Stat(location)
	require.True(t, os.IsNotExist(err), "the backup of a restored tenant is removed")

	raw := p.rawHistory(tenant.WorkflowID(name))
	require.NotContains(t, raw, dbPassword, "the db's environment travels encrypted")
	require.Contains(t, raw, "binary/encrypted")
	_, stBody, _ := p.do(http.MethodGet, "/v1/tenants/"+name, nil)
	b, _ := json.Marshal(stBody)
	require.NotContains(t, string(b), dbPassword)

	p.checkHistory(tenant.WorkflowID(name), "tenant-decommissioned-restored")
}

func cmdbStatus(t *testing.T, srv *servers, name string) string {
	t.Helper()
	for _, o := range srv.itop.Objects("ApplicationSolution") {
		if o.Fields["name"] == cmdb.ApplicationName(name) {
			return o.Fields["status"]
		}
	}
	t.Fatalf("no CMDB application of %s", name)
	return ""
}

func TestRetentionEndDeletesTheKeptData(t *testing.T) {
	srv, cfg := startServers(t)
	cfg.Backup = backup.Config{Dir: t.TempDir(), Retention: 3 * time.Second}
	p := startPlatformWith(t, cfg)
	name := tenantName("purge")
	t.Cleanup(func() { p.destroy(name) })

	p.requestTenant(name, "light", "staging")
	require.Equal(t, string(tenant.StateActive), p.waitState(name, 50*time.Millisecond, 2*time.Minute)["state"])
	code, body, _ := p.do(http.MethodDelete, "/v1/tenants/"+name+"?force=true&reason=test", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	st := p.waitFor(name, 50*time.Millisecond, 2*time.Minute, "purged", phaseIs(tenant.PhasePurged, tenant.PhaseFailed))
	require.Equal(t, string(tenant.StateDecommissioned), st["state"], st)
	require.NotEmpty(t, decommissionOf(st)["purgedAt"])

	// The workflow has ended; nothing of the tenant is left but its
	// obsolete CMDB entry.
	desc, err := p.temporal.Client.DescribeWorkflowExecution(context.Background(), tenant.WorkflowID(name), "")
	require.NoError(t, err)
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.GetWorkflowExecutionInfo().GetStatus())
	require.Empty(t, p.residue(name))
	conn := srv.slapd.Conn(t)
	_, err = conn.Search(ldap.NewSearchRequest("ou="+name+","+srv.base, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)", nil, nil))
	require.True(t, ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject), "ldap accounts deleted: %v", err)
	require.Equal(t, cmdb.StatusInactive, cmdbStatus(t, srv, name))
	left, err := os.ReadDir(cfg.Backup.Dir)
	require.NoError(t, err)
	require.Empty(t, left, "the backup is deleted with the rest")
	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/restore", nil)
	require.Equal(t, http.StatusConflict, code, body)

	p.checkHistory(tenant.WorkflowID(name), "tenant-purged")
}

// corruptingReader flips one byte of an archive, at offset at: a disk that
// returns other bytes than were written.
type corruptingReader struct {
	io.ReadCloser
	off, at int64
}

func (r *corruptingReader) Read(b []byte) (int, error) {
	n, err := r.ReadCloser.Read(b)
	if r.at >= r.off && r.at < r.off+int64(n) {
		b[r.at-r.off] ^= 0xff
	}
	r.off += int64(n)
	return n, err
}

func TestBackupFailingVerificationLeavesTheTenantServing(t *testing.T) {
	cfg := &wiring.Config{Backup: backup.Config{Dir: t.TempDir(), Retention: time.Hour}}
	p := startPlatformWith(t, cfg)
	name := tenantName("badbak")
	t.Cleanup(func() { p.destroy(name) })

	p.requestTenant(name, "light", "staging")
	st := p.waitState(name, 50*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	url := st["url"].(string)
	resp, err := http.Post(url+"/hits", "text/plain", nil)
	require.NoError(t, err)
	resp.Body.Close()

	// The storage returns a flipped byte in the data of the first file of
	// every archive it is asked for.
	p.deps.Backup.Open = func(name string) (io.ReadCloser, error) {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		return &corruptingReader{ReadCloser: f, at: 512 + 1}, nil
	}
	code, body, _ := p.do(http.MethodDelete, "/v1/tenants/"+name+"?force=true", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	st = p.waitFor(name, 50*time.Millisecond, 2*time.Minute, "stopped", phaseIs(tenant.PhaseFailed, tenant.PhaseRetained))
	d := decommissionOf(st)
	require.Equal(t, string(tenant.PhaseFailed), d["phase"], st)
	require.Contains(t, d["error"], "BackupVerificationFailed")
	require.Equal(t, string(tenant.StateActive), st["state"])

	// Still serving, with its data; nothing of the failed backup is left.
	resp, err = http.Get(st["url"].(string) + "/")
	require.NoError(t, err)
	var app map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&app))
	resp.Body.Close()
	require.EqualValues(t, 1, app["hits"])
	require.Len(t, p.residue(name), 2+2+1)
	require.Empty(t, p.scratchVolumes(name))
	left, err := filepath.Glob(filepath.Join(cfg.Backup.Dir, name, "*", "*"))
	require.NoError(t, err)
	require.Empty(t, left, "the unverified backup is removed")

	p.checkHistory(tenant.WorkflowID(name), "tenant-decommission-failed")
}

// TestWorkerCrashDuringBackupResumes kills the worker process while it
// writes the first archive; the second worker resumes the backup, and the
// result is one complete, verified archive per volume that restores.
func TestWorkerCrashDuringBackupResumes(t *testing.T) {
	if os.Geteuid() != 0 {
		harness.Unavailable(t, "writing test data straight into a Docker volume needs root")
	}
	bin := buildTenantflow(t)
	p := startPlatformWith(t, nil)
	dir := t.TempDir()
	env := []string{"TENANTFLOW_BACKUP_DIR=" + dir, "TENANTFLOW_BACKUP_RETENTION=1h"}
	first := startWorkerProcess(t, bin, p, env...)
	name := tenantName("crashbak")
	t.Cleanup(func() { p.destroy(name) })
	p.requestTenant(name, "light", "staging")
	st := p.waitState(name, 50*time.Millisecond, 2*time.Minute)
	require.Equal(t, string(tenant.StateActive), st["state"], st)

	// 400 MB in the app's volume, so the kill lands mid-archive.
	mp, err := p.driver.VolumeDir(context.Background(), name, "", "data")
	require.NoError(t, err)
	big := filepath.Join(mp, "big.bin")
	f, err := os.Create(big)
	require.NoError(t, err)
	h := sha256.New()
	_, err = io.CopyN(io.MultiWriter(f, h), rand.Reader, 400<<20)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	want := hex.EncodeToString(h.Sum(nil))

	code, body, _ := p.do(http.MethodDelete, "/v1/tenants/"+name+"?force=true", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	require.Eventually(t, func() bool {
		parts, _ := filepath.Glob(filepath.Join(dir, name, "*", "data.tar.partial"))
		if len(parts) == 0 {
			return false
		}
		fi, err := os.Stat(parts[0])
		return err == nil && fi.Size() > 50<<20
	}, 2*time.Minute, 2*time.Millisecond, "the backup never got going")
	require.NoError(t, first.Process.Signal(syscall.SIGKILL))
	_ = first.Wait()
	startWorkerProcess(t, bin, p, env...)

	st = p.waitFor(name, 50*time.Millisecond, 3*time.Minute, "decommissioned", phaseIs(tenant.PhaseRetained, tenant.PhaseFailed))
	require.Equal(t, string(tenant.StateDecommissioned), st["state"], st)
	bk := decommissionOf(st)["backup"].(map[string]any)
	location := bk["location"].(string)
	checkBackupOnDisk(t, location, bk["manifestSha256"].(string))
	files, err := os.ReadDir(location)
	require.NoError(t, err)
	var tars []string
	for _, f := range files {
		if strings.HasSuffix(f.Name(), ".tar") {
			tars = append(tars, f.Name())
		}
	}
	require.Equal(t, []string{"data.tar"}, tars, "one archive of the app's volume (the db has its dump)")
	require.FileExists(t, filepath.Join(location, "db.dump"))
	others, _ := os.ReadDir(filepath.Join(dir, name))
	require.Len(t, others, 1, "one backup of the tenant")
	require.GreaterOrEqual(t, p.activityAttempts(name, "BackupVolumes"), int32(2), "the backup ran again after the crash")

	// And the data comes back.
	require.NoError(t, os.Remove(big)) // the kept volume is not what restore reads
	code, body, _ = p.do(http.MethodPost, "/v1/tenants/"+name+"/restore", nil)
	require.Equal(t, http.StatusAccepted, code, body)
	st = p.waitFor(name, 50*time.Millisecond, 2*time.Minute, "restored", phaseIs(tenant.PhaseRestored, tenant.PhaseRetained))
	require.Equal(t, string(tenant.StateActive), st["state"], st)
	mp, err = p.driver.VolumeDir(context.Background(), name, "", "data")
	require.NoError(t, err)
	f, err = os.Open(filepath.Join(mp, "big.bin"))
	require.NoError(t, err)
	h = sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	require.NoError(t, err)
	require.Equal(t, want, hex.EncodeToString(h.Sum(nil)))
	resp, err := http.Get(st["url"].(string) + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// activityAttempts is the highest attempt number an activity type started
// with in the tenant's history.
func (p *platform) activityAttempts(name, activityType string) int32 {
	iter := p.temporal.Client.GetWorkflowHistory(context.Background(), tenant.WorkflowID(name), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	scheduled := map[int64]string{}
	var attempt int32
	for iter.HasNext() {
		ev, err := iter.Next()
		require.NoError(p.t, err)
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.GetEventId()] = a.GetActivityType().GetName()
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && scheduled[a.GetScheduledEventId()] == activityType {
			attempt = max(attempt, a.GetAttempt())
		}
	}
	return attempt
}
