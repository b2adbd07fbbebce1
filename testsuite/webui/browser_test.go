package webui

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// uiInternalError is what the Web UI shows in place of a page whose data
// it could not get.
const uiInternalError = "Internal Error"

// pageTimeout bounds each wait for the Web UI to show something. The UI
// loads in a few seconds; a busy machine (tests running beside) gets room.
const pageTimeout = 30 * time.Second

// startBrowser runs a headless Chromium until the test ends, set up to run
// as root in a container, and returns its chromedp context.
func startBrowser(t *testing.T, execPath string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true),
		// Tall: the UI's JSON viewers draw only the lines in view.
		chromedp.WindowSize(1400, 2000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium %s: %v", execPath, err)
	}
	return ctx
}

// page is one browser tab on the Web UI.
type page struct {
	t    *testing.T
	ctx  context.Context
	name string
}

// openPage opens url in a new tab of the browser. With blockCodec, the tab
// cannot reach any /codec/ URL: the UI as it is when its codec endpoint
// is down or wrong. When the test fails, the tab's screenshot is saved
// and its text logged.
func openPage(browser context.Context, t *testing.T, name, url string, blockCodec bool) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	p := &page{t: t, ctx: ctx, name: name}
	t.Cleanup(func() {
		if t.Failed() {
			p.dump()
		}
		cancel()
	})
	// The first run opens the tab, which lives as long as that run's
	// context: it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("%s: open a tab: %v", name, err)
	}
	if blockCodec {
		blocked := []*network.BlockPattern{{URLPattern: "*://*:*/codec/*", Block: true}}
		callCtx, cancelCall := context.WithTimeout(ctx, pageTimeout)
		_, err := chromedp.Call(callCtx, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: blocked})
		cancelCall()
		if err != nil {
			t.Fatalf("%s: block the codec endpoint: %v", name, err)
		}
	}
	if err := p.do(chromedp.Navigate(url)); err != nil {
		t.Fatalf("%s: open %s: %v", name, url, err)
	}
	return p
}

// do runs browser actions with pageTimeout.
func (p *page) do(steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(p.ctx, pageTimeout)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// eval runs a JavaScript expression in the page and returns its value.
func eval[T any](p *page, expression string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expression))
}

// text is the rendered text (innerText) of the first element matching the
// CSS selector, "" while there is none.
func (p *page) text(selector string) string {
	q, _ := json.Marshal(selector)
	s, err := eval[string](p, fmt.Sprintf(`document.querySelector(%s)?.innerText ?? ""`, q))
	if err != nil {
		p.t.Logf("%s: read %s: %v", p.name, selector, err)
	}
	return s
}

// waitText polls the text of selector until ok accepts it, and fails the
// test after pageTimeout. It returns the accepted text.
func (p *page) waitText(selector, what string, ok func(string) bool) string {
	p.t.Helper()
	deadline := time.Now().Add(pageTimeout)
	for {
		s := p.text(selector)
		if ok(s) {
			return s
		}
		p.reloadAnInternalError()
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: %s not shown after %s; %s reads:\n%s", p.name, what, pageTimeout, selector, s)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitTrue polls a JavaScript expression until it is true (an element the
// UI renders once its data arrived), and fails the test after pageTimeout.
// A page showing the UI's "Internal Error" is reloaded.
func (p *page) waitTrue(what, expression string) {
	p.t.Helper()
	deadline := time.Now().Add(pageTimeout)
	for {
		done, err := eval[bool](p, expression)
		if err == nil && done {
			return
		}
		p.reloadAnInternalError()
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: %s not done after %s (last error: %v)", p.name, what, pageTimeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// reloadAnInternalError reloads a page the UI replaced with its "Internal
// Error" (a query the worker did not answer in time, on a busy machine),
// as a person would.
func (p *page) reloadAnInternalError() {
	if !strings.Contains(p.text("body"), uiInternalError) {
		return
	}
	p.t.Logf("%s: the UI shows %q; reloading", p.name, uiInternalError)
	if err := p.do(chromedp.Reload()); err != nil {
		p.t.Logf("%s: reload: %v", p.name, err)
	}
}

// dump saves the tab's screenshot where it outlives the test and logs its
// text, for a failure's post-mortem.
func (p *page) dump() {
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	if shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err != nil {
		p.t.Logf("%s: screenshot: %v", p.name, err)
	} else if dir, err := os.MkdirTemp("", "tenantflow-webui-"); err == nil {
		path := filepath.Join(dir, strings.ReplaceAll(p.name, " ", "-")+".png")
		if err := os.WriteFile(path, shot, 0o644); err == nil {
			p.t.Logf("%s: screenshot saved to %s", p.name, path)
		}
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	p.t.Logf("%s: page %s reads:\n%s", p.name, loc, p.text("body"))
}

// requireChromium is Debian's chromium, or the test is unavailable.
func requireChromium(t *testing.T) string {
	t.Helper()
	return harness.RequireBinary(t, "chromium", "chromium")
}
