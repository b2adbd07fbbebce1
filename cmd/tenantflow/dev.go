package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/tenantflow/tenantflow/internal/codec"
	"github.com/tenantflow/tenantflow/internal/config"
	"github.com/tenantflow/tenantflow/internal/devproxy"
	"github.com/tenantflow/tenantflow/internal/devserver"
	"github.com/tenantflow/tenantflow/internal/temporalx"
	"github.com/tenantflow/tenantflow/wiring"
)

// runDev runs the whole platform on one machine: a Temporal dev server
// (SQLite state under the data dir, so tenants survive a restart) with its
// Web UI, the worker and the API. Ctrl-C stops the API and the worker first,
// then the server.
func runDev(ctx context.Context, args []string, log *slog.Logger) error {
	s := config.New("dev")
	var tcfg temporalx.Config
	var wcfg wiring.Config
	var a apiSettings
	var dataDir, cli, uiPort, registryListen string
	var px devproxy.Config
	tcfg.Register(s)
	wcfg.Register(s)
	a.register(s)
	s.String(&dataDir, "data-dir", "TENANTFLOW_DATA_DIR", ".data", "state of the dev server, dev tokens and dev codec key")
	s.String(&cli, "temporal-cli", "TENANTFLOW_TEMPORAL_CLI", "bin/temporal", "the pinned temporal CLI (make bin/temporal)")
	s.String(&uiPort, "ui-port", "TENANTFLOW_UI_PORT", "8233", "Temporal Web UI port")
	s.String(&registryListen, "registry-listen", "TENANTFLOW_DEV_REGISTRY_LISTEN", "127.0.0.1:5050", "loopback address of the dev registry, which holds the demo app's releases (empty: none)")
	s.String(&px.Listen, "dev-proxy-listen", "TENANTFLOW_DEV_PROXY_LISTEN", "127.0.0.1:8088", "loopback address where dev's Caddy serves each tenant at http://<tenant>.localhost:<port> (empty: no proxy, a tenant's URL is its container's port)")
	s.String(&px.Admin, "dev-proxy-admin", "TENANTFLOW_DEV_PROXY_ADMIN", "127.0.0.1:2119", "loopback address of dev's Caddy admin API")
	s.String(&px.Caddy, "caddy", "TENANTFLOW_DEV_CADDY", "bin/caddy", "the caddy binary dev runs as its proxy (make bin/caddy)")
	if err := parse(s, args); err != nil {
		return err
	}
	a.GitLab = &wcfg.GitLab
	a.OpenShift = &wcfg.OpenShift
	if a.WebUIURL == "" {
		a.WebUIURL = "http://127.0.0.1:" + uiPort
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("TENANTFLOW_DATA_DIR: %w", err)
	}
	if wcfg.Backup.Dir == "" {
		// Decommission needs a backup location: on one machine, the data dir.
		abs, err := filepath.Abs(filepath.Join(dataDir, "backups"))
		if err != nil {
			return fmt.Errorf("TENANTFLOW_DATA_DIR: %w", err)
		}
		if err := os.MkdirAll(abs, 0o700); err != nil {
			return fmt.Errorf("TENANTFLOW_DATA_DIR: %w", err)
		}
		wcfg.Backup.Dir = abs
	}
	if wcfg.Restic.Repos == "" && wcfg.Restic.Keys == "" {
		// Scheduled backups: repositories and keys in the data dir (apart,
		// as a real deployment keeps them).
		for _, d := range []struct {
			to   *string
			name string
		}{{&wcfg.Restic.Repos, "restic/repos"}, {&wcfg.Restic.Keys, "restic/keys"}} {
			abs, err := filepath.Abs(filepath.Join(dataDir, d.name))
			if err != nil {
				return fmt.Errorf("TENANTFLOW_DATA_DIR: %w", err)
			}
			*d.to = abs
		}
	}
	if a.LogsDocker == "" {
		a.LogsDocker = wcfg.Docker.Host // the engine the worker runs the tenants on
	}
	if a.AuditDSN == "" && a.AuditDir == "" {
		a.AuditDir = filepath.Join(dataDir, "audit")
	}
	if a.TokensFile == "" {
		a.TokensFile = filepath.Join(dataDir, "dev-tokens.json")
		if err := ensureDevTokens(a.TokensFile); err != nil {
			return err
		}
	}
	if tcfg.CodecKeys == "" {
		keys, err := ensureDevCodecKey(filepath.Join(dataDir, "codec-keys"))
		if err != nil {
			return err
		}
		tcfg.CodecKeys = keys
	}
	var demoImages map[string]string
	if registryListen != "" {
		reg, images, err := startDevRegistry(ctx, registryListen, dataDir, wcfg.Docker.Host, log)
		if err != nil {
			return err
		}
		defer func() {
			stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = reg.Close(stop)
		}()
		demoImages = images
		devBuilds(&a, &wcfg, reg.Addr, dataDir, log)
	}
	var tenantURL string
	if px.Listen != "" && !wcfg.Proxy.Enabled {
		px.Dir = filepath.Join(dataDir, "caddy")
		p, err := startDevProxy(ctx, px, log)
		if err != nil {
			return err
		}
		defer p.Close()
		wcfg.Proxy = p.Wiring()
		tenantURL = p.URL("<tenant>")
	}
	uiURL := "http://127.0.0.1:" + uiPort
	devCodecDefaults(&a, uiURL, uiPort, log)
	if err := a.checkCodec(); err != nil {
		return err
	}

	host, port, err := net.SplitHostPort(tcfg.Address)
	if err != nil {
		return fmt.Errorf("TENANTFLOW_TEMPORAL_ADDRESS %q: %w", tcfg.Address, err)
	}
	srvArgs := append([]string{"server", "start-dev",
		"--ip", host, "--port", port, "--ui-port", uiPort,
		"--db-filename", filepath.Join(dataDir, "temporal.db"),
		"--namespace", tcfg.Namespace,
		"--log-level", "warn",
		"--ui-codec-endpoint", "http://" + a.Listen + "/codec",
	}, devserver.Args()...)
	// The server outlives ctx (Ctrl-C) until stopServer has let the
	// worker stop first: it is not tied to ctx.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), cli, srvArgs...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	// Own process group: the terminal's Ctrl-C must reach us, not the
	// server, so the worker can stop before the server it talks to.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s (TENANTFLOW_TEMPORAL_CLI; run `make bin/temporal`): %w", cli, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer stopServer(cmd, exited, log)

	if err := waitForTemporal(ctx, tcfg, exited); err != nil {
		return err
	}
	printBanner(uiURL, a, tcfg, registryListen, demoImages, dataDir, tenantURL)
	return process{temporal: tcfg, worker: &wcfg, api: &a}.run(ctx, log)
}

// devBuilds turns image builds on with the dev registry, from the demo
// app's git repository, unless builds are configured already (a projects
// file, or GitLab).
func devBuilds(a *apiSettings, wcfg *wiring.Config, regAddr, dataDir string, log *slog.Logger) {
	if a.ProjectsFile != "" || wcfg.GitLab.Enabled || wcfg.Registry.Enabled {
		return
	}
	projects, err := seedDemoRepo(dataDir)
	if err != nil {
		log.Warn("builds off: the demo repository could not be made", "error", err)
		return
	}
	a.ProjectsFile = projects
	wcfg.Registry.Enabled, wcfg.Registry.URL = true, "http://"+regAddr
}

// devCodecDefaults lets the dev Web UI call /codec unless origins were
// configured. The UI has no login to pass a token, so it may decrypt
// without one, but only on a loopback listener: elsewhere anyone reaching
// the API could read every payload.
func devCodecDefaults(a *apiSettings, uiURL, uiPort string, log *slog.Logger) {
	if a.CodecOrigins != "" {
		return
	}
	a.CodecOrigins = uiURL + ",http://localhost:" + uiPort
	if loopbackListen(a.Listen) {
		a.CodecAnonymous = true
		return
	}
	log.Warn("the API listens beyond loopback: /codec needs an ops token, so the Web UI shows payloads encrypted",
		"listen", a.Listen)
}

// startDevProxy runs dev's Caddy. A proxy that cannot start stops dev,
// naming the setting to change.
func startDevProxy(ctx context.Context, cfg devproxy.Config, log *slog.Logger) (*devproxy.Proxy, error) {
	p, err := devproxy.Start(ctx, cfg, log.With("component", "caddy"))
	if err != nil {
		return nil, fmt.Errorf("dev proxy (TENANTFLOW_DEV_PROXY_LISTEN %s, TENANTFLOW_DEV_PROXY_ADMIN %s, TENANTFLOW_DEV_CADDY %s; empty TENANTFLOW_DEV_PROXY_LISTEN runs without): %w",
			cfg.Listen, cfg.Admin, cfg.Caddy, err)
	}
	return p, nil
}

func stopServer(cmd *exec.Cmd, exited chan error, log *slog.Logger) {
	if cmd.ProcessState != nil {
		return
	}
	log.Info("stopping temporal dev server")
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case err := <-exited:
		log.Debug("temporal dev server stopped", "error", err)
	case <-time.After(15 * time.Second):
		log.Warn("temporal dev server did not stop in 15s, killing it")
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		err := <-exited
		log.Debug("temporal dev server killed", "error", err)
	}
}

// waitForTemporal polls until the frontend answers a health check.
func waitForTemporal(ctx context.Context, tcfg temporalx.Config, exited chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := client.Dial(client.Options{HostPort: tcfg.Address, Namespace: tcfg.Namespace, Logger: quietLogger{}})
		if err == nil {
			_, err = c.CheckHealth(ctx, &client.CheckHealthRequest{})
			c.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("temporal dev server exited: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("temporal dev server at %s not ready after 60s: %w", tcfg.Address, err)
		}
	}
}

type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ensureDevTokens writes one random token per role unless the file exists.
func ensureDevTokens(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	tokens := map[string]string{}
	for _, role := range []string{"ops", "distributor", "developer"} {
		t, err := randomToken()
		if err != nil {
			return err
		}
		tokens[role] = t
	}
	b, _ := json.MarshalIndent(tokens, "", "  ")
	return os.WriteFile(path, append(b, '\n'), 0o600)
}

// ensureDevCodecKey keeps one generated key per data dir: payloads written
// by an earlier run must stay readable after a restart.
func ensureDevCodecKey(path string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	k, err := codec.NewKey("dev-" + time.Now().UTC().Format("20060102"))
	if err != nil {
		return "", err
	}
	return k, os.WriteFile(path, []byte(k+"\n"), 0o600)
}

func printBanner(uiURL string, a apiSettings, tcfg temporalx.Config, registryAddr string, demoImages map[string]string, dataDir, tenantURL string) {
	tenants := "each at its container's published port (no dev proxy)"
	if tenantURL != "" {
		tenants = tenantURL + "  (dev's Caddy: one URL for life)"
	}
	tokens := map[string]string{}
	if b, err := os.ReadFile(a.TokensFile); err == nil {
		_ = json.Unmarshal(b, &tokens)
	}
	fmt.Fprintf(os.Stderr, `
  Tenantflow is running (Ctrl-C stops everything)
    Temporal Web UI  %s
    Temporal gRPC    %s  (namespace %s, task queue %s)
    REST API         http://%s
    Portal           http://%s/portal  (sign in with the distributor token)
    Tenants          %s
    Dev tokens       %s
      ops          %s
      distributor  %s
      developer    %s

  Try:
    curl -s -X POST http://%s/v1/tenants -H "Authorization: Bearer %s" \
      -d '{"name":"acme","template":"default","stage":"prod"}'
    curl -s http://%s/v1/tenants/acme -H "Authorization: Bearer %s"

`, uiURL, tcfg.Address, tcfg.Namespace, tcfg.TaskQueue, a.Listen, a.Listen, tenants, a.TokensFile,
		tokens["ops"], tokens["distributor"], tokens["developer"],
		a.Listen, tokens["ops"], a.Listen, tokens["ops"])
	if len(demoImages) > 0 {
		fmt.Fprintf(os.Stderr, "  Registry %s holds the demo app's releases (%s):\n", registryAddr, filepath.Join(dataDir, demoImagesFile))
		for _, v := range demoVersions {
			fmt.Fprintf(os.Stderr, "    %s  %s\n", v, demoImages[v])
		}
		fmt.Fprintln(os.Stderr)
	}
}
