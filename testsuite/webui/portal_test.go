package webui

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tenantflow/tenantflow/internal/demoimage"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// TestDistributorPortal walks the portal as a distributor would, in a real
// headless Chromium against a real `tenantflow dev`: sign in (a wrong token
// first), create a customer (a refused name first, shown next to its
// field), watch its provisioning reach "active" live, fetch its
// credentials once, then request and confirm its decommission. Keyboard
// and phone use are checked on the way. TENANTFLOW_PORTAL_SCREENSHOTS=dir
// keeps the pages' screenshots there (the README's come from it).
func TestDistributorPortal(t *testing.T) {
	harness.SkipShort(t, "the portal in Chromium")
	chromium := requireChromium(t)
	cli := harness.TemporalCLI(t)
	docker := harness.Docker(t)
	harness.DemoImage(t, docker, demoimage.Tag, "v1")

	name := "portal-" + harness.UniqueSuffix()
	t.Cleanup(func() {
		ctx := context.Background()
		_ = docker.RemoveServices(ctx, name, "")
		_ = docker.RemoveVolumes(ctx, name, "")
		_ = docker.RemoveNetwork(ctx, name, "")
	})
	// A directory, so the customer has an administrator account whose
	// credentials the portal hands out.
	slapd := harness.StartSlapd(t)
	base := "ou=tenants," + slapd.Suffix
	slapd.AddOU(t, base)
	dev := startDev(t, cli, "TENANTFLOW_LDAP_ENABLED=true", "TENANTFLOW_LDAP_URL="+slapd.URL,
		"TENANTFLOW_LDAP_BIND_DN="+slapd.RootDN, "TENANTFLOW_LDAP_BIND_PASSWORD="+slapd.RootPassword, "TENANTFLOW_LDAP_BASE_DN="+base)
	token := devToken(t, filepath.Join(dev.DataDir, "dev-tokens.json"), "distributor")
	// A customer already there, so the list has more than one.
	if code, body := dev.do(http.MethodPost, "/v1/tenants", map[string]any{"name": name + "-old", "template": "light", "stage": "staging"}); code != http.StatusAccepted {
		t.Fatalf("POST /v1/tenants: %d %v", code, body)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = docker.RemoveServices(ctx, name+"-old", "")
		_ = docker.RemoveVolumes(ctx, name+"-old", "")
		_ = docker.RemoveNetwork(ctx, name+"-old", "")
	})
	dev.waitActive(name+"-old", time.Minute)

	browser := startBrowser(t, chromium)
	p := openPage(browser, t, "portal", dev.APIURL+"/portal", false)
	shots := os.Getenv("TENANTFLOW_PORTAL_SCREENSHOTS")

	// Keyboard: the token field has the focus.
	p.waitText("h1", "the sign-in page", equals("Sign in"))
	if got, _ := eval[string](p, `document.activeElement.id`); got != "token" {
		t.Errorf("the sign-in page focuses %q, want the token field", got)
	}
	p.must("a wrong token", chromedp.SetValue("#token", "wrong-token-0123456789"), chromedp.Submit("#token"))
	p.waitText("#token-error", "the refused token's message", contains("not accepted"))
	p.must("the token", chromedp.SetValue("#token", token), chromedp.Submit("#token"))
	p.waitText("h1", "the customers page", equals("Customers"))
	p.waitText("table.tenants", "the customer already there", contains(name+"-old"))
	p.screenshot(shots, "portal-customers")
	// Keyboard: the first Tab reaches the skip link.
	p.must("tab", chromedp.KeyEvent("\t"))
	if got, _ := eval[string](p, `document.activeElement.className`); got != "skip" {
		t.Errorf("the first Tab focuses %q, want the skip link", got)
	}

	// A phone: the list reflows, nothing to scroll sideways.
	p.must("phone size", chromedp.EmulateViewport(390, 844))
	p.must("reload", chromedp.Reload())
	p.waitText("h1", "the customers page on a phone", equals("Customers"))
	if wide, _ := eval[bool](p, `document.documentElement.scrollWidth > window.innerWidth`); wide {
		t.Errorf("the customers page scrolls sideways on a 390px-wide phone")
	}
	p.screenshot(shots, "portal-phone")
	p.must("desktop size", chromedp.EmulateViewport(1280, 900))

	p.must("new customer", chromedp.Click(`a[href="/portal/tenants/new"].button`))
	p.waitText("h1", "the new-customer form", equals("New customer"))
	p.must("a refused name", chromedp.SetValue("#name", "Bad_Name"), chromedp.Submit("#name"))
	p.waitText("#name-error", "the name's refusal next to it", contains("name"))
	if id, _ := eval[string](p, `document.activeElement.id`); id != "name" {
		t.Errorf("after a refusal the focus is on %q, want the name field", id)
	}
	p.must("the template", chromedp.SetValue("#template", "light"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("template").dispatchEvent(new Event("change"))`))
	if hidden, _ := eval[bool](p, `document.querySelector('[data-template="default"]').hidden && !document.querySelector('[data-template="light"]').hidden`); !hidden {
		t.Errorf("choosing light does not show its options alone")
	}
	p.must("a valid customer", chromedp.SetValue("#name", name),
		chromedp.SetValue(`[name="setting.light.TITLE"]`, "Portal Inc"),
		chromedp.Submit("#name"))

	// Its page follows the provisioning live: it first shows it under way,
	// then "active" without the test reloading (the page's script does,
	// on the state's change it got over the event stream).
	first := p.waitText(`.heading [data-live="state"]`, "the new customer's page", nonEmpty)
	t.Logf("the new customer's page first shows %q", first)
	if first == "active" {
		t.Fatalf("the customer was active before its page showed: nothing followed live")
	}
	p.screenshot(shots, "portal-provisioning")
	p.waitText(`.heading [data-live="state"]`, "the state reaching active live", equals("active"))
	p.waitText(`[data-live="url"]`, "the customer's address", contains("http://"))
	p.screenshot(shots, "portal-customer")

	p.must("credentials", chromedp.Click(`a[href$="/credentials"]`))
	p.waitText(".warning", "the warning before the password", contains("shown once"))
	p.must("show them", chromedp.Click(`form[action$="/credentials"] button`))
	password := p.waitText("#password", "the password", nonEmpty)
	if len(password) < 12 {
		t.Errorf("password %q is too short to be a generated one", password)
	}
	p.must("back", chromedp.Navigate(dev.APIURL+"/portal/tenants/"+name))
	p.waitText("section.card:last-of-type", "the credentials handed out", contains("handed out"))

	p.must("decommission", chromedp.Click(`a[href$="/decommission"]`))
	p.must("no reason", chromedp.Submit("#reason"))
	p.waitText("#reason-error", "the missing reason", contains("Say why"))
	p.must("a reason", chromedp.SetValue("#reason", "contract ended"), chromedp.Submit("#reason"))
	p.waitText(".notice", "the request's notice", contains("Nothing is removed until it is confirmed"))
	p.must("confirm", chromedp.Click(`form[action$="/decommission/confirm"] button`))
	// The page may reload as the state moves on, and drop the notice:
	// the API says what was done.
	var d map[string]any
	harness.WaitFor(t, "the confirmed decommission", pageTimeout, func() error {
		_, state := dev.do(http.MethodGet, "/v1/tenants/"+name, nil)
		d, _ = state["decommission"].(map[string]any)
		if d["phase"] == nil || d["phase"] == "awaiting-confirmation" {
			return fmt.Errorf("decommission: %v", d)
		}
		return nil
	})
	if d["requestedBy"] != "distributor" || d["confirmedBy"] != "distributor" || d["reason"] == nil {
		t.Errorf("decommission as the API shows it: %v", d)
	}
}

// must runs browser actions and fails the test when one does.
func (p *page) must(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := p.do(steps...); err != nil {
		p.t.Fatalf("%s: %s: %v", p.name, what, err)
	}
}

// screenshot keeps the page's screenshot in dir (when set).
func (p *page) screenshot(dir, name string) {
	p.t.Helper()
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Errorf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), shot, 0o644); err != nil {
		p.t.Error(err)
	}
}

func equals(want string) func(string) bool {
	return func(s string) bool { return strings.TrimSpace(s) == want }
}

func contains(want string) func(string) bool {
	return func(s string) bool { return strings.Contains(s, want) }
}

func nonEmpty(s string) bool { return strings.TrimSpace(s) != "" }
