package webui

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/internal/demoimage"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// TestTourReleasesFromTheDevRegistry runs the README's build and release
// tour on `tenantflow dev` alone: dev serves a registry holding the demo
// app's v1 and v2 (pinned by digest in demo-images.json) and builds from
// the demo app's git repository in its data dir; v2 is built from its
// tag, released to a staging and a prod tenant, promoted by a developer,
// then rolled back, each tenant's app answering the version it should at
// each step; the staging tenant is then decommissioned and restored. Dev's
// Caddy serves each tenant at http://<tenant>.localhost:<port>, and that
// URL stays the same through all of it.
func TestTourReleasesFromTheDevRegistry(t *testing.T) {
	harness.SkipShort(t, "tenantflow dev with its registry")
	cli := harness.TemporalCLI(t)
	docker := harness.Docker(t)
	harness.DemoImage(t, docker, demoimage.Tag, "v1")

	suffix := harness.UniqueSuffix()
	staging, prod := "tour-stg-"+suffix, "tour-prd-"+suffix
	t.Cleanup(func() {
		ctx := context.Background()
		for _, name := range []string{staging, prod} {
			_ = docker.RemoveServices(ctx, name, "")
			_ = docker.RemoveVolumes(ctx, name, "")
			_ = docker.RemoveNetwork(ctx, name, "")
		}
	})
	dev := startDev(t, cli, "TENANTFLOW_DEV_REGISTRY_LISTEN="+harness.Addr(harness.FreePort(t)),
		"TENANTFLOW_DEV_PROXY_LISTEN="+harness.Addr(harness.FreePort(t)))
	developer := devToken(t, filepath.Join(dev.DataDir, "dev-tokens.json"), "developer")

	raw, err := os.ReadFile(filepath.Join(dev.DataDir, "demo-images.json"))
	if err != nil {
		t.Fatalf("dev wrote no demo-images.json: %v", err)
	}
	var images map[string]string
	if err := json.Unmarshal(raw, &images); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(images["v2"], "/demo/app@sha256:") {
		t.Fatalf("demo-images.json: v2 is %q, want a reference by digest", images["v2"])
	}

	for name, stage := range map[string]string{staging: "staging", prod: "prod"} {
		if code, body := dev.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "template": "light", "stage": stage}); code != http.StatusAccepted {
			t.Fatalf("POST /v1/tenants %s: %d %v", name, code, body)
		}
	}
	dev.waitActive(staging, time.Minute)
	dev.waitActive(prod, time.Minute)
	dev.requireVersion(staging, "v1")

	// v2 built from the demo app's git repository in the data dir (no
	// GitLab), pushed to dev's registry.
	built := dev.build(developer, "demo/app", "v2")
	if !strings.Contains(built, "/builds/demo-app@sha256:") {
		t.Fatalf("the build's image is %q", built)
	}
	code, body := dev.doAs(developer, http.MethodPost, "/v1/releases", map[string]any{
		"image": built, "tenants": map[string]any{"names": []string{staging, prod}}, "drain": "0s"})
	if code != http.StatusAccepted {
		t.Fatalf("POST /v1/releases: %d %v", code, body)
	}
	id, _ := body["id"].(string)
	dev.waitRelease(developer, id, "awaiting-promotion")
	dev.requireVersion(staging, "v2")
	dev.requireVersion(prod, "v1")

	if code, body := dev.doAs(developer, http.MethodPost, "/v1/releases/"+id+"/promote", map[string]any{"reason": "QA ok"}); code != http.StatusOK {
		t.Fatalf("promote: %d %v", code, body)
	}
	dev.waitRelease(developer, id, "completed")
	dev.requireVersion(prod, "v2")

	code, body = dev.doAs(developer, http.MethodPost, "/v1/releases", map[string]any{"rollbackOf": id, "drain": "0s"})
	if code != http.StatusAccepted {
		t.Fatalf("rollback: %d %v", code, body)
	}
	back, _ := body["id"].(string)
	dev.waitRelease(developer, back, "awaiting-promotion")
	if code, body := dev.doAs(developer, http.MethodPost, "/v1/releases/"+back+"/promote", map[string]any{"reason": "back"}); code != http.StatusOK {
		t.Fatalf("promote the rollback: %d %v", code, body)
	}
	dev.waitRelease(developer, back, "completed")
	dev.requireVersion(staging, "v1")
	dev.requireVersion(prod, "v1")

	// Decommissioned (its data archived, its containers gone), then
	// restored: back on the same URL.
	if code, body := dev.do(http.MethodDelete, "/v1/tenants/"+staging+"?force=true&reason=tour", nil); code != http.StatusAccepted {
		t.Fatalf("decommission: %d %v", code, body)
	}
	dev.waitPhase(staging, "retained")
	if code, body := dev.do(http.MethodPost, "/v1/tenants/"+staging+"/restore", nil); code != http.StatusAccepted {
		t.Fatalf("restore: %d %v", code, body)
	}
	dev.waitActive(staging, 2*time.Minute)
	dev.requireVersion(staging, "v1")
}

// waitPhase polls the tenant until its decommission is in phase want.
func (p *devPlatform) waitPhase(name, want string) {
	p.t.Helper()
	var last map[string]any
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		_, last = p.do(http.MethodGet, "/v1/tenants/"+name, nil)
		d, _ := last["decommission"].(map[string]any)
		switch d["phase"] {
		case want:
			return
		case "failed":
			p.t.Fatalf("decommission of %s failed: %v", name, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.t.Fatalf("tenant %s not %s: %v", name, want, last)
}

// build builds project at ref and returns its image by digest.
func (p *devPlatform) build(token, project, ref string) string {
	p.t.Helper()
	code, body := p.doAs(token, http.MethodPost, "/v1/builds", map[string]any{"project": project, "ref": ref})
	if code != http.StatusAccepted {
		p.t.Fatalf("POST /v1/builds: %d %v", code, body)
	}
	id, _ := body["id"].(string)
	var last map[string]any
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		_, answer := p.doAs(token, http.MethodGet, "/v1/builds/"+id, nil)
		last, _ = answer["build"].(map[string]any)
		switch last["state"] {
		case "succeeded":
			img, _ := last["image"].(map[string]any)
			ref, _ := img["ref"].(string)
			digest, _ := img["digest"].(string)
			repo, _, _ := strings.Cut(ref[strings.LastIndex(ref, "/")+1:], ":")
			return ref[:strings.LastIndex(ref, "/")+1] + repo + "@" + digest
		case "failed":
			p.t.Fatalf("build %s failed: %v", id, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.t.Fatalf("build %s not done: %v", id, last)
	return ""
}

// waitRelease polls the release until it is in state want.
func (p *devPlatform) waitRelease(token, id, want string) {
	p.t.Helper()
	var last map[string]any
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		_, last = p.doAs(token, http.MethodGet, "/v1/releases/"+id, nil)
		if last["state"] == want {
			return
		}
		if s, _ := last["state"].(string); s == "aborted" || s == "paused" || s == "not-promoted" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.t.Fatalf("release %s not %s: %v", id, want, last)
}

// requireVersion reads the tenant's app's /version at its URL, which
// behind dev's proxy must be http://<name>.localhost:<proxy port>.
func (p *devPlatform) requireVersion(name, want string) {
	p.t.Helper()
	_, state := p.do(http.MethodGet, "/v1/tenants/"+name, nil)
	url, _ := state["url"].(string)
	if url == "" {
		p.t.Fatalf("tenant %s has no URL: %v", name, state)
	}
	if p.ProxyAddr != "" {
		_, port, _ := net.SplitHostPort(p.ProxyAddr)
		if want := "http://" + name + ".localhost:" + port; url != want {
			p.t.Fatalf("tenant %s is at %s, want %s", name, url, want)
		}
	}
	c := harness.LocalhostClient(10 * time.Second)
	defer c.CloseIdleConnections()
	resp, err := c.Get(url + "/version")
	if err != nil {
		p.t.Fatalf("%s /version: %v", name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if got := strings.TrimSpace(string(b)); got != want {
		p.t.Fatalf("tenant %s runs %q, want %q (image %v)", name, got, want, state["image"])
	}
}
