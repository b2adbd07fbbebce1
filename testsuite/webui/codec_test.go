// Package webui tests what ops see in the Temporal Web UI, in a real
// headless Chromium, against a real `tenantflow dev`.
package webui

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"

	"github.com/tenantflow/tenantflow/internal/codec"
	"github.com/tenantflow/tenantflow/internal/demoimage"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// encryptedInUI is how the Web UI shows an encrypted payload it could not
// decode: its metadata in base64, "binary/encrypted" among it.
var encryptedInUI = base64.StdEncoding.EncodeToString([]byte(codec.EncodingEncrypted))

const codecUnreachable = "Codec Server could not connect"

// TestWebUIDecodesTenantPayloads provisions a tenant through `tenantflow
// dev` (what `make run` starts) and opens its workflow in the Web UI the
// dev server serves: through the API's /codec (cross-origin, from the
// browser) the tenant's input, its memo and its state query read as JSON.
// The same page with /codec unreachable shows the encrypted payloads, so
// the readable page is the codec's doing.
func TestWebUIDecodesTenantPayloads(t *testing.T) {
	harness.SkipShort(t, "the Temporal Web UI in Chromium")
	chromium := requireChromium(t)
	cli := harness.TemporalCLI(t)
	docker := harness.Docker(t)
	harness.DemoImage(t, docker, demoimage.Tag, "v1") // the light template's image, as the e2e tests build it

	name := "webui-" + harness.UniqueSuffix()
	// Registered before dev starts, so it runs after dev has stopped.
	t.Cleanup(func() {
		ctx := context.Background()
		_ = docker.RemoveServices(ctx, name, "")
		_ = docker.RemoveVolumes(ctx, name, "")
		_ = docker.RemoveNetwork(ctx, name, "")
	})
	dev := startDev(t, cli)

	code, body := dev.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name, "template": "light", "stage": "prod"})
	if code != http.StatusAccepted {
		t.Fatalf("POST /v1/tenants: %d %v", code, body)
	}
	runID, _ := body["runId"].(string)
	if runID == "" {
		t.Fatalf("POST /v1/tenants: no runId in %v", body)
	}
	dev.waitActive(name, time.Minute)
	requireEncryptedInHistory(t, dev, name, runID)

	browser := startBrowser(t, chromium)
	workflowURL := dev.UIURL + "/namespaces/default/workflows/" + url.PathEscape(tenant.WorkflowID(name))
	quoted := func(k, v string) string { return `"` + k + `": "` + v + `"` }

	t.Run("input", func(t *testing.T) {
		p := openPage(browser, t, "workflow page", workflowURL, false)
		// The UI shows each payload as stored until /codec has answered.
		p.waitText(`[data-testid="input-and-result"]`, "the decoded input",
			containsAll(quoted("name", name), quoted("template", "light"), quoted("stage", "prod"), quoted("requestedBy", "ops")))
		waitNothingEncrypted(p)
	})

	t.Run("memo", func(t *testing.T) {
		p := openPage(browser, t, "memo page", workflowURL+"/"+runID+"/memo", false)
		p.waitText("body", "the decoded memo", containsAll(quoted("state", "active"), quoted("name", name), quoted("template", "light")))
		waitNothingEncrypted(p)
	})

	t.Run("state query", func(t *testing.T) {
		p := openPage(browser, t, "queries page", workflowURL+"/"+runID+"/query", false)
		// The query list is the workflow's metadata, answered by the worker
		// and itself encrypted: "state" is there to pick once it is decoded.
		p.waitTrue("choosing the state query", `(() => {
			const opt = [...document.querySelectorAll('li[role=option]')]
				.find(li => li.querySelector('span')?.textContent.trim() === 'state');
			opt?.click();
			return document.querySelector('#query-select')?.value === 'state';
		})()`)
		p.waitTrue("running the query", `(() => {
			const run = [...document.querySelectorAll('button')].find(b => b.textContent.trim() === 'Run Query');
			run?.click();
			return !!run;
		})()`)
		p.waitText(`[data-testid="query-result"]`, "the decoded state",
			containsAll(quoted("state", "active"), quoted("name", name), `"progress"`))
		waitNothingEncrypted(p)
	})

	// The checks above can fail: with /codec unreachable the same page
	// warns, and its input stays encrypted.
	t.Run("without the codec", func(t *testing.T) {
		p := openPage(browser, t, "workflow page without codec", workflowURL, true)
		p.waitText("body", "the codec warning", containsAll(codecUnreachable))
		input := p.waitText(`[data-testid="input-and-result"]`, "the encrypted input", containsAll(encryptedInUI))
		if strings.Contains(input, quoted("template", "light")) {
			t.Errorf("the input reads as JSON without the codec:\n%s", input)
		}
	})
}

// containsAll accepts a text holding every one of wants.
func containsAll(wants ...string) func(string) bool {
	return func(s string) bool {
		for _, w := range wants {
			if !strings.Contains(s, w) {
				return false
			}
		}
		return true
	}
}

// waitNothingEncrypted waits until the page shows no encrypted payload and
// no codec warning: the UI decodes each payload on its own, so some may
// still be on their way.
func waitNothingEncrypted(p *page) {
	p.t.Helper()
	p.waitText("body", "every payload decoded", func(s string) bool {
		for _, bad := range []string{encryptedInUI, codec.EncodingEncrypted, codecUnreachable} {
			if strings.Contains(s, bad) {
				return false
			}
		}
		return true
	})
}

// requireEncryptedInHistory reads the tenant's workflow without the codec:
// its input and memo are stored encrypted, so what the browser reads as
// JSON came through /codec.
func requireEncryptedInHistory(t *testing.T, dev *devPlatform, name, runID string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: dev.Temporal, Namespace: "default",
		Logger: tlog.NewStructuredLogger(harness.Logger(t))})
	if err != nil {
		t.Fatalf("dial temporal: %v", err)
	}
	defer c.Close()
	iter := c.GetWorkflowHistory(ctx, tenant.WorkflowID(name), runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	first, err := iter.Next()
	if err != nil {
		t.Fatalf("history of %s: %v", tenant.WorkflowID(name), err)
	}
	input := first.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()
	if len(input) == 0 {
		t.Fatalf("no input in %v", first)
	}
	desc, err := c.DescribeWorkflowExecution(ctx, tenant.WorkflowID(name), runID)
	if err != nil {
		t.Fatalf("describe %s: %v", tenant.WorkflowID(name), err)
	}
	memo := desc.GetWorkflowExecutionInfo().GetMemo().GetFields()[tenant.MemoSummary]
	for what, p := range map[string]interface {
		GetMetadata() map[string][]byte
		GetData() []byte
	}{"input": input[0], "memo": memo} {
		if got := string(p.GetMetadata()["encoding"]); got != codec.EncodingEncrypted {
			t.Errorf("the stored %s's encoding is %q, want %q", what, got, codec.EncodingEncrypted)
		}
		if strings.Contains(string(p.GetData()), name) {
			t.Errorf("the stored %s holds the tenant's name in clear", what)
		}
	}
}
