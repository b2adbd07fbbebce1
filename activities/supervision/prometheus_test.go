package supervision_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/supervision"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// eventually polls cond every 250 ms until it succeeds or timeout passes.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, timeout, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// tenantApp answers 200 on /healthz only, so a probe of the wrong path fails.
func tenantApp(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// newPromDriver is the driver on the Prometheus instance.
func newPromDriver(t *testing.T, p *harness.Prometheus) supervision.Driver {
	t.Helper()
	cfg := promConfig(p.SDDir)
	cfg.Prometheus.URL = p.URL
	d, err := supervision.NewDriver(cfg, harness.Logger(t))
	require.NoError(t, err)
	return d
}

// activeTargets lists the job's active targets, by tenant label.
func activeTargets(p *harness.Prometheus) (map[string]string, error) {
	var data struct {
		ActiveTargets []struct {
			Labels    map[string]string `json:"labels"`
			ScrapeURL string            `json:"scrapeUrl"`
		} `json:"activeTargets"`
	}
	if err := p.API("/api/v1/targets?state=active", &data); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, tg := range data.ActiveTargets {
		if tg.Labels["job"] == harness.PrometheusJob {
			out[tg.Labels["tenant"]] = tg.Labels["instance"]
		}
	}
	return out, nil
}

func TestPrometheusSupervision(t *testing.T) {
	p := harness.StartPrometheus(t)
	d := newPromDriver(t, p)
	a := supervision.NewActivities(d, harness.Logger(t))
	require.NoError(t, d.Check(ctx(t)))
	app := tenantApp(t)
	in := supervision.WatchInput{Tenant: "acme", Stage: "prod", URL: app.URL + "/healthz", Owner: "run-1"}
	file := filepath.Join(p.SDDir, "tenantflow-acme.json")

	// Create: the file_sd file says what the brief says, readable by a
	// Prometheus running as another user.
	require.NoError(t, a.StartSupervision(ctx(t), in))
	first, err := os.ReadFile(file)
	require.NoError(t, err)
	var groups []struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels"`
	}
	require.NoError(t, json.Unmarshal(first, &groups))
	require.Len(t, groups, 1)
	require.Equal(t, []string{in.URL}, groups[0].Targets)
	require.Equal(t, map[string]string{"tenant": "acme", "stage": "prod", supervision.OwnerLabel: "run-1"}, groups[0].Labels)
	st, err := os.Stat(file)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o644), st.Mode().Perm())

	// Prometheus picked it up and the blackbox probe of the path succeeds.
	eventually(t, "probe_success of acme is 1", 40*time.Second, func() error {
		var data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
			} `json:"result"`
		}
		q := url.QueryEscape(`probe_success{tenant="acme"}`)
		if err := p.API("/api/v1/query?query="+q, &data); err != nil {
			return err
		}
		res := data.Result
		if len(res) != 1 || res[0].Value[1] != "1" {
			return fmt.Errorf("result %v", res)
		}
		// The owner label is dropped after relabeling: no series carries it.
		if _, ok := res[0].Metric[supervision.OwnerLabel]; ok || res[0].Metric["stage"] != "prod" || res[0].Metric["instance"] != in.URL {
			return fmt.Errorf("labels %v", res[0].Metric)
		}
		return nil
	})

	// Second call: one file, same bytes, no temporary file left behind.
	require.NoError(t, a.StartSupervision(ctx(t), in))
	again, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Equal(t, string(first), string(again))
	entries, err := os.ReadDir(p.SDDir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	require.Equal(t, "tenantflow-acme.json", entries[0].Name())

	// The tenant goes down: the shipped TenantDown rule fires for it.
	app.Close()
	eventually(t, "TenantDown firing for acme", 40*time.Second, func() error {
		var data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		}
		if err := p.API("/api/v1/alerts", &data); err != nil {
			return err
		}
		for _, al := range data.Alerts {
			if al.Labels["alertname"] == "TenantDown" && al.Labels["tenant"] == "acme" && al.State == "firing" {
				if al.Labels["stage"] != "prod" || al.Labels["severity"] != "critical" {
					return fmt.Errorf("alert labels %v", al.Labels)
				}
				return nil
			}
		}
		return fmt.Errorf("alerts %+v", data.Alerts)
	})

	// Remove: the file goes, Prometheus drops the target; again is fine.
	require.NoError(t, a.StopSupervision(ctx(t), supervision.WatchRef{Tenant: "acme", Owner: "run-1"}))
	_, err = os.Stat(file)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.NoError(t, a.StopSupervision(ctx(t), supervision.WatchRef{Tenant: "acme", Owner: "run-1"}))
	eventually(t, "acme target gone", 40*time.Second, func() error {
		targets, err := activeTargets(p)
		if err != nil {
			return err
		}
		if _, ok := targets["acme"]; ok {
			return fmt.Errorf("still active: %v", targets)
		}
		return nil
	})
}

func TestPrometheusOutage(t *testing.T) {
	p := harness.StartPrometheus(t)
	d := newPromDriver(t, p)
	a := supervision.NewActivities(d, harness.Logger(t))
	require.NoError(t, d.Check(ctx(t)))

	p.Server.Stop()
	harness.RequireRetryable(t, d.Check(ctx(t)))
	// Registering needs only the directory: provisioning goes on while
	// Prometheus is down, and Prometheus finds the tenant when it is back.
	app := tenantApp(t)
	require.NoError(t, a.StartSupervision(ctx(t), supervision.WatchInput{Tenant: "beta", Stage: "test", URL: app.URL + "/healthz"}))

	p.Server.Start()
	p.WaitReady(t)
	require.NoError(t, d.Check(ctx(t)))
	eventually(t, "beta target active", 40*time.Second, func() error {
		targets, err := activeTargets(p)
		if err != nil {
			return err
		}
		if targets["beta"] != app.URL+"/healthz" {
			return fmt.Errorf("targets %v", targets)
		}
		return nil
	})
}

// A directory the worker cannot write is a misconfiguration a retry cannot
// fix: the activity fails permanently and names the setting.
func TestPrometheusUnwritableSDDir(t *testing.T) {
	base := t.TempDir()
	notDir := filepath.Join(base, "file")
	require.NoError(t, os.WriteFile(notDir, nil, 0o644))
	cases := map[string]string{
		"missing":    filepath.Join(base, "missing"),
		"not a dir":  notDir,
		"read-only":  readOnlyDir(t, base),
		"below file": filepath.Join(notDir, "sd"),
	}
	for name, dir := range cases {
		if dir == "" {
			continue
		}
		t.Run(name, func(t *testing.T) {
			d, err := supervision.NewDriver(promConfig(dir), harness.Logger(t))
			require.NoError(t, err, "NewDriver does no I/O")
			a := supervision.NewActivities(d, harness.Logger(t))
			err = a.StartSupervision(ctx(t), supervision.WatchInput{Tenant: "acme", URL: "http://127.0.0.1:1/"})
			requireAppError(t, err, supervision.ErrMisconfigured)
			require.ErrorContains(t, err, supervision.EnvPrometheusSDDir)
			requireAppError(t, d.Check(ctx(t)), supervision.ErrMisconfigured)
		})
	}
}

// readOnlyDir makes a directory the test process cannot write to. Root
// ignores permissions, so as root it is made immutable (chattr +i); where
// that is not possible the case is left out (the other cases still run).
func readOnlyDir(t *testing.T, base string) string {
	dir := filepath.Join(base, "read-only")
	require.NoError(t, os.Mkdir(dir, 0o555))
	if os.Geteuid() != 0 {
		return dir
	}
	if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
		t.Logf("read-only case left out: chattr +i as root: %v %s", err, out)
		return ""
	}
	t.Cleanup(func() {
		if out, err := exec.Command("chattr", "-i", dir).CombinedOutput(); err != nil {
			t.Errorf("chattr -i %s: %v %s", dir, err, out)
		}
	})
	return dir
}
