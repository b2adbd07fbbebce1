// Package e2e runs Tenantflow end to end: a real Temporal dev server, the
// real worker on the real Docker Engine, and the REST API over HTTP.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/prometheus/client_golang/prometheus"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/tenantflow/tenantflow/activities/cmdb"
	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/activities/docker"
	ldapacts "github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/activities/supervision"
	"github.com/tenantflow/tenantflow/api"
	"github.com/tenantflow/tenantflow/internal/audit"
	"github.com/tenantflow/tenantflow/internal/demoimage"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/temporaltest"
	"github.com/tenantflow/tenantflow/wiring"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// platform is Tenantflow running for one test.
type platform struct {
	t        testing.TB
	deps     wiring.Deps // the worker's clients (nil integrations when off)
	temporal *temporaltest.Temporal
	driver   *docker.Driver
	api      *httptest.Server
	token    string
}

// brokenTemplate is the default template with an app image that does not
// exist: network, volumes and the db are made before provisioning fails.
func brokenTemplate(t testing.TB, tpls spec.Templates) *spec.Template {
	b, err := json.Marshal(tpls["light"])
	if err != nil {
		t.Fatal(err)
	}
	var broken spec.Template
	if err := json.Unmarshal(b, &broken); err != nil {
		t.Fatal(err)
	}
	broken.Name = "broken"
	for i := range broken.Services {
		if broken.Services[i].Name == "app" {
			broken.Services[i].Image = "tenantflow/not-built:never"
		}
	}
	return &broken
}

// slowTemplate is the default template with an app that answers its health
// check only after a few seconds, leaving time to act mid-provisioning.
func slowTemplate(t testing.TB, tpls spec.Templates, delay time.Duration) *spec.Template {
	slow := brokenTemplate(t, tpls)
	slow.Name = "slow"
	for i := range slow.Services {
		if slow.Services[i].Name == "app" {
			slow.Services[i].Image = tpls["light"].Services[i].Image
			slow.Services[i].Env["READY_DELAY"] = delay.String()
		}
	}
	return slow
}

func startPlatform(t testing.TB) *platform { return startPlatformWith(t, &wiring.Config{}) }

// startPlatformWith starts the platform with an in-process worker
// configured by wcfg (integrations included); with nil, the test runs its
// own worker (see startWorkerProcess).
func startPlatformWith(t testing.TB, wcfg *wiring.Config, apiOpts ...func(*api.Config)) *platform {
	t.Helper()
	return startPlatformOn(t, spec.Docker, wcfg, apiOpts...)
}

// startPlatformOn starts the platform whose templates run on runtimeName
// by default (TENANTFLOW_RUNTIME); an in-process worker (wcfg) runs on
// Docker, any other runtime needs a worker process.
func startPlatformOn(t testing.TB, runtimeName string, wcfg *wiring.Config, apiOpts ...func(*api.Config)) *platform {
	t.Helper()
	return startPlatformOnServer(t, nil, runtimeName, wcfg, apiOpts...)
}

// startPlatformOnServer is startPlatformOn against a Temporal server the
// test started itself (nil: a fresh dev server).
func startPlatformOnServer(t testing.TB, tmp *temporaltest.Temporal, runtimeName string, wcfg *wiring.Config, apiOpts ...func(*api.Config)) *platform {
	t.Helper()
	var d *docker.Driver
	if runtimeName == spec.Docker {
		var dcfg docker.Config
		if wcfg != nil {
			dcfg = wcfg.Docker
		}
		d = harness.DockerWith(t, dcfg)
		harness.DemoImage(t, d, demoimage.Tag, "v1")
	}
	if tmp == nil {
		tmp = temporaltest.StartTemporal(t)
	}
	p := &platform{t: t, temporal: tmp, driver: d}

	if wcfg != nil {
		wcfg.StopTimeout = 5 * time.Second
		deps, err := wiring.NewIntegrations(*wcfg, harness.Logger(t))
		if err != nil {
			t.Fatal(err)
		}
		if err := deps.UseDocker(d); err != nil {
			t.Fatal(err)
		}
		p.deps = deps
		w := wiring.New(tmp.Client, tmp.Config.TaskQueue, *wcfg, deps)
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}

	tpls, err := spec.LoadTemplates(filepath.Join(harness.RepoRoot(), "deploy", "templates"))
	if err != nil {
		t.Fatal(err)
	}
	tpls["broken"] = brokenTemplate(t, tpls)
	tpls["slow"] = slowTemplate(t, tpls, 6*time.Second)
	if err := tpls.WithDefaultRuntime(runtimeName); err != nil {
		t.Fatal(err)
	}
	token := fmt.Sprintf("ops-token-%016x", rand.Uint64())
	tokens, err := api.ParseTokens([]byte(`{"ops":"` + token + `","distributor":"distributor-` + token + `","developer":"developer-` + token + `"}`))
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.OpenFileStore(filepath.Join(t.TempDir(), "audit"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	engines := &docker.Engines{Log: harness.Logger(t)}
	engines.Use("", d)
	acfg := api.Config{TaskQueue: tmp.Config.TaskQueue, Tokens: tokens, DataConverter: temporaltest.TestKeyring(t).DataConverter(), Audit: trail,
		Logs: engines.LogReader}
	for _, o := range apiOpts {
		o(&acfg)
	}
	router, err := api.NewRouter(acfg, tmp.Client, tpls, harness.Logger(t), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(router)
	t.Cleanup(srv.Close)
	p.api, p.token = srv, token
	return p
}

func (p *platform) do(method, path string, body any) (int, map[string]any, http.Header) {
	p.t.Helper()
	return p.doAs(p.token, method, path, body)
}

func (p *platform) doAs(token, method, path string, body any, headers ...string) (int, map[string]any, http.Header) {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.api.URL+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, resp.Header
}

// requestTenant asks the API for a tenant and requires the 202.
func (p *platform) requestTenant(name, template, stage string) {
	p.t.Helper()
	code, body, _ := p.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "template": template, "stage": stage})
	if code != http.StatusAccepted {
		p.t.Fatalf("POST /v1/tenants %s: %d %v", name, code, body)
	}
}

// waitState polls GET /v1/tenants/{name} until the tenant reaches one of the
// final states of provisioning and returns the last answer.
func (p *platform) waitState(name string, poll, timeout time.Duration) map[string]any {
	p.t.Helper()
	return p.waitFor(name, poll, timeout, "settled", func(st map[string]any) bool {
		return st["state"] == string(tenant.StateActive) || st["state"] == string(tenant.StateFailed)
	})
}

// waitFor polls the tenant every poll until ok accepts its state.
func (p *platform) waitFor(name string, poll, timeout time.Duration, what string, ok func(st map[string]any) bool) map[string]any {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var last map[string]any
	for time.Now().Before(deadline) {
		code, body, _ := p.do(http.MethodGet, "/v1/tenants/"+name, nil)
		last = body
		// A stale answer (from the memo, no worker answered in time) is a
		// summary: wait for the workflow's own.
		if code == http.StatusOK && body["stale"] != true && ok(body) {
			return body
		}
		time.Sleep(poll)
	}
	p.t.Fatalf("tenant %s: not %s within %s; last answer %v", name, what, timeout, last)
	return nil
}

// destroy removes the tenant's workflow and everything the engine and the
// integrations hold of it.
func (p *platform) destroy(name string) {
	ctx := context.Background()
	_ = p.temporal.Client.TerminateWorkflow(ctx, tenant.WorkflowID(name), "", "test cleanup")
	if a := p.deps.Proxy; a != nil {
		_ = a.RemoveRoute(ctx, proxy.RouteRef{Tenant: name})
	}
	if a := p.deps.DNS; a != nil {
		_ = a.RemoveDNSRecord(ctx, dns.RecordInput{Tenant: name, Name: name + "." + p.deps.Integrations.Domain})
	}
	if a := p.deps.LDAP; a != nil {
		_ = a.RemoveDirectory(ctx, ldapacts.DirectoryRef{Tenant: name})
	}
	if a := p.deps.CMDB; a != nil {
		_ = a.RemoveFromCMDB(ctx, cmdb.CMDBRef{Tenant: name})
	}
	if a := p.deps.Supervision; a != nil {
		_ = a.StopSupervision(ctx, supervision.WatchRef{Tenant: name})
	}
	_ = p.driver.RemoveServices(ctx, name, "")
	_ = p.driver.RemoveVolumes(ctx, name, "")
	_ = p.driver.RemoveNetwork(ctx, name, "")
}

// residue lists what the engine still holds of a tenant.
func (p *platform) residue(name string) []string {
	p.t.Helper()
	ctx := context.Background()
	f := filters.NewArgs(filters.Arg("label", docker.LabelTenant+"="+name))
	var out []string
	cs, err := p.driver.Client().ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		p.t.Fatal(err)
	}
	for _, c := range cs {
		out = append(out, "container "+c.Names[0]+" "+c.State)
	}
	vs, err := p.driver.Client().VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		p.t.Fatal(err)
	}
	for _, v := range vs.Volumes {
		out = append(out, "volume "+v.Name)
	}
	ns, err := p.driver.Client().NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		p.t.Fatal(err)
	}
	for _, n := range ns {
		out = append(out, "network "+n.Name)
	}
	return out
}

// checkHistory fetches the workflow's history, replays it against the
// current code, and, when TENANTFLOW_RECORD_HISTORIES is set (make
// histories), saves it as testsuite/histories/<name>-<date>.json for the
// replay tests. Older recordings are kept: they must still replay.
func (p *platform) checkHistory(workflowID, name string) {
	p.t.Helper()
	ctx := context.Background()
	iter := p.temporal.Client.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	hist := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			p.t.Fatal(err)
		}
		hist.Events = append(hist.Events, ev)
	}
	replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
		DataConverter:    temporaltest.TestKeyring(p.t).DataConverter(),
		FailureConverter: temporaltest.TestKeyring(p.t).FailureConverter(),
	})
	if err != nil {
		p.t.Fatal(err)
	}
	wiring.RegisterWorkflows(replayer)
	if err := replayer.ReplayWorkflowHistory(nil, hist); err != nil {
		p.t.Fatalf("replay %s: %v", workflowID, err)
	}
	if os.Getenv("TENANTFLOW_RECORD_HISTORIES") == "" {
		return
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(hist)
	if err != nil {
		p.t.Fatal(err)
	}
	file := name + "-" + time.Now().UTC().Format("20060102") + ".json"
	path := filepath.Join(harness.RepoRoot(), "testsuite", "histories", file)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("recorded %s (%d events)", path, len(hist.Events))
}

// rawHistory is the workflow's history as the server stores it (protojson),
// with payloads still encoded.
func (p *platform) rawHistory(workflowID string) string {
	p.t.Helper()
	iter := p.temporal.Client.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	hist := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			p.t.Fatal(err)
		}
		hist.Events = append(hist.Events, ev)
	}
	b, err := protojson.Marshal(hist)
	if err != nil {
		p.t.Fatal(err)
	}
	// Payload data is base64 in protojson: decode every data field so a
	// plain secret would show.
	return string(b) + decodedPayloads(hist)
}

func tenantName(prefix string) string {
	return fmt.Sprintf("%s-%06x", prefix, rand.Uint32()&0xffffff)
}

// decodedPayloads concatenates the raw bytes (data and metadata) of every
// Payload anywhere in m, so a secret in an unencrypted payload is visible
// to a plain-text search.
func decodedPayloads(m proto.Message) string {
	var sb strings.Builder
	var walk func(protoreflect.Message)
	walk = func(msg protoreflect.Message) {
		if p, ok := msg.Interface().(*commonpb.Payload); ok {
			sb.Write(p.GetData())
			for _, v := range p.GetMetadata() {
				sb.WriteByte(' ')
				sb.Write(v)
			}
			sb.WriteByte('\n')
			return
		}
		msg.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i, l := 0, v.List(); i < l.Len(); i++ {
					walk(l.Get(i).Message())
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool { walk(mv.Message()); return true })
			case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
				walk(v.Message())
			}
			return true
		})
	}
	walk(m.ProtoReflect())
	return sb.String()
}
