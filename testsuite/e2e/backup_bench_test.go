package e2e

import (
	"context"
	crand "crypto/rand"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"golang.org/x/sync/errgroup"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/restic"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/temporaltest"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// The backup benchmarks (make bench-backups) measure the scheduled backups
// of issue 15 against what an admin would script with restic alone, in the
// same run on the same machine. Their data: TENANTFLOW_BENCH_TENANT_MB
// (200 by default) of incompressible data per tenant in benchFiles files of
// its data volume, so that a 1 % change rewrites ranges inside some files
// instead of appending one.
const (
	benchFiles = 8
	// changeRange is the size of one rewritten range (the last may be
	// shorter): several per tenant at 200 MB, one at a small size.
	changeRange = 256 << 10
	// benchPoll is how often the benchmarks ask the API whether a
	// backup operation is over. The times themselves come from the
	// tenants' histories, so a slow poll costs the backups little CPU
	// and the figures no precision.
	benchPoll = time.Second
)

// Activity types of a backup operation (the restic.Activities methods).
var backupActivities = map[string]bool{"TakeBackup": true, "ApplyRetention": true, "CopyOffsite": true, "DrillBackup": true}

// benchInt is a positive integer from the environment, or def.
func benchInt(b *testing.B, env string, def int) int {
	b.Helper()
	v := os.Getenv(env)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", env, v)
	}
	return n
}

// backupBench is the platform with restic backups configured, and the
// tenants of one benchmark.
type backupBench struct {
	b   *testing.B
	p   *platform
	cfg restic.Config
	tmp string
	// mb is each tenant's data in MiB.
	mb int
	// dump is the default template's dumped service: what TakeBackup
	// streams into restic beside the volume.
	dump spec.ServiceTemplate
}

func startBackupBench(b *testing.B) *backupBench {
	b.Helper()
	harness.RequireBinary(b, "restic", "restic")
	harness.RequireBinary(b, "docker", "docker.io")
	harness.RequireBinary(b, "tar", "tar")
	if os.Geteuid() != 0 {
		harness.Unavailable(b, "writing into Docker volume mountpoints needs root")
	}
	mb := benchInt(b, "TENANTFLOW_BENCH_TENANT_MB", 200)
	if mb < benchFiles {
		b.Fatalf("TENANTFLOW_BENCH_TENANT_MB=%d: at least %d", mb, benchFiles)
	}
	tpls, err := spec.LoadTemplates(filepath.Join(harness.RepoRoot(), "deploy", "templates"))
	if err != nil {
		b.Fatal(err)
	}
	var dumps []spec.ServiceTemplate
	for _, s := range tpls["light"].Services {
		if s.Backup != nil {
			dumps = append(dumps, s)
		}
	}
	if len(dumps) != 1 {
		b.Fatalf("the default template dumps %d services; the shell baseline knows one", len(dumps))
	}
	tmp := b.TempDir()
	cfg := restic.Config{Repos: filepath.Join(tmp, "repos"), Keys: filepath.Join(tmp, "keys"), Binary: "restic"}
	p := startPlatformWith(b, &wiring.Config{Restic: cfg})
	return &backupBench{b: b, p: p, cfg: cfg, tmp: tmp, mb: mb, dump: dumps[0]}
}

// benchTenant is one tenant of a benchmark and where its data lives.
type benchTenant struct {
	name string
	url  string
	// dir is its data volume's directory; db the container of its
	// dumped service.
	dir, db string
	files   []string
}

// provision requests the tenants at once (with the backup policy when
// set), waits until all are active and fills each one's data volume. They
// are removed when the benchmark ends.
func (bb *backupBench) provision(n int, prefix string, policy map[string]any) []*benchTenant {
	b, p := bb.b, bb.p
	b.Helper()
	names := make([]string, n)
	for i := range names {
		names[i] = tenantName(prefix)
	}
	b.Cleanup(func() { destroyAll(p, names) })
	var g errgroup.Group
	g.SetLimit(8)
	for _, name := range names {
		g.Go(func() error {
			req := map[string]any{"name": name, "template": "light", "stage": "prod"}
			if policy != nil {
				req["backups"] = policy
			}
			if code, body, _ := p.do(http.MethodPost, "/v1/tenants", req); code != http.StatusAccepted {
				return fmt.Errorf("POST /v1/tenants %s: %d %v", name, code, body)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	ts := make([]*benchTenant, n)
	for i, name := range names {
		st := p.waitState(name, 200*time.Millisecond, 5*time.Minute)
		if st["state"] != string(tenant.StateActive) {
			b.Fatalf("tenant %s: %v", name, st)
		}
		dir, err := p.driver.VolumeDir(context.Background(), name, "", "data")
		if err != nil {
			b.Fatal(err)
		}
		gen, _ := st["generation"].(float64)
		ts[i] = &benchTenant{name: name, url: st["url"].(string), dir: dir, db: docker.InstanceName(name, bb.dump.Name, int(gen))}
	}
	g = errgroup.Group{}
	g.SetLimit(2)
	for _, t := range ts {
		g.Go(func() error { return bb.fill(t) })
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	syncDisks(b)
	return ts
}

// fill writes the tenant's data: benchFiles files of random bytes.
func (bb *backupBench) fill(t *benchTenant) error {
	size := int64(bb.mb) << 20 / benchFiles
	src := newRandom()
	buf := make([]byte, 1<<20)
	for i := range benchFiles {
		path := filepath.Join(t.dir, fmt.Sprintf("blob-%d.bin", i))
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("tenant %s: %w", t.name, err)
		}
		for left := size; left > 0; left -= int64(len(buf)) {
			chunk := buf[:min(left, int64(len(buf)))]
			_, _ = src.Read(chunk)
			if _, err := f.Write(chunk); err != nil {
				f.Close()
				return fmt.Errorf("tenant %s: write %s: %w", t.name, path, err)
			}
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("tenant %s: %s: %w", t.name, path, err)
		}
		t.files = append(t.files, path)
	}
	return nil
}

// newRandom is a source of incompressible bytes, seeded anew each time.
func newRandom() *rand.ChaCha8 {
	var seed [32]byte
	_, _ = crand.Read(seed[:])
	return rand.NewChaCha8(seed)
}

// change overwrites 1 % of each tenant's data in place: ranges of
// changeRange at random distinct offsets of random files. It returns the
// bytes rewritten and the files touched, over all tenants.
func (bb *backupBench) change(ts []*benchTenant) (changed int64, files int) {
	b := bb.b
	b.Helper()
	size := int64(bb.mb) << 20 / benchFiles
	want := int64(bb.mb) << 20 / 100
	slots := size / changeRange
	src := newRandom()
	for _, t := range ts {
		taken := map[int64]bool{}
		touched := map[int]bool{}
		for left := want; left > 0; {
			slot := rand.Int64N(int64(len(t.files)) * slots)
			if taken[slot] {
				continue
			}
			taken[slot] = true
			n := min(left, changeRange)
			buf := make([]byte, n)
			_, _ = src.Read(buf)
			file := int(slot / slots)
			f, err := os.OpenFile(t.files[file], os.O_WRONLY, 0)
			if err != nil {
				b.Fatal(err)
			}
			_, err = f.WriteAt(buf, slot%slots*changeRange)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				b.Fatalf("tenant %s: %v", t.name, err)
			}
			touched[file] = true
			left -= n
			changed += n
		}
		files += len(touched)
	}
	syncDisks(b)
	return changed, files
}

// syncDisks writes dirty pages back, so that no contender pays for
// writing back the data of another.
func syncDisks(b *testing.B) {
	if out, err := exec.Command("sync").CombinedOutput(); err != nil {
		b.Fatalf("sync: %v: %s", err, out)
	}
}

// backupTiming is one backup operation, read from the tenant's history:
// its times are the server's (the benchmark's clock: the same machine).
type backupTiming struct {
	backup restic.Backup // TakeBackup's result
	// activity is TakeBackup's (last attempt's) run, from start to end.
	activity time.Duration
	// listed is the workflow task after TakeBackup: from then on the API
	// lists the backup. done is the workflow task after the operation's
	// last restic activity (its retention, and its drill when one is
	// due): the operation is over.
	listed, done time.Time
}

// requestBackups asks for an on-demand backup of every tenant at once
// through the API, waits until every operation is over, and returns when
// they were requested and each one's course.
func (bb *backupBench) requestBackups(ts []*benchTenant, drill bool) (time.Time, []backupTiming) {
	b, p := bb.b, bb.p
	b.Helper()
	ids := make([]string, len(ts))
	var g errgroup.Group
	start := time.Now()
	for i, t := range ts {
		g.Go(func() error {
			code, body, _ := p.do(http.MethodPost, "/v1/tenants/"+t.name+"/backups", nil)
			if code != http.StatusAccepted {
				return fmt.Errorf("POST /v1/tenants/%s/backups: %d %v", t.name, code, body)
			}
			ids[i], _ = body["id"].(string)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	bb.waitOperations(ts, ids, drill)
	out := make([]backupTiming, len(ts))
	for i, t := range ts {
		out[i] = bb.timing(t.name, ids[i])
	}
	return start, out
}

// waitOperations polls every benchPoll until each tenant lists its
// backup ids[i] and runs no backup operation any more (with drill, until
// that backup's drill passed). A failed backup or drill fails the
// benchmark.
func (bb *backupBench) waitOperations(ts []*benchTenant, ids []string, drill bool) {
	b, p := bb.b, bb.p
	b.Helper()
	pending := map[int]bool{}
	for i := range ts {
		pending[i] = true
	}
	deadline := time.Now().Add(30 * time.Minute)
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			b.Fatalf("%d backups still running after 30 minutes", len(pending))
		}
		time.Sleep(benchPoll)
		for i := range pending {
			st, id := p.backupsOf(ts[i].name), ids[i]
			if e, _ := st["lastError"].(string); strings.Contains(e, id) {
				b.Fatalf("tenant %s: %s", ts[i].name, e)
			}
			listed := slices.ContainsFunc(list(st), func(r map[string]any) bool { return r["id"] == id })
			if !listed || st["running"] != nil || st["pending"] != nil {
				continue
			}
			if drill {
				d, _ := st["lastDrill"].(map[string]any)
				if d == nil || d["backup"] != id {
					continue
				}
				if d["outcome"] != tenant.DrillPassed {
					b.Fatalf("tenant %s: drill of %s: %v", ts[i].name, id, d)
				}
			}
			delete(pending, i)
		}
	}
}

// timing reads the course of backup id from the tenant's history.
func (bb *backupBench) timing(name, id string) backupTiming {
	b, p := bb.b, bb.p
	b.Helper()
	dc := temporaltest.TestKeyring(b).DataConverter()
	iter := p.temporal.Client.GetWorkflowHistory(context.Background(), tenant.WorkflowID(name), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	types := map[int64]string{}
	started := map[int64]time.Time{}
	var bt backupTiming
	found, closed := false, false
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			b.Fatal(err)
		}
		at := ev.GetEventTime().AsTime()
		switch ev.GetEventType() {
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
			typ := ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
			if found && typ == "TakeBackup" {
				return bt // the next backup operation
			}
			types[ev.GetEventId()] = typ
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_STARTED:
			started[ev.GetActivityTaskStartedEventAttributes().GetScheduledEventId()] = at
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
			a := ev.GetActivityTaskCompletedEventAttributes()
			typ := types[a.GetScheduledEventId()]
			if typ == "TakeBackup" && !found {
				var bk restic.Backup
				if err := dc.FromPayloads(a.GetResult(), &bk); err != nil {
					b.Fatalf("tenant %s: the result of TakeBackup: %v", name, err)
				}
				if bk.ID != id {
					continue
				}
				found, bt.backup = true, bk
				bt.activity = at.Sub(started[a.GetScheduledEventId()])
			}
			closed = found && backupActivities[typ]
		case enumspb.EVENT_TYPE_ACTIVITY_TASK_FAILED:
			closed = found && backupActivities[types[ev.GetActivityTaskFailedEventAttributes().GetScheduledEventId()]]
		case enumspb.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
			if closed {
				if bt.listed.IsZero() {
					bt.listed = at
				}
				bt.done, closed = at, false
			}
		}
	}
	if !found || bt.done.IsZero() {
		b.Fatalf("tenant %s: no complete backup operation %s in the history", name, id)
	}
	return bt
}

// lastListed is when the last of the backups was listed, and done when
// the last operation was over, both since start; added sums what they
// added to the repositories.
func lastListed(start time.Time, bts []backupTiming) (listed, done time.Duration, added int64) {
	for _, bt := range bts {
		listed = max(listed, bt.listed.Sub(start))
		done = max(done, bt.done.Sub(start))
		added += bt.backup.Added
	}
	return listed, done, added
}

// shellScript writes the baseline an admin would script: for one tenant,
// the restic commands TakeBackup runs (activities/restic/backup.go and
// run.go: the same environment, --no-cache, --host, tags, the dump
// streamed into --stdin first, then the volume as "."), each backup's
// summary line kept in a file for its data_added. It leaves out what
// TakeBackup adds around them (restic snapshots to find an earlier
// attempt, stats, the manifest) and the retention after it.
func (bb *backupBench) shellScript() string {
	b := bb.b
	b.Helper()
	quoted := make([]string, len(bb.dump.Backup.Dump))
	for i, w := range bb.dump.Backup.Dump {
		quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	script := `#!/bin/bash
# One tenant's backup by hand. Arguments: tag, output directory, tenant,
# its database container, its data volume's directory.
set -euo pipefail
tag=$1 out=$2 t=$3 db=$4 dir=$5
export TZ=UTC RESTIC_PROGRESS_FPS=1 RESTIC_REPOSITORY="` + bb.cfg.Repos + `/$t" RESTIC_PASSWORD_FILE="` + bb.cfg.Keys + `/$t.key"
docker exec "$db" ` + strings.Join(quoted, " ") + ` |
  restic --no-cache backup --json --host tenantflow --tag "backup:$tag" --tag "dump:` + bb.dump.Name + `" --stdin --stdin-filename "` + bb.dump.Name + `.dump" |
  grep '"message_type":"summary"' >"$out/$t.dump.json"
cd "$dir"
restic --no-cache backup --json --host tenantflow --tag "backup:$tag" --tag volume:data . |
  grep '"message_type":"summary"' >"$out/$t.data.json"
`
	path := filepath.Join(bb.tmp, "backup-one.sh")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		b.Fatal(err)
	}
	return path
}

// runShell backs every tenant up with the script, parallel at a time (1:
// a for loop; more: xargs -P), and returns its wall time and the bytes
// the backups added.
func (bb *backupBench) runShell(script, tag string, ts []*benchTenant, parallel int) (time.Duration, int64) {
	b := bb.b
	b.Helper()
	out := filepath.Join(bb.tmp, tag)
	if err := os.Mkdir(out, 0o700); err != nil {
		b.Fatal(err)
	}
	var words []string
	for _, t := range ts {
		words = append(words, t.name+":"+t.db+":"+t.dir)
	}
	loop := `for a in ` + strings.Join(words, " ") + `; do IFS=: read -r t db dir <<<"$a"; "$ONE" "$TAG" "$OUT" "$t" "$db" "$dir"; done`
	if parallel > 1 {
		loop = `for a in ` + strings.Join(words, " ") + `; do echo "${a//:/ }"; done | xargs -P ` + strconv.Itoa(parallel) + ` -L 1 "$ONE" "$TAG" "$OUT"`
	}
	cmd := exec.Command("bash", "-c", "set -eo pipefail; "+loop)
	cmd.Env = append(os.Environ(), "ONE="+script, "TAG="+tag, "OUT="+out)
	start := time.Now()
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("shell baseline (%d at a time): %v: %s", parallel, err, o)
	}
	took := time.Since(start)
	var added int64
	for _, t := range ts {
		for _, part := range []string{"dump", "data"} {
			data, err := os.ReadFile(filepath.Join(out, t.name+"."+part+".json"))
			if err != nil {
				b.Fatal(err)
			}
			var sum struct {
				DataAdded int64 `json:"data_added"`
			}
			if err := json.Unmarshal(data, &sum); err != nil {
				b.Fatalf("tenant %s: restic's summary %q: %v", t.name, data, err)
			}
			added += sum.DataAdded
		}
	}
	return took, added
}

// metrics collects each iteration's figures; the medians are reported.
type metrics map[string][]float64

func (m metrics) add(unit string, v float64) { m[unit] = append(m[unit], v) }

func (m metrics) report(b *testing.B) {
	for unit, vs := range m {
		b.ReportMetric(medianOf(vs), unit)
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// BenchmarkNightlyBackups backs up TENANTFLOW_BENCH_TENANTS tenants (20
// by default) of TENANTFLOW_BENCH_TENANT_MB each, all at once through the
// API: first a full backup, then, after 1 % of each tenant's data changed,
// the nightly run (T_tf, until the API lists every backup; its retention
// after that is reported apart). Against it, after another 1 % changed
// each time, the same restic commands per tenant from a shell loop, one
// tenant after the other (T_sh) and as many at once as the worker runs
// (xargs -P N: the worker runs every tenant's backup activity at once).
// Target: T_tf ≤ 1.1 × T_sh.
func BenchmarkNightlyBackups(b *testing.B) {
	n := benchInt(b, "TENANTFLOW_BENCH_TENANTS", 20)
	bb := startBackupBench(b)
	script := bb.shellScript()
	m := metrics{}
	b.ResetTimer()
	for i := range b.N {
		ts := bb.provision(n, "nb", nil)

		start, full := bb.requestBackups(ts, false)
		fullT, _, fullAdded := lastListed(start, full)

		changed, files := bb.change(ts)
		start, nightly := bb.requestBackups(ts, false)
		tf, tfDone, tfAdded := lastListed(start, nightly)
		var acts, tooks []float64
		for _, bt := range nightly {
			acts = append(acts, bt.activity.Seconds())
			tooks = append(tooks, bt.backup.Took.Seconds())
		}

		seqChanged, _ := bb.change(ts)
		seq, seqAdded := bb.runShell(script, fmt.Sprintf("sh-seq-%d", i), ts, 1)
		parChanged, _ := bb.change(ts)
		par, parAdded := bb.runShell(script, fmt.Sprintf("sh-par-%d", i), ts, n)

		m.add("full-s", fullT.Seconds())
		m.add("full-MB/s", mib(int64(n*bb.mb)<<20)/fullT.Seconds())
		m.add("tf-s", tf.Seconds())
		m.add("tf-with-retention-s", tfDone.Seconds())
		m.add("sh-seq-s", seq.Seconds())
		m.add("sh-par-s", par.Seconds())
		m.add("tf/sh-seq", tf.Seconds()/seq.Seconds())
		m.add("tf/sh-par", tf.Seconds()/par.Seconds())
		m.add("changed-MB", mib(changed))
		m.add("tf-added-MB", mib(tfAdded))
		m.add("sh-seq-added-MB", mib(seqAdded))
		m.add("sh-par-added-MB", mib(parAdded))
		b.Logf("%d tenants × %d MB: full backup of all %s (added %.0f MB); 1 %% changed (%.1f MB in %d files, all tenants):"+
			" Tenantflow %s until all listed (%s with retention; activity median %.1f s, restic's part median %.1f s), added %.1f MB (%.1f× changed);"+
			" shell loop %s (%.1f MB changed, added %.1f MB); shell xargs -P %d %s (%.1f MB changed, added %.1f MB);"+
			" T_tf/T_sh %.2f sequential, %.2f parallel",
			n, bb.mb, fullT.Round(time.Millisecond), mib(fullAdded), mib(changed), files,
			tf.Round(time.Millisecond), tfDone.Round(time.Millisecond), medianOf(acts), medianOf(tooks), mib(tfAdded), float64(tfAdded)/float64(changed),
			seq.Round(time.Millisecond), mib(seqChanged), mib(seqAdded), n, par.Round(time.Millisecond), mib(parChanged), mib(parAdded),
			tf.Seconds()/seq.Seconds(), tf.Seconds()/par.Seconds())
		destroyAll(bb.p, tenantNames(ts))
	}
	b.StopTimer()
	m.report(b)
}

func tenantNames(ts []*benchTenant) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.name
	}
	return out
}

// BenchmarkFirstBackupThroughput times one tenant's first full backup of
// TENANTFLOW_BENCH_TENANT_MB (200 by default) through the API, until it is
// listed, with the activity's own times, against `tar -cf` of the same
// volume directory (page-cached: the second of two runs) and a plain
// `restic backup` of it by hand into a new repository. The tenant's policy
// drills its first backup at once; the drill's duration is reported.
func BenchmarkFirstBackupThroughput(b *testing.B) {
	bb := startBackupBench(b)
	m := metrics{}
	b.ResetTimer()
	for i := range b.N {
		t := bb.provision(1, "fb", map[string]any{"every": "24h", "drillEvery": "24h"})[0]
		size := int64(bb.mb) << 20

		archive := filepath.Join(bb.tmp, fmt.Sprintf("plain-%d.tar", i))
		var tarT time.Duration
		for range 2 {
			_ = os.Remove(archive)
			syncDisks(b)
			start := time.Now()
			if out, err := exec.Command("tar", "-cf", archive, "-C", t.dir, ".").CombinedOutput(); err != nil {
				b.Fatalf("tar: %v: %s", err, out)
			}
			tarT = time.Since(start)
		}
		_ = os.Remove(archive)
		syncDisks(b)

		start, bts := bb.requestBackups([]*benchTenant{t}, true)
		bt := bts[0]
		apiT := bt.listed.Sub(start)
		st := bb.p.backupsOf(t.name)
		drill := time.Duration(st["lastDrill"].(map[string]any)["took"].(float64))

		repo, key := filepath.Join(bb.tmp, fmt.Sprintf("hand-%d", i)), filepath.Join(bb.tmp, fmt.Sprintf("hand-%d.key", i))
		if err := os.WriteFile(key, []byte(strconv.FormatUint(rand.Uint64(), 16)), 0o600); err != nil {
			b.Fatal(err)
		}
		env := append(os.Environ(), "RESTIC_REPOSITORY="+repo, "RESTIC_PASSWORD_FILE="+key, "TZ=UTC")
		resticCmd := func(dir string, args ...string) *exec.Cmd {
			c := exec.Command("restic", append([]string{"--no-cache"}, args...)...)
			c.Dir, c.Env = dir, env
			return c
		}
		// Tenantflow's first backup makes the repository too: restic
		// init is timed apart.
		start = time.Now()
		if out, err := resticCmd("", "init").CombinedOutput(); err != nil {
			b.Fatalf("restic init: %v: %s", err, out)
		}
		initT := time.Since(start)
		syncDisks(b)
		start = time.Now()
		if out, err := resticCmd(t.dir, "backup", "--host", "tenantflow", "-q", ".").CombinedOutput(); err != nil {
			b.Fatalf("restic backup: %v: %s", err, out)
		}
		handT := time.Since(start)

		rate := func(d time.Duration) float64 { return mib(size) / d.Seconds() }
		m.add("volume-MB", mib(size))
		m.add("api-s", apiT.Seconds())
		m.add("api-MB/s", rate(apiT))
		m.add("activity-s", bt.activity.Seconds())
		m.add("took-s", bt.backup.Took.Seconds())
		m.add("tar-MB/s", rate(tarT))
		m.add("restic-MB/s", rate(handT))
		m.add("restic-init-s", initT.Seconds())
		m.add("api/restic", apiT.Seconds()/handT.Seconds())
		m.add("api/restic+init", apiT.Seconds()/(initT+handT).Seconds())
		m.add("drill-s", drill.Seconds())
		b.Logf("first backup of %.0f MB (backup bytes %d, added %.1f MB): through the API %s until listed (%.0f MB/s);"+
			" the activity ran %s (init included), its Took %s; tar -cf %s (%.0f MB/s); by hand restic init %s, restic backup %s (%.0f MB/s);"+
			" API/by hand %.2f (%.2f with init); drill %s",
			mib(size), bt.backup.Bytes, mib(bt.backup.Added), apiT.Round(time.Millisecond), rate(apiT), bt.activity.Round(time.Millisecond),
			bt.backup.Took.Round(time.Millisecond), tarT.Round(time.Millisecond), rate(tarT), initT.Round(time.Millisecond),
			handT.Round(time.Millisecond), rate(handT), apiT.Seconds()/handT.Seconds(), apiT.Seconds()/(initT+handT).Seconds(),
			drill.Round(time.Millisecond))
		destroyAll(bb.p, []string{t.name})
	}
	b.StopTimer()
	m.report(b)
}

// latencySampler times GET / of a tenant, one request at a time, beside
// the load.
type latencySampler struct {
	mu    sync.Mutex
	times []time.Duration
	fails int
	stop  chan struct{}
	done  sync.WaitGroup
}

func sampleLatency(target string, pause time.Duration) *latencySampler {
	s := &latencySampler{stop: make(chan struct{})}
	c := &http.Client{Timeout: 10 * time.Second}
	s.done.Go(func() {
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(pause):
			}
			start := time.Now()
			resp, err := c.Get(target + "/")
			el := time.Since(start)
			ok := err == nil && resp.StatusCode == http.StatusOK
			if resp != nil {
				resp.Body.Close()
			}
			s.mu.Lock()
			if ok {
				s.times = append(s.times, el)
			} else {
				s.fails++
			}
			s.mu.Unlock()
		}
	})
	return s
}

// cut returns what was sampled since the last cut.
func (s *latencySampler) cut() (times []time.Duration, fails int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	times, fails = s.times, s.fails
	s.times, s.fails = nil, 0
	return times, fails
}

func (s *latencySampler) close() {
	close(s.stop)
	s.done.Wait()
}

// percentile is the p-th quantile of ds (0 when empty).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1))]
}

// BenchmarkRequestsDuringBackup backs a tenant with
// TENANTFLOW_BENCH_TENANT_MB (200 by default) up on demand through the API
// while it serves: 4 users requesting GET / every 10 ms each, and a
// sampler timing one request every 10 ms. It reports the requests and the
// failures (target 0) from the request until the operation is over, and
// the sampled latencies then against the same load for 5 s before.
func BenchmarkRequestsDuringBackup(b *testing.B) {
	bb := startBackupBench(b)
	m := metrics{}
	b.ResetTimer()
	for range b.N {
		t := bb.provision(1, "lb", nil)[0]
		u, err := url.Parse(t.url)
		if err != nil {
			b.Fatal(err)
		}
		load := harness.StartLoad(u.Host, []string{u.Host}, "/", 4, 10*time.Millisecond, servesItsData(t.name))
		sampler := sampleLatency(t.url, 10*time.Millisecond)
		time.Sleep(5 * time.Second)
		before := load.Snapshot()
		idle, idleFails := sampler.cut()

		start, bts := bb.requestBackups([]*benchTenant{t}, false)
		after := load.Snapshot()
		busy, busyFails := sampler.cut()
		sampler.close()
		load.Stop()
		opT := bts[0].done.Sub(start)

		requests := after.Requests - before.Requests
		failures := after.Failures[len(before.Failures):]
		m.add("requests", float64(requests))
		m.add("failures", float64(len(failures)+busyFails))
		m.add("backup-s", opT.Seconds())
		m.add("p50-ms", float64(percentile(busy, 0.5).Microseconds())/1000)
		m.add("p99-ms", float64(percentile(busy, 0.99).Microseconds())/1000)
		m.add("idle-p99-ms", float64(percentile(idle, 0.99).Microseconds())/1000)
		b.Logf("backup of %d MB on demand, %s until the operation was over: %d requests, %d failed (before: %d failed);"+
			" sampled latency p50 %s p99 %s max %s over %d requests (5 s before: p50 %s p99 %s over %d, %d failed)",
			bb.mb, opT.Round(time.Millisecond), requests, len(failures)+busyFails, len(before.Failures),
			percentile(busy, 0.5).Round(10*time.Microsecond), percentile(busy, 0.99).Round(10*time.Microsecond),
			percentile(busy, 1).Round(10*time.Microsecond), len(busy),
			percentile(idle, 0.5).Round(10*time.Microsecond), percentile(idle, 0.99).Round(10*time.Microsecond), len(idle), idleFails)
		if len(failures) > 0 {
			b.Errorf("%d requests failed during the backup; first: %s", len(failures), failures[0])
		}
		if busyFails > 0 {
			b.Errorf("%d sampled requests failed during the backup", busyFails)
		}
		if requests == 0 || len(busy) == 0 {
			b.Errorf("no request answered during the backup")
		}
		destroyAll(bb.p, []string{t.name})
	}
	b.StopTimer()
	m.report(b)
}
