package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Caddy is a real Caddy (the Debian package) run for one test, on loopback,
// configured at run time through its admin API like production. It runs
// with --resume: after Stop and Start it serves the config it last had (as
// a systemd-managed Caddy with autosave does), not the initial file.
type Caddy struct {
	// AdminURL is the admin API, http://127.0.0.1:<port>.
	AdminURL string
	// HTTPAddr is 127.0.0.1:<port> of the tenant server: listening from the
	// start when Server is set, else a free port for the code under test to
	// create a server on.
	HTTPAddr string
	// Server is the key under apps.http.servers of the tenant server, or ""
	// when Caddy was started with no apps at all.
	Server string
	// Dir holds the config file and Caddy's autosave and data.
	Dir string

	t           testing.TB
	proc        *Process
	client      *http.Client // to the tenant server, with keep-alive like a browser
	adminClient *http.Client // to the admin API, without: Caddy replaces that server on each change
}

// StartCaddy starts Caddy with its admin API on a free port. With a server
// name, the config also has that HTTP server listening on HTTPAddr with
// automatic HTTPS off and no routes; with "", it holds only the admin
// endpoint, to test code that must create apps.http itself.
func StartCaddy(t testing.TB, server string) *Caddy {
	t.Helper()
	return startCaddy(t, server, Addr(FreePort(t)), nil)
}

// StartCaddyTLS starts Caddy with its tenant server serving HTTPS on
// HTTPAddr: Caddy's automatic HTTPS obtains a certificate for each host
// its routes match from a real ACME server (Pebble, started here,
// resolving names with the DNS server dns and validating TLS-ALPN-01 on
// HTTPAddr). Redirects from port 80 are off.
func StartCaddyTLS(t testing.TB, server, dns string) (*Caddy, *Pebble) {
	t.Helper()
	SkipShort(t, "Caddy")
	port := FreePort(t)
	p := StartPebble(t, dns, port)
	acme := p.ACME()
	return startCaddy(t, server, Addr(port), &acme), p
}

func startCaddy(t testing.TB, server, httpAddr string, acme *CaddyACME) *Caddy {
	t.Helper()
	SkipShort(t, "Caddy")
	bin := RequireBinary(t, "caddy", "caddy")
	dir := t.TempDir()
	c := &Caddy{
		AdminURL: "http://" + Addr(FreePort(t)),
		HTTPAddr: httpAddr,
		Server:   server,
		Dir:      dir,
		t:        t,
		// Transports of their own, so no connection outlives the test.
		client:      &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}},
		adminClient: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	t.Cleanup(c.client.CloseIdleConnections)

	cfg := map[string]any{"admin": map[string]any{"listen": c.AdminURL[len("http://"):]}}
	if server != "" {
		srv := map[string]any{
			"listen":          []string{c.HTTPAddr},
			"automatic_https": map[string]any{"disable": true}, // host matchers would otherwise ask for certificates
			"routes":          []any{},
		}
		apps := map[string]any{"http": map[string]any{"servers": map[string]any{server: srv}}}
		if acme != nil {
			srv["automatic_https"] = map[string]any{"disable_redirects": true}
			apps["tls"] = map[string]any{"automation": map[string]any{"policies": []any{map[string]any{
				"issuers": []any{map[string]any{
					"module": "acme", "ca": acme.DirectoryURL, "trusted_roots_pem_files": []string{acme.ServerCA},
					// Port 80 is not Caddy's here: TLS-ALPN-01 on the
					// tenant server's own port.
					"challenges": map[string]any{"http": map[string]any{"disabled": true}},
				}},
			}}}}
		}
		cfg["apps"] = apps
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "caddy.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	// HOME and XDG_* keep the autosave and certificate storage in dir.
	env := []string{
		"HOME=" + dir,
		"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"),
		"PATH=" + os.Getenv("PATH"),
	}
	c.proc = NewProcess(t, dir, env, bin, "run", "--config", file, "--resume")
	c.Start()
	return c
}

// Start runs Caddy (again) and waits until the admin API answers and every
// loopback listener of the config it resumed accepts connections.
func (c *Caddy) Start() {
	c.t.Helper()
	c.proc.Start()
	WaitFor(c.t, "caddy admin API", 15*time.Second, func() error {
		status, _, err := c.adminDo(http.MethodGet, "/config/", nil)
		if err == nil && status != http.StatusOK {
			err = fmt.Errorf("GET /config/ answered %d", status)
		}
		return err
	})
	_, cfg, _ := c.adminDo(http.MethodGet, "/config/apps/http/servers", nil)
	if bytes.Contains(cfg, []byte(strconv.Quote(c.HTTPAddr))) {
		WaitFor(c.t, "caddy listener "+c.HTTPAddr, 15*time.Second, DialReady(c.HTTPAddr))
	}
}

// Stop terminates Caddy; Start brings it back with its last config.
func (c *Caddy) Stop() { c.proc.Stop() }

// Admin sends one request to the admin API (body is JSON-encoded unless
// nil) and returns the status and body, failing the test if Caddy cannot be
// reached.
func (c *Caddy) Admin(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	status, b, err := c.adminDo(method, path, body)
	if err != nil {
		t.Fatalf("caddy admin %s %s: %v", method, path, err)
	}
	return status, b
}

func (c *Caddy) adminDo(method, path string, body any) (int, []byte, error) {
	return DoJSON(c.adminClient, method, c.AdminURL+path, body, 10*time.Second, nil)
}

// ProxyGet sends GET / to the tenant server with the given Host header, as
// a user's browser would, and returns the status and body. It is safe to
// call from several goroutines.
func (c *Caddy) ProxyGet(host string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.HTTPAddr+"/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// migrateReqSysctl makes the kernel move connections queued on a closing
// SO_REUSEPORT listener to another listener of the group (Linux ≥ 5.14).
const migrateReqSysctl = "/proc/sys/net/ipv4/tcp_migrate_req"

// RequireAcceptQueueMigration makes sure net.ipv4.tcp_migrate_req is 1, as
// deploy/sysctl.d/60-tenantflow-proxy.conf sets it on proxy hosts. Caddy
// 2.6 binds a new SO_REUSEPORT socket on every config change and closes the
// old one: without the setting, a connection the kernel had queued on the
// old socket is reset before Caddy accepted it, so a route switch under
// load would fail a request or two. A test asserting that no request fails
// calls this; it sets the value when it may (root) and is Unavailable
// otherwise.
func RequireAcceptQueueMigration(t testing.TB) {
	t.Helper()
	SkipShort(t, "the kernel's tcp_migrate_req")
	b, err := os.ReadFile(migrateReqSysctl)
	if err != nil {
		Unavailable(t, "kernel has no %s (Linux ≥ 5.14 needed for zero-failure route switches): %v", migrateReqSysctl, err)
		return
	}
	if strings.TrimSpace(string(b)) == "1" {
		return
	}
	if err := os.WriteFile(migrateReqSysctl, []byte("1\n"), 0o644); err != nil {
		Unavailable(t, "net.ipv4.tcp_migrate_req is 0 and cannot be set (%v): run `sysctl -w net.ipv4.tcp_migrate_req=1` as root", err)
		return
	}
	t.Logf("set net.ipv4.tcp_migrate_req=1 (Caddy's config reloads then reset no queued connection)")
}
