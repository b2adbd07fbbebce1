package webui

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/workflows/searchattr"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// BenchmarkPortalCustomers (`make bench-portal`) measures the portal's
// customers page as a distributor loads it, with 200 tenants in the fleet:
// a real `tenantflow dev` (Temporal's visibility, the API's list, the
// portal's rendering), over HTTP with a session cookie. Each iteration
// loads the first page (100 customers) and the second; p50 and p95 of a
// page load and the page's size are reported.
//
// The 200 tenants are tenant workflows as visibility lists them (their
// search attributes as a real tenant sets them), started on a task queue
// no worker polls: the page reads visibility only, so containers would
// change nothing but the time it takes to set up.
func BenchmarkPortalCustomers(b *testing.B) {
	const tenants = 200
	cli := harness.TemporalCLI(b)
	dev := startDev(b, cli)
	seedTenants(b, dev.Temporal, tenants)

	token := devToken(b, filepath.Join(dev.DataDir, "dev-tokens.json"), "distributor")
	c := portalClient(b, dev.APIURL, token)
	first := dev.APIURL + "/portal/tenants"
	// Visibility is eventually consistent: wait until the page lists them.
	harness.WaitFor(b, "200 tenants listed", time.Minute, func() error {
		body, _ := load(c, first)
		if n := strings.Count(body, `<th scope="row"`); n < 100 || !strings.Contains(body, `rel="next"`) {
			return fmt.Errorf("the first page lists %d tenants", n)
		}
		return nil
	})

	var times []time.Duration
	var size int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		body, err := load(c, first)
		if err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
		size = len(body)
		next := nextPage(body)
		if next == "" {
			b.Fatal("no next page")
		}
		start = time.Now()
		body, err = load(c, dev.APIURL+next)
		if err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
		if n := strings.Count(body, `<th scope="row"`); n != tenants-100 {
			b.Fatalf("the second page lists %d tenants, want %d", n, tenants-100)
		}
	}
	b.StopTimer()
	// The same two pages from the API alone: what the portal adds.
	var apiTimes []time.Duration
	for i := 0; i < b.N; i++ {
		pageToken := ""
		for range 2 {
			start := time.Now()
			page, err := listPage(token, dev.APIURL, pageToken)
			if err != nil {
				b.Fatal(err)
			}
			apiTimes = append(apiTimes, time.Since(start))
			pageToken = page
		}
	}
	slices.Sort(apiTimes)
	slices.Sort(times)
	p50, p95 := times[len(times)/2], times[(len(times)*95+99)/100-1]
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p95.Microseconds())/1000, "p95-ms")
	b.ReportMetric(float64(size)/1024, "page-KiB")
	a50, a95 := apiTimes[len(apiTimes)/2], apiTimes[(len(apiTimes)*95+99)/100-1]
	b.Logf("customers page with %d tenants, %d loads: p50 %s, p95 %s (GET /v1/tenants?pageSize=100 alone: p50 %s, p95 %s); the first page (100 customers) is %d KiB",
		tenants, len(times), p50.Round(10*time.Microsecond), p95.Round(10*time.Microsecond), a50.Round(10*time.Microsecond), a95.Round(10*time.Microsecond), size>>10)
}

// listPage reads a page of GET /v1/tenants and returns the next page's
// token.
func listPage(token, apiURL, pageToken string) (string, error) {
	u := apiURL + "/v1/tenants?pageSize=100"
	if pageToken != "" {
		u += "&pageToken=" + url.QueryEscape(pageToken)
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	var page struct{ NextPageToken string }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return "", fmt.Errorf("GET %s: %w", u, err)
	}
	return page.NextPageToken, nil
}

// seedTenants starts n tenant workflows that visibility lists as tenants.
func seedTenants(b *testing.B, hostPort string, n int) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.DialContext(ctx, client.Options{HostPort: hostPort, Namespace: "default"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	states := []string{"active", "active", "active", "provisioning", "suspended", "failed"}
	for i := range n {
		name := fmt.Sprintf("bench-%03d", i)
		_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: tenant.WorkflowID(name), TaskQueue: "portal-bench-idle",
			TypedSearchAttributes: temporal.NewSearchAttributes(
				searchattr.TenantID.ValueSet(name),
				searchattr.TenantState.ValueSet(states[i%len(states)]),
				searchattr.Stage.ValueSet([]string{"prod", "staging"}[i%2]),
			),
		}, tenant.WorkflowType)
		if err != nil {
			b.Fatalf("start %s: %v", name, err)
		}
	}
}

// portalClient is signed in to the portal as a browser is: its session
// cookie, no redirect followed.
func portalClient(b *testing.B, apiURL, token string) *http.Client {
	b.Helper()
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest(http.MethodPost, apiURL+"/portal/signin", strings.NewReader(url.Values{"token": {token}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		b.Fatalf("sign in: %s", resp.Status)
	}
	cookie := resp.Cookies()[0]
	c.Transport = cookieTransport{cookie: cookie}
	return c
}

type cookieTransport struct{ cookie *http.Cookie }

func (t cookieTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.AddCookie(t.cookie)
	return http.DefaultTransport.RoundTrip(r)
}

func load(c *http.Client, u string) (string, error) {
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return string(body), nil
}

// nextPage is the page's "Next page" link, unescaped.
func nextPage(body string) string {
	i := strings.Index(body, `rel="next"`)
	if i < 0 {
		return ""
	}
	j := strings.LastIndex(body[:i], `href="`)
	if j < 0 {
		return ""
	}
	href := body[j+len(`href="`):]
	return strings.ReplaceAll(href[:strings.IndexByte(href, '"')], "&amp;", "&")
}

// BenchmarkCLITenantsList (`make bench-portal`) times `tenantflow tenants
// ls` as a person runs it (a new process each time, to its last line)
// with 1,000 tenants in the fleet: the first page (the API's 100) and the
// whole fleet in one page (--page-size 1000). The tenants are seeded as
// for BenchmarkPortalCustomers.
func BenchmarkCLITenantsList(b *testing.B) {
	const tenants = 1000
	cli := harness.TemporalCLI(b)
	dev := startDev(b, cli)
	seedTenants(b, dev.Temporal, tenants)
	bin := harness.BuildTenantflow(b)
	token := devToken(b, filepath.Join(dev.DataDir, "dev-tokens.json"), "ops")
	run := func(args ...string) (time.Duration, int) {
		cmd := exec.Command(bin, append([]string{"tenants", "ls"}, args...)...)
		cmd.Env = append(envWithoutTenantflow(), "TENANTFLOW_API_URL="+dev.APIURL, "TENANTFLOW_TOKEN="+token)
		start := time.Now()
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("tenantflow tenants ls %v: %v\n%s", args, err, out)
		}
		return time.Since(start), strings.Count(string(out), "bench-")
	}
	harness.WaitFor(b, "1,000 tenants listed", time.Minute, func() error {
		if _, n := run("--page-size", "1000"); n < tenants {
			return fmt.Errorf("%d listed", n)
		}
		return nil
	})

	var first, all []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, n := run()
		if n != 100 {
			b.Fatalf("the first page lists %d tenants, want 100", n)
		}
		first = append(first, d)
		d, n = run("--page-size", "1000")
		if n != tenants {
			b.Fatalf("--page-size 1000 lists %d tenants, want %d", n, tenants)
		}
		all = append(all, d)
	}
	b.StopTimer()
	slices.Sort(first)
	slices.Sort(all)
	b.ReportMetric(float64(first[len(first)/2].Microseconds())/1000, "first-page-p50-ms")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "all-1000-p50-ms")
	b.Logf("tenantflow tenants ls with %d tenants, %d runs each: first page (100) p50 %s, max %s; --page-size 1000 p50 %s, max %s",
		tenants, len(first), first[len(first)/2].Round(time.Millisecond), first[len(first)-1].Round(time.Millisecond),
		all[len(all)/2].Round(time.Millisecond), all[len(all)-1].Round(time.Millisecond))
}
