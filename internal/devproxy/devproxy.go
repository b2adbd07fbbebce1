// Package devproxy runs a Caddy for `tenantflow dev` (`make run`), so each
// tenant keeps one URL, http://<tenant>.localhost:<port>, across releases,
// moves, decommission and restore, as it keeps <tenant>.<domain> in
// production. It is the real Caddy (the pinned version `make bin/caddy`
// builds from the module proxy, or Debian's), run as a child process and
// configured by the worker's proxy activities through its admin API exactly
// as a production Caddy is: dev does not fake the routing.
//
// Caddy's own autosave keeps the routes under the data dir, and a restart
// resumes them with the listen and admin addresses of the day. Names under
// .localhost resolve to loopback in browsers and curl (RFC 6761), so no
// DNS or /etc/hosts entry is needed. Both addresses must be loopback: the
// admin API has no authentication.
package devproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tenantflow/tenantflow/activities/proxy"
)

// Domain is the parent of dev tenant hosts: <tenant>.localhost.
const Domain = "localhost"

// Server is the key under apps.http.servers of the tenant server, the
// proxy activities' default.
const Server = "tenantflow"

// Config says which Caddy to run and where.
type Config struct {
	// Caddy is the caddy binary.
	Caddy string
	// Listen is the loopback host:port tenants are served on.
	Listen string
	// Admin is the loopback host:port of Caddy's admin API.
	Admin string
	// Dir holds the config, Caddy's autosave and its log.
	Dir string
}

// Proxy is a running Caddy.
type Proxy struct {
	cfg     Config
	port    string // of cfg.Listen
	cmd     *exec.Cmd
	exited  chan struct{} // closed when Caddy has exited
	waitErr error         // how, once exited is closed
	close   sync.Once
	log     *slog.Logger
}

// Start writes the config (the last autosave with today's addresses, or a
// fresh one) and runs Caddy until Close; it returns once the admin API
// answers and the tenant listener accepts connections.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Proxy, error) {
	for _, a := range []struct{ name, addr string }{{"listen", cfg.Listen}, {"admin", cfg.Admin}} {
		if err := checkLoopback(a.addr); err != nil {
			return nil, fmt.Errorf("%s address: %w", a.name, err)
		}
	}
	if cfg.Listen == cfg.Admin {
		return nil, fmt.Errorf("listen and admin addresses are both %s", cfg.Listen)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("caddy dir: %w", err)
	}
	file, err := writeConfig(cfg)
	if err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(cfg.Dir, "caddy.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("caddy log: %w", err)
	}
	defer logFile.Close() // the child holds its own descriptor
	start := logSize(logFile)

	// Not tied to ctx: Close stops it after the worker that uses it.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), cfg.Caddy, "run", "--config", file)
	cmd.Env = []string{
		// Autosave and storage under Dir, not the user's home.
		"HOME=" + cfg.Dir,
		"XDG_CONFIG_HOME=" + filepath.Join(cfg.Dir, "config"),
		"XDG_DATA_HOME=" + filepath.Join(cfg.Dir, "data"),
		"PATH=" + os.Getenv("PATH"),
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group, so the terminal's Ctrl-C reaches dev, which
	// stops Caddy last; and killed with dev.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (run `make bin/caddy`): %w", cfg.Caddy, err)
	}
	_, port, _ := net.SplitHostPort(cfg.Listen) // checked above
	p := &Proxy{cfg: cfg, port: port, cmd: cmd, exited: make(chan struct{}), log: log}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	if err := p.waitReady(ctx); err != nil {
		p.Close()
		return nil, fmt.Errorf("%w\n%s", err, logTail(filepath.Join(cfg.Dir, "caddy.log"), start))
	}
	return p, nil
}

// Wiring is the worker's proxy configuration for this Caddy: tenants at
// http://<tenant>.localhost:<port>.
func (p *Proxy) Wiring() proxy.Config {
	return proxy.Config{
		Enabled:      true,
		AdminURL:     "http://" + p.cfg.Admin,
		Server:       Server,
		Listen:       p.cfg.Listen,
		Domain:       Domain,
		PublicScheme: "http",
		PublicPort:   p.port,
	}
}

// URL is where a tenant's app answers.
func (p *Proxy) URL(tenant string) string {
	return "http://" + tenant + "." + Domain + ":" + p.port
}

// Close stops Caddy gracefully (it finishes the requests it serves), then
// kills it after 10 s.
func (p *Proxy) Close() {
	p.close.Do(func() {
		select {
		case <-p.exited:
			return
		default:
		}
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			p.log.Warn("caddy did not stop in 10s, killing it")
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
		}
	})
}

// waitReady waits for the admin API and the tenant listener, or Caddy's
// exit (a port in use, a bad config).
func (p *Proxy) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last := errors.New("not started")
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("caddy exited at start: %w", p.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("caddy not ready in 15s: %w", last)
		case <-tick.C:
		}
		if last = ready(ctx, client, p.cfg); last == nil {
			return nil
		}
	}
}

func ready(ctx context.Context, client *http.Client, cfg Config) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+cfg.Admin+"/config/", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin API answered %s", resp.Status)
	}
	c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", cfg.Listen)
	if err != nil {
		return err
	}
	return c.Close()
}

// writeConfig writes the config Caddy starts with: its last autosave, so
// the routes survive a restart, with the admin and tenant listen addresses
// set to today's; else an admin endpoint and an empty tenant server.
func writeConfig(cfg Config) (string, error) {
	doc := map[string]any{}
	autosave := filepath.Join(cfg.Dir, "config", "caddy", "autosave.json")
	switch b, err := os.ReadFile(autosave); {
	case err == nil:
		if err := json.Unmarshal(b, &doc); err != nil {
			return "", fmt.Errorf("caddy autosave %s is not a JSON object (remove it to start afresh): %w", autosave, err)
		}
		if doc == nil {
			return "", fmt.Errorf("caddy autosave %s is not a JSON object (remove it to start afresh)", autosave)
		}
	case !errors.Is(err, os.ErrNotExist):
		return "", fmt.Errorf("caddy autosave: %w", err)
	}
	admin := object(doc, "admin")
	admin["listen"] = cfg.Admin
	servers := object(object(object(doc, "apps"), "http"), "servers")
	srv := object(servers, Server)
	srv["listen"] = []string{cfg.Listen}
	// Plain HTTP: host matchers would otherwise make Caddy ask for
	// certificates for every tenant.
	srv["automatic_https"] = map[string]any{"disable": true}
	if _, ok := srv["routes"].([]any); !ok {
		srv["routes"] = []any{}
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return "", err
	}
	file := filepath.Join(cfg.Dir, "caddy.json")
	if err := os.WriteFile(file, append(b, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("caddy config: %w", err)
	}
	return file, nil
}

// object is m[key] as an object, made (or replacing a non-object) if need be.
func object(m map[string]any, key string) map[string]any {
	if o, ok := m[key].(map[string]any); ok {
		return o
	}
	o := map[string]any{}
	m[key] = o
	return o
}

// checkLoopback accepts host:port with a loopback IP or "localhost".
func checkLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q: only a loopback address (the dev proxy's admin API has no authentication)", addr)
	}
	return nil
}

func logSize(f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logTail is what Caddy logged since offset, its last 2 KiB.
func logTail(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	b = bytes.TrimSpace(b[offset:])
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return "caddy log (" + path + "):\n" + strings.TrimSpace(string(b))
}
