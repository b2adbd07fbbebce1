package webui

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// devPlatform is a real `tenantflow dev` (what `make run` starts): the
// Temporal dev server with its Web UI, the worker and the API, on free
// loopback ports with a data dir of the test's own.
type devPlatform struct {
	t        testing.TB
	UIURL    string // http://127.0.0.1:<ui-port>
	APIURL   string // http://127.0.0.1:<api-port>
	Temporal string // the dev server's gRPC address
	OpsToken string // the ops token dev wrote into its data dir
	DataDir  string
	// ProxyAddr is where dev's Caddy serves the tenants ("": no proxy).
	ProxyAddr string
	proc      *harness.Process
}

// startDev builds the tenantflow binary and runs `tenantflow dev` until
// the test ends, with env's TENANTFLOW_* settings besides the flags. It
// returns once the API answers /healthz.
func startDev(t testing.TB, cli string, env ...string) *devPlatform {
	t.Helper()
	bin := harness.BuildTenantflow(t)
	dataDir := t.TempDir()
	uiPort, apiPort, temporalPort := harness.FreePort(t), harness.FreePort(t), harness.FreePort(t)
	p := &devPlatform{
		t:         t,
		UIURL:     "http://" + harness.Addr(uiPort),
		APIURL:    "http://" + harness.Addr(apiPort),
		Temporal:  harness.Addr(temporalPort),
		DataDir:   dataDir,
		ProxyAddr: envValue(env, "TENANTFLOW_DEV_PROXY_LISTEN"),
	}
	args := []string{"dev",
		"--data-dir", dataDir,
		"--ui-port", strconv.Itoa(uiPort),
		// No registry unless the test asks for one
		// (TENANTFLOW_DEV_REGISTRY_LISTEN in env): seeding it costs
		// each start a build and a push.
		"--registry-listen", envValue(env, "TENANTFLOW_DEV_REGISTRY_LISTEN"),
		// No proxy either unless asked (TENANTFLOW_DEV_PROXY_LISTEN):
		// tenants then answer at their containers' ports.
		"--dev-proxy-listen", envValue(env, "TENANTFLOW_DEV_PROXY_LISTEN"),
		"--dev-proxy-admin", harness.Addr(harness.FreePort(t)),
		"--api-listen", harness.Addr(apiPort),
		"--temporal-address", p.Temporal,
		"--temporal-cli", cli,
		"--templates-dir", filepath.Join(harness.RepoRoot(), "deploy", "templates"),
		// One round at start is enough; its orphan grace (an hour) outlasts the test.
		"--reconcile-every", "24h",
		"--stop-timeout", "2s",
	}
	if p.ProxyAddr != "" {
		args = append(args, "--caddy", harness.DevCaddy(t))
	}
	p.proc = harness.NewProcess(t, dataDir, append(envWithoutTenantflow(), env...), bin, args...)
	p.proc.Start()
	harness.WaitFor(t, "tenantflow dev's API", 90*time.Second, harness.HTTPOK(p.APIURL+"/healthz"))
	p.OpsToken = devToken(t, filepath.Join(dataDir, "dev-tokens.json"), "ops")
	return p
}

// envValue is the value env sets for key, "" if none.
func envValue(env []string, key string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// envWithoutTenantflow is this process's environment without the
// TENANTFLOW_* settings a developer's shell may hold: the test's flags
// alone configure dev (its log level aside).
func envWithoutTenantflow() []string {
	env := []string{"TENANTFLOW_LOG_LEVEL=warn"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TENANTFLOW_") {
			env = append(env, kv)
		}
	}
	return env
}

// devToken reads a role's token from the file dev writes, as the README's
// tour does.
func devToken(t testing.TB, path, role string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("dev tokens: %v", err)
	}
	var tokens map[string]string
	if err := json.Unmarshal(raw, &tokens); err != nil {
		t.Fatalf("dev tokens %s: %v", path, err)
	}
	if tokens[role] == "" {
		t.Fatalf("dev tokens %s: no %q token", path, role)
	}
	return tokens[role]
}

// do calls the REST API as ops and decodes the JSON answer.
func (p *devPlatform) do(method, path string, body any) (int, map[string]any) {
	p.t.Helper()
	return p.doAs(p.OpsToken, method, path, body)
}

// doAs calls the REST API with token and decodes the JSON answer.
func (p *devPlatform) doAs(token, method, path string, body any) (int, map[string]any) {
	p.t.Helper()
	var r *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			p.t.Fatal(err)
		}
		r = bytes.NewReader(b)
	} else {
		r = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, p.APIURL+path, r)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		p.t.Fatalf("%s %s: %s, body not JSON: %v", method, path, resp.Status, err)
	}
	return resp.StatusCode, out
}

// waitActive polls the tenant until it is active, and fails the test if
// it fails or does not get there in time.
func (p *devPlatform) waitActive(name string, timeout time.Duration) {
	p.t.Helper()
	var last map[string]any
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		_, last = p.do(http.MethodGet, "/v1/tenants/"+name, nil)
		switch last["state"] {
		case "active":
			return
		case "failed":
			p.t.Fatalf("tenant %s failed: %v", name, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("tenant %s not active after %s: %v", name, timeout, last)
}
