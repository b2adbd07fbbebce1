package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/api"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/wiring"
)

// sample is one request of a tenant's users: when it was sent, when it
// ended, and whether it got the right answer.
type sample struct {
	start, end time.Time
	ok, write  bool
}

// users send requests to one tenant through the proxy, as its users
// would: readers GET its page, a writer POSTs a hit (a row in its
// database) every writePause; every request is recorded.
type users struct {
	stop    atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples []sample
	written atomic.Int64 // hits acknowledged
	sent    atomic.Int64 // hits sent
}

func startUsers(proxyAddr, host, tenant string, readers int, pause, writePause time.Duration) *users {
	u := &users{}
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	do := func(method, path string) bool {
		req, _ := http.NewRequest(method, "http://"+proxyAddr+path, nil)
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && (method == http.MethodPost || servesItsData(tenant)(host, string(body)))
	}
	run := func(method, path string, pause time.Duration) {
		for !u.stop.Load() {
			s := sample{start: time.Now(), write: method == http.MethodPost}
			if s.write {
				u.sent.Add(1)
			}
			s.ok = do(method, path)
			s.end = time.Now()
			if s.ok && s.write {
				u.written.Add(1)
			}
			u.mu.Lock()
			u.samples = append(u.samples, s)
			u.mu.Unlock()
			time.Sleep(pause)
		}
	}
	for range readers {
		u.wg.Go(func() { run(http.MethodGet, "/", pause) })
	}
	u.wg.Go(func() { run(http.MethodPost, "/hits", writePause) })
	return u
}

func (u *users) close() {
	u.stop.Store(true)
	u.wg.Wait()
}

// between returns the samples sent in [from, to].
func (u *users) between(from, to time.Time) []sample {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []sample
	for _, s := range u.samples {
		if !s.start.Before(from) && !s.start.After(to) {
			out = append(out, s)
		}
	}
	return out
}

// delayed is how slow an answer counts as part of the interruption.
const delayed = 200 * time.Millisecond

// interruption is, among samples, the time from the first failed or
// delayed request to the end of the first good one sent after the last
// bad one; failed counts the failed requests.
func interruption(samples []sample) (d time.Duration, failed int) {
	slices.SortFunc(samples, func(a, b sample) int { return a.start.Compare(b.start) })
	bad := func(s sample) bool { return !s.ok || s.end.Sub(s.start) > delayed }
	first, last := -1, -1
	for i, s := range samples {
		if !s.ok {
			failed++
		}
		if bad(s) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return 0, 0
	}
	for _, s := range samples[last+1:] {
		if !bad(s) {
			return s.end.Sub(samples[first].start), failed
		}
	}
	return samples[len(samples)-1].end.Sub(samples[first].start), failed
}

// BenchmarkMoveUnderLoad moves one tenant with 200 MB of data back and
// forth between two Docker hosts (engines in network namespaces of their
// own) while its users keep reading and writing through Caddy, and
// reports the interruption each move caused (first failed or delayed
// request to the first good one), its p50/p95 over the moves, the
// move's total time against a plain copy of the same data between the
// two hosts' volume directories (cp -a), and the writes lost (must be
// none). TENANTFLOW_BENCH_MOVES sets the number of moves (10),
// TENANTFLOW_BENCH_MOVE_MB the data (200).
func BenchmarkMoveUnderLoad(b *testing.B) {
	moves := benchInt(b, "TENANTFLOW_BENCH_MOVES", 10)
	mb := benchInt(b, "TENANTFLOW_BENCH_MOVE_MB", 200)
	caddy := harness.StartCaddy(b, "tenantflow")
	_, port, _ := strings.Cut(caddy.HTTPAddr, ":")
	p := startPlatformWith(b, &wiring.Config{Proxy: proxy.Config{Enabled: true, AdminURL: caddy.AdminURL, Server: caddy.Server,
		Listen: caddy.HTTPAddr, Domain: testDomain, PublicScheme: "http", PublicPort: port}}, func(c *api.Config) { c.Placement = true })
	hostsOf := map[string]*fleetHost{
		"host-a": startFleetHost(b, p, "host-a", "z1", "2Gi"),
		"host-b": startFleetHost(b, p, "host-b", "z2", "2Gi"),
	}
	name := tenantName("mvb")
	b.Cleanup(func() { p.destroy(name) })
	code, body, _ := p.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "template": "light", "stage": "prod", "host": "host-a"})
	require.Equal(b, http.StatusAccepted, code, body)
	st := p.waitState(name, 100*time.Millisecond, 3*time.Minute)
	require.Equal(b, "active", st["state"], st)

	dir, err := hostsOf["host-a"].driver.VolumeDir(context.Background(), name, "", "data")
	require.NoError(b, err)
	bb := &backupBench{mb: mb}
	require.NoError(b, bb.fill(&benchTenant{name: name, dir: dir}))
	syncDisks(b)
	plain := plainCopy(b, dir, hostsOf["host-b"].engine)

	host := name + "." + testDomain
	u := startUsers(caddy.HTTPAddr, host, name, 4, 10*time.Millisecond, 50*time.Millisecond)
	time.Sleep(2 * time.Second) // the users' steady state first
	var gaps, totals []time.Duration
	failed := 0
	at := "host-a"
	b.ResetTimer()
	for i := range moves {
		to := map[string]string{"host-a": "host-b", "host-b": "host-a"}[at]
		start := time.Now()
		code, body, _ := p.do(http.MethodPost, "/v1/tenants/"+name+"/move", map[string]any{"to": to})
		require.Equal(b, http.StatusAccepted, code, body)
		st := p.waitFor(name, 100*time.Millisecond, 5*time.Minute, "move "+fmt.Sprint(i), func(st map[string]any) bool {
			m, _ := st["move"].(map[string]any)
			return m != nil && m["finishedAt"] != nil && m["requestedAt"] != nil && !parseTime(b, m["requestedAt"]).Before(start.Add(-time.Second))
		})
		m := st["move"].(map[string]any)
		require.Equal(b, "done", m["phase"], m)
		end := parseTime(b, m["finishedAt"])
		time.Sleep(time.Second) // the answers of requests sent before the end
		gap, f := interruption(u.between(start, end))
		gaps, failed = append(gaps, gap), failed+f
		totals = append(totals, end.Sub(parseTime(b, m["requestedAt"])))
		b.Logf("move %d %s → %s: interruption %s (%d failed), total %s; copies %v", i+1, at, to, gap.Round(time.Millisecond), f,
			totals[len(totals)-1].Round(time.Millisecond), m["copies"])
		at = to
	}
	b.StopTimer()
	u.close()
	hits, _ := appStateVia(b, caddy.HTTPAddr, host)
	require.GreaterOrEqual(b, hits, float64(u.written.Load()), "every acknowledged write survived the moves")
	require.LessOrEqual(b, hits, float64(u.sent.Load()))

	slices.Sort(gaps)
	pct := func(q float64) time.Duration { return gaps[int(q*float64(len(gaps)-1)+0.5)] }
	b.ReportMetric(float64(pct(0.5).Milliseconds()), "interruption-p50-ms")
	b.ReportMetric(float64(pct(0.95).Milliseconds()), "interruption-p95-ms")
	b.ReportMetric(float64(gaps[len(gaps)-1].Milliseconds()), "interruption-max-ms")
	b.ReportMetric(float64(failed), "failed-requests")
	b.ReportMetric(float64(len(u.samples)), "requests")
	b.ReportMetric(median(totals).Seconds(), "move-total-s")
	b.ReportMetric(plain.Seconds(), "plain-copy-s")
	b.ReportMetric(median(totals).Seconds()/plain.Seconds(), "move/plain-copy")
	b.ReportMetric(float64(u.written.Load()), "writes-acknowledged")
	b.ReportMetric(hits-float64(u.written.Load()), "writes-unacknowledged-kept")
}

// plainCopy times cp -a of the volume directory into the other engine's
// data root (what an operator would do by hand, the tenant stopped).
func plainCopy(b *testing.B, dir string, to *harness.Dockerd) time.Duration {
	b.Helper()
	dst := filepath.Join(to.Dir, "plain-copy")
	defer os.RemoveAll(dst)
	start := time.Now()
	out, err := exec.Command("cp", "-a", "--reflink=never", dir, dst).CombinedOutput()
	require.NoError(b, err, string(out))
	syncDisks(b)
	return time.Since(start)
}

func parseTime(t testing.TB, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err, "time %v", v)
	return at
}

// appStateVia reads the app's state through the proxy.
func appStateVia(t testing.TB, proxyAddr, host string) (hits float64, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+proxyAddr+"/", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(raw))
	_, after, ok := strings.Cut(string(raw), `"hits":`)
	require.True(t, ok, string(raw))
	_, err = fmt.Sscan(strings.TrimLeft(after, " "), &hits)
	require.NoError(t, err, string(raw))
	return hits, string(raw)
}
