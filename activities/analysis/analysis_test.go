package analysis_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/analysis"
	"github.com/tenantflow/tenantflow/activities/supervision"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// app answers its home page as asked: 200, 500, or 200 after a delay.
func app(t *testing.T, status int, delay time.Duration) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// A real Prometheus scrapes a real blackbox exporter probing three apps,
// registered as supervision registers tenants; the activity reads what the
// probes saw of each group.
func TestCompareCanariesReadsTheProbes(t *testing.T) {
	p := harness.StartPrometheus(t)
	sv, err := supervision.NewDriver(supervision.Config{Driver: supervision.DriverPrometheus, Timeout: 5 * time.Second,
		Prometheus: supervision.PrometheusConfig{SDDir: p.SDDir, URL: p.URL}}, harness.Logger(t))
	require.NoError(t, err)
	ctx := context.Background()
	begin := time.Now()
	for name, url := range map[string]string{"good": app(t, 200, 0), "good-too": app(t, 200, 0), "failing": app(t, 500, 0), "slow": app(t, 200, 300*time.Millisecond)} {
		require.NoError(t, sv.Watch(ctx, supervision.WatchInput{Tenant: name, Stage: "prod", URL: url, Owner: "run-1"}))
	}
	a, err := analysis.New(analysis.Config{PrometheusURL: p.URL}, harness.Logger(t))
	require.NoError(t, err)

	rng := 20 * time.Second
	var cmp analysis.Comparison
	harness.WaitFor(t, "ten probes of each group", time.Minute, func() error {
		cmp, err = a.CompareCanaries(ctx, analysis.CompareInput{Release: "r1",
			Canary: analysis.Group{Tenants: []string{"failing", "slow"}, Until: time.Now()}, Baseline: analysis.Group{Tenants: []string{"good", "good-too"}, Until: time.Now()}, Range: rng})
		if err != nil {
			return err
		}
		if cmp.Canary.Probes < 10 || cmp.Baseline.Probes < 10 {
			return fmt.Errorf("%+v", cmp)
		}
		return nil
	})
	c, b := cmp.Canary, cmp.Baseline
	require.Zero(t, b.Failed, "the good apps' probes pass: %+v", b)
	require.Zero(t, b.ErrorRate)
	require.InDelta(t, 0.5, c.ErrorRate, 0.2, "the failing app's probes fail, the slow one's pass: %+v", c)
	require.Positive(t, c.Failed, "the failing app's probes are counted as failed")
	require.Less(t, c.Failed, c.Probes, "the slow app's are not")

	slow, err := a.CompareCanaries(ctx, analysis.CompareInput{Canary: analysis.Group{Tenants: []string{"slow"}, Until: time.Now()},
		Baseline: analysis.Group{Tenants: []string{"good"}, Until: time.Now()}, Range: rng})
	require.NoError(t, err)
	require.Greater(t, slow.Canary.LatencyMillis, 300.0, "%+v", slow)
	require.Less(t, slow.Baseline.LatencyMillis, 150.0, "%+v", slow)
	require.Zero(t, slow.Canary.Failed)

	// Before the apps were registered nothing was probed; an empty group
	// has no figures; another tenant's probes are not counted.
	past, err := a.CompareCanaries(ctx, analysis.CompareInput{Canary: analysis.Group{Tenants: []string{"failing"}, Until: begin.Add(-time.Second)},
		Baseline: analysis.Group{}, Range: rng})
	require.NoError(t, err)
	require.Equal(t, analysis.Comparison{}, past)
	prefix, err := a.CompareCanaries(ctx, analysis.CompareInput{Canary: analysis.Group{Tenants: []string{"good-t"}, Until: time.Now()}, Range: rng})
	require.NoError(t, err)
	require.Zero(t, prefix.Canary.Probes, "a name is matched whole: good-t is not good-too")
}

func TestCompareCanariesRefusesWhatItCannotDo(t *testing.T) {
	ctx := context.Background()
	none, err := analysis.New(analysis.Config{}, harness.Logger(t))
	require.NoError(t, err)
	_, err = none.CompareCanaries(ctx, analysis.CompareInput{Range: time.Minute})
	e := harness.RequireNonRetryable(t, err, analysis.ErrNotConfigured)
	require.Contains(t, e.Error(), analysis.EnvPrometheusURL)

	a, err := analysis.New(analysis.Config{PrometheusURL: "http://127.0.0.1:1"}, harness.Logger(t))
	require.NoError(t, err)
	_, err = a.CompareCanaries(ctx, analysis.CompareInput{Canary: analysis.Group{Tenants: []string{`a"}or{x`}}, Range: time.Minute})
	harness.RequireNonRetryable(t, err, "BadInput")
	_, err = a.CompareCanaries(ctx, analysis.CompareInput{Canary: analysis.Group{Tenants: []string{"acme"}}, Range: time.Minute})
	harness.RequireRetryable(t, err) // Prometheus unreachable: retried

	for _, c := range []struct {
		cfg  analysis.Config
		want string
	}{
		{analysis.Config{PrometheusURL: "ftp://x", Job: "j", Timeout: time.Second}, analysis.EnvPrometheusURL},
		{analysis.Config{PrometheusURL: "http://u:p@x", Job: "j", Timeout: time.Second}, analysis.EnvPrometheusURL + ": must not contain credentials"},
		{analysis.Config{Job: `a"b`, Timeout: time.Second}, analysis.EnvJob},
		{analysis.Config{Job: "j", Timeout: -time.Second}, analysis.EnvTimeout},
	} {
		err := c.cfg.Validate()
		require.Error(t, err)
		require.True(t, strings.Contains(err.Error(), c.want), "%v", err)
	}
}
