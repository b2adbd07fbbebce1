package devproxy_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/internal/devproxy"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// A tenant routed through dev's Caddy by the proxy activities answers at
// http://<tenant>.localhost:<port>, and still does after Caddy restarts on
// another port: the route comes back from Caddy's autosave.
func TestRouteSurvivesARestart(t *testing.T) {
	caddy := harness.DevCaddy(t)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello from "+r.Host)
	}))
	t.Cleanup(app.Close)
	ctx := context.Background()
	cfg := devproxy.Config{Caddy: caddy, Listen: harness.Addr(harness.FreePort(t)), Admin: harness.Addr(harness.FreePort(t)), Dir: t.TempDir()}

	p := start(t, cfg)
	acts, err := proxy.New(p.Wiring(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	route, err := acts.EnsureRoute(ctx, proxy.RouteInput{Tenant: "acme", Upstreams: []string{strings.TrimPrefix(app.URL, "http://")}, Owner: "run-1"})
	require.NoError(t, err)
	require.Equal(t, p.URL("acme"), route.URL, "the URL the tenant's state shows")
	require.Equal(t, "hello from acme.localhost:"+port(cfg.Listen), get(t, route.URL))
	p.Close()

	cfg.Listen = harness.Addr(harness.FreePort(t))
	p = start(t, cfg)
	require.Equal(t, "hello from acme.localhost:"+port(cfg.Listen), get(t, p.URL("acme")), "the route is back on the new port")
}

// A port in use stops dev at start with what Caddy said, not at the first
// tenant's route.
func TestPortInUseFailsAtStart(t *testing.T) {
	caddy := harness.DevCaddy(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { busy.Close() })
	_, err = devproxy.Start(context.Background(), devproxy.Config{Caddy: caddy, Listen: busy.Addr().String(), Admin: harness.Addr(harness.FreePort(t)), Dir: t.TempDir()}, slog.New(slog.DiscardHandler))
	require.Error(t, err)
	require.Contains(t, err.Error(), "address already in use")
}

// Caddy's admin API has no authentication: only loopback addresses.
func TestOnlyLoopback(t *testing.T) {
	for _, c := range []devproxy.Config{
		{Listen: "0.0.0.0:8088", Admin: "127.0.0.1:2119"},
		{Listen: "127.0.0.1:8088", Admin: ":2119"},
		{Listen: "127.0.0.1:8088", Admin: "127.0.0.1:8088"},
		{Listen: "127.0.0.1", Admin: "127.0.0.1:2119"},
	} {
		c.Caddy, c.Dir = "/nonexistent/caddy", t.TempDir()
		_, err := devproxy.Start(context.Background(), c, slog.New(slog.DiscardHandler))
		require.Error(t, err, "%+v", c)
		require.NotContains(t, err.Error(), "/nonexistent/caddy", "refused before starting anything: %+v", c)
	}
}

// An autosave that is not JSON is named, not overwritten.
func TestBrokenAutosave(t *testing.T) {
	dir := t.TempDir()
	autosave := filepath.Join(dir, "config", "caddy", "autosave.json")
	require.NoError(t, os.MkdirAll(filepath.Dir(autosave), 0o700))
	require.NoError(t, os.WriteFile(autosave, []byte("{not json"), 0o600))
	_, err := devproxy.Start(context.Background(), devproxy.Config{Caddy: "/nonexistent/caddy", Listen: "127.0.0.1:18088", Admin: "127.0.0.1:12119", Dir: dir}, slog.New(slog.DiscardHandler))
	require.ErrorContains(t, err, autosave)
	b, _ := os.ReadFile(autosave)
	require.Equal(t, "{not json", string(b))
}

func start(t *testing.T, cfg devproxy.Config) *devproxy.Proxy {
	t.Helper()
	p, err := devproxy.Start(context.Background(), cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := harness.LocalhostClient(5 * time.Second)
	defer c.CloseIdleConnections()
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", url, b)
	return string(b)
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
