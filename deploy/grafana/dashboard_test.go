// Package grafana holds the tests of the shipped Grafana dashboards: each is
// well formed, and each of its queries runs on a real Prometheus scraping a
// running Tenantflow and names only metrics that Tenantflow, the blackbox
// exporter or Prometheus export.
package grafana

import (
	"cmp"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/internal/temporalx"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/temporaltest"
)

// datasourceVar is the datasource every panel and query names: the
// dashboard's variable, chosen in Grafana when the dashboard is imported.
const datasourceVar = "${datasource}"

type dashboard struct {
	file          string
	Title         string `json:"title"`
	UID           string `json:"uid"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Datasource *datasourceRef  `json:"datasource"`
	IncludeAll bool            `json:"includeAll"`
	AllValue   string          `json:"allValue"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []target       `json:"targets"`
	Panels     []panel        `json:"panels"` // a collapsed row's
}

type target struct {
	RefID      string         `json:"refId"`
	Expr       string         `json:"expr"`
	Datasource *datasourceRef `json:"datasource"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// loadDashboards reads every dashboard of this directory.
func loadDashboards(t *testing.T) []dashboard {
	t.Helper()
	files, err := filepath.Glob("*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files, "no dashboard in deploy/grafana")
	var out []dashboard
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		var d dashboard
		require.NoError(t, json.Unmarshal(raw, &d), "%s is not valid JSON", f)
		d.file = f
		out = append(out, d)
	}
	return out
}

// allPanels is every panel, those of collapsed rows included.
func (d dashboard) allPanels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// queryText is a variable's query, a string or (Grafana 10 and later)
// an object holding it.
func (v variable) queryText() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

// variableValues are the values the test gives the dashboard's variables:
// "All" (its allValue, else any value) for query and custom variables.
func (d dashboard) variableValues() (map[string]string, error) {
	vals := map[string]string{}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource": // never inside a query
		case "query", "custom":
			vals[v.Name] = cmp.Or(v.AllValue, ".*")
		case "constant", "textbox":
			vals[v.Name] = v.queryText()
		default:
			return nil, fmt.Errorf("variable %s: type %q is not supported by this test", v.Name, v.Type)
		}
	}
	return vals, nil
}

var (
	labelValuesCall = regexp.MustCompile(`^\s*label_values\(\s*(?:(.*?)\s*,\s*)?(\w+)\s*\)\s*$`)
	queryResultCall = regexp.MustCompile(`^\s*query_result\((.*)\)\s*$`)
)

// variableQuery is a query variable's Prometheus query: label_values(selector,
// label) or query_result(expr).
type variableQuery struct {
	selector, label string // label_values
	expr            string // query_result
}

func parseVariableQuery(q string) (variableQuery, error) {
	if m := labelValuesCall.FindStringSubmatch(q); m != nil {
		return variableQuery{selector: m[1], label: m[2]}, nil
	}
	if m := queryResultCall.FindStringSubmatch(q); m != nil {
		return variableQuery{expr: m[1]}, nil
	}
	return variableQuery{}, fmt.Errorf("%q: only label_values(…) and query_result(…) are supported", q)
}

func TestDashboardsAreWellFormed(t *testing.T) {
	uids := map[string]string{}
	for _, d := range loadDashboards(t) {
		t.Run(d.file, func(t *testing.T) {
			require.NotEmpty(t, d.Title, "title")
			require.NotEmpty(t, d.UID, "uid")
			if other, ok := uids[d.UID]; ok {
				t.Errorf("uid %s is also %s's", d.UID, other)
			}
			uids[d.UID] = d.file
			assert.GreaterOrEqual(t, d.SchemaVersion, 36, "schemaVersion")
			checkVariables(t, d)
			vals, err := d.variableValues()
			require.NoError(t, err)
			ids := map[int]string{}
			for _, p := range d.allPanels() {
				if other, ok := ids[p.ID]; ok || p.ID <= 0 {
					t.Errorf("panel %q: id %d is not unique and positive (also %q)", p.Title, p.ID, other)
				}
				ids[p.ID] = p.Title
				checkPanel(t, p, vals)
			}
		})
	}
}

func checkVariables(t *testing.T, d dashboard) {
	t.Helper()
	found := false
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			found = found || v.Name == "datasource" && v.queryText() == "prometheus"
		case "query":
			if v.Datasource == nil || v.Datasource.UID != datasourceVar {
				t.Errorf("variable %s: datasource is not %s", v.Name, datasourceVar)
			}
			if _, err := parseVariableQuery(v.queryText()); err != nil {
				t.Errorf("variable %s: %v", v.Name, err)
			}
		}
	}
	assert.True(t, found, "a Prometheus datasource variable named datasource")
}

func checkPanel(t *testing.T, p panel, vals map[string]string) {
	t.Helper()
	if strings.TrimSpace(p.Title) == "" {
		t.Errorf("panel %d has no title", p.ID)
	}
	if p.Type == "row" || p.Type == "text" {
		return
	}
	if len(p.Targets) == 0 {
		t.Errorf("panel %d %q has no query", p.ID, p.Title)
	}
	if p.Datasource == nil || p.Datasource.UID != datasourceVar {
		t.Errorf("panel %d %q: datasource is not %s", p.ID, p.Title, datasourceVar)
	}
	refs := map[string]bool{}
	for _, q := range p.Targets {
		if q.RefID == "" || refs[q.RefID] {
			t.Errorf("panel %d %q: refId %q empty or repeated", p.ID, p.Title, q.RefID)
		}
		refs[q.RefID] = true
		if q.Datasource != nil && q.Datasource.UID != datasourceVar {
			t.Errorf("panel %d %q, query %s: datasource is not %s", p.ID, p.Title, q.RefID, datasourceVar)
		}
		if strings.TrimSpace(q.Expr) == "" {
			t.Errorf("panel %d %q, query %s: no expr", p.ID, p.Title, q.RefID)
			continue
		}
		if _, err := substitute(q.Expr, vals); err != nil {
			t.Errorf("panel %d %q, query %s: %v", p.ID, p.Title, q.RefID, err)
		}
	}
}

// Every panel's query and every variable's query runs on a real
// Prometheus that scrapes a running Tenantflow worker and API, and probes
// a tenant through the shipped blackbox job: a query Prometheus refuses,
// or one naming a metric nothing exports, fails here with its panel.
func TestDashboardQueriesRunOnPrometheus(t *testing.T) {
	dashboards := loadDashboards(t)
	workerAddr, apiAddr := harness.Addr(harness.FreePort(t)), harness.Addr(harness.FreePort(t))
	prom := harness.StartPrometheusScraping(t,
		harness.ScrapeJob{Name: "tenantflow-worker", Targets: []string{workerAddr}},
		harness.ScrapeJob{Name: "tenantflow-api", Targets: []string{apiAddr}})
	startTenantflow(t, workerAddr, apiAddr)
	probeTenant(t, prom, "dashboard", "prod", "http://"+apiAddr+"/healthz")
	harness.WaitFor(t, "Prometheus to scrape Tenantflow and probe the tenant", 2*time.Minute, func() error {
		for _, q := range []string{
			`up{job="tenantflow-worker"} == 1`,
			`up{job="tenantflow-api"} == 1`,
			`probe_success{job="tenantflow-blackbox", tenant="dashboard"} == 1`,
			`tenantflow_api_requests_total`, // the API served a scrape or a probe
			`tenantflow_drift_objects`,      // the worker ran a drift reconcile round
		} {
			n, err := countSeries(prom, q)
			if err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
			if n == 0 {
				return fmt.Errorf("%s: no series yet", q)
			}
		}
		return nil
	})
	exported := exportedNames(t, prom)
	for _, d := range dashboards {
		t.Run(d.file, func(t *testing.T) {
			vals, err := d.variableValues()
			require.NoError(t, err)
			for _, v := range d.Templating.List {
				if v.Type == "query" {
					checkVariableQuery(t, prom, v, vals, exported)
				}
			}
			for _, p := range d.allPanels() {
				for _, q := range p.Targets {
					checkQuery(t, prom, fmt.Sprintf("panel %d %q, query %s", p.ID, p.Title, q.RefID), q.Expr, vals, exported)
				}
			}
		})
	}
}

// checkQuery runs expr on Prometheus and checks the names it selects.
func checkQuery(t *testing.T, prom *harness.Prometheus, what, expr string, vals map[string]string, exported map[string]bool) {
	t.Helper()
	q, err := substitute(expr, vals)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	var res struct {
		ResultType string `json:"resultType"`
	}
	if err := prom.API("/api/v1/query?query="+url.QueryEscape(q), &res); err != nil {
		t.Errorf("%s: Prometheus refuses %s: %v", what, q, err)
		return
	}
	checkNames(t, what, q, exported)
}

// checkVariableQuery runs a variable's query as Grafana does; on this
// fleet (one probed tenant) it must find a value.
func checkVariableQuery(t *testing.T, prom *harness.Prometheus, v variable, vals map[string]string, exported map[string]bool) {
	t.Helper()
	what := "variable " + v.Name
	vq, err := parseVariableQuery(v.queryText())
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if vq.expr != "" {
		checkQuery(t, prom, what, vq.expr, vals, exported)
		return
	}
	sel, err := substitute(vq.selector, vals)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	path := "/api/v1/label/" + url.PathEscape(vq.label) + "/values"
	if sel != "" {
		path += "?match[]=" + url.QueryEscape(sel)
	}
	var values []string
	if err := prom.API(path, &values); err != nil {
		t.Errorf("%s: Prometheus refuses label_values(%s, %s): %v", what, sel, vq.label, err)
		return
	}
	if len(values) == 0 {
		t.Errorf("%s: label_values(%s, %s) finds no value with a tenant probed", what, sel, vq.label)
	}
	checkNames(t, what, sel, exported)
}

func checkNames(t *testing.T, what, expr string, exported map[string]bool) {
	t.Helper()
	names, err := metricNames(expr)
	if err != nil {
		t.Errorf("%s: %v", what, err)
	}
	for _, n := range names {
		if !exported[n] {
			t.Errorf("%s: %s is not a metric Tenantflow, the blackbox exporter or Prometheus exports (%s)", what, n, expr)
		}
	}
}

func countSeries(prom *harness.Prometheus, expr string) (int, error) {
	var res struct {
		Result []json.RawMessage `json:"result"`
	}
	err := prom.API("/api/v1/query?query="+url.QueryEscape(expr), &res)
	return len(res.Result), err
}

// startTenantflow runs the real binary as a worker and an API against a
// real Temporal server, each serving /metrics at its address.
func startTenantflow(t *testing.T, workerAddr, apiAddr string) {
	t.Helper()
	harness.Docker(t) // the worker's runtime: it refuses to start without an engine
	bin := harness.BuildTenantflow(t)
	srv := temporaltest.StartTemporal(t)
	dir := t.TempDir()
	env := append(os.Environ(),
		"TENANTFLOW_TEMPORAL_ADDRESS="+srv.Config.Address,
		"TENANTFLOW_TEMPORAL_NAMESPACE="+srv.Config.Namespace,
		"TENANTFLOW_TASK_QUEUE="+srv.Config.TaskQueue,
		"TENANTFLOW_CODEC_KEYS="+temporaltest.TestCodecKeys,
		"TENANTFLOW_LOG_LEVEL=warn",
	)
	worker := harness.NewProcess(t, dir, slices.Concat(env, []string{"TENANTFLOW_WORKER_METRICS_LISTEN=" + workerAddr}), bin, "worker")
	worker.Start()
	api := harness.NewProcess(t, dir, slices.Concat(env, []string{
		"TENANTFLOW_API_LISTEN=" + apiAddr,
		"TENANTFLOW_API_TOKENS_FILE=" + tokensFile(t),
		"TENANTFLOW_TEMPLATES_DIR=" + filepath.Join(harness.RepoRoot(), "deploy", "templates"),
	}), bin, "api")
	api.Start()
	harness.WaitFor(t, "the worker's /metrics", time.Minute, harness.HTTPOK("http://"+workerAddr+"/metrics"))
	harness.WaitFor(t, "the API's /healthz", time.Minute, harness.HTTPOK("http://"+apiAddr+"/healthz"))
}

func tokensFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens.json")
	raw := `{"ops":"dashboard-ops-token","distributor":"dashboard-distributor-token","developer":"dashboard-developer-token"}`
	require.NoError(t, os.WriteFile(path, []byte(raw), 0o600))
	return path
}

// probeTenant writes a target file as the worker's supervision does, so
// the shipped blackbox job probes addr as the tenant's.
func probeTenant(t *testing.T, prom *harness.Prometheus, tenant, stage, addr string) {
	t.Helper()
	raw, err := json.Marshal([]map[string]any{{"targets": []string{addr}, "labels": map[string]string{"tenant": tenant, "stage": stage}}})
	require.NoError(t, err)
	tmp := filepath.Join(prom.SDDir, ".tenantflow-"+tenant+".json")
	require.NoError(t, os.WriteFile(tmp, raw, 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(prom.SDDir, "tenantflow-"+tenant+".json")))
}

// exportedNames are the metric names Prometheus holds (the running
// worker's and API's, the blackbox exporter's probe_*, Prometheus's own
// up) and those Tenantflow's source defines: a counter with labels shows
// only once counted, a workflow's metric once the workflow ran.
func exportedNames(t *testing.T, prom *harness.Prometheus) map[string]bool {
	t.Helper()
	var live []string
	require.NoError(t, prom.API("/api/v1/label/__name__/values", &live))
	names := sourceMetricNames(t)
	for _, n := range live {
		if strings.HasPrefix(n, "tenantflow_") && !names[n] {
			t.Errorf("the running Tenantflow exports %s, which the scan of the source missed: teach sourceMetricNames how it is defined", n)
		}
		names[n] = true
	}
	return names
}

// metricDecl is a metric defined in the source: through the Temporal
// SDK's metrics handler (Counter, Gauge, Timer: exported by
// OpenTelemetry's Prometheus exporter) or client_golang (*Opts).
type metricDecl struct{ kind, name string }

var metricName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// sourceMetricNames finds every metric the repository's shipped code
// defines and records it through the same exporters the processes use, so
// the names carry the suffixes Prometheus sees (_total, _seconds,
// _bucket…).
func sourceMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	decls := declaredMetrics(t)
	require.NotEmpty(t, decls)
	otelReg, promReg := prometheus.NewRegistry(), prometheus.NewRegistry()
	h, err := temporalx.MetricsHandler(otelReg)
	require.NoError(t, err)
	for _, d := range decls {
		switch d.kind {
		case "Counter":
			h.Counter(d.name).Inc(1)
		case "Gauge":
			h.Gauge(d.name).Update(1)
		case "Timer":
			h.Timer(d.name).Record(time.Second)
		case "CounterOpts":
			promReg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: d.name, Help: d.name}))
		case "GaugeOpts":
			promReg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: d.name, Help: d.name}))
		case "HistogramOpts":
			promReg.MustRegister(prometheus.NewHistogram(prometheus.HistogramOpts{Name: d.name, Help: d.name}))
		case "SummaryOpts":
			promReg.MustRegister(prometheus.NewSummary(prometheus.SummaryOpts{Name: d.name, Help: d.name}))
		}
	}
	names := map[string]bool{}
	for _, reg := range []*prometheus.Registry{otelReg, promReg} {
		families, err := reg.Gather()
		require.NoError(t, err)
		for _, f := range families {
			n := f.GetName()
			switch f.GetType().String() {
			case "HISTOGRAM":
				names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
			case "SUMMARY":
				names[n], names[n+"_sum"], names[n+"_count"] = true, true, true
			default:
				names[n] = true
			}
		}
	}
	return names
}

// declaredMetrics reads the metric definitions of the module's non-test
// Go files (testsuite's servers and fakes are not Tenantflow).
func declaredMetrics(t *testing.T) []metricDecl {
	t.Helper()
	root := harness.RepoRoot()
	seen := map[metricDecl]bool{}
	var out []metricDecl
	add := func(d metricDecl) {
		if metricName.MatchString(d.name) && !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if path != root && (strings.HasPrefix(e.Name(), ".") || e.Name() == "testsuite" || e.Name() == "testdata" || isModule(path)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if d, ok := handlerMetric(n); ok {
					add(d)
				}
			case *ast.CompositeLit:
				if d, ok := clientGolangMetric(t, fset, n); ok {
					add(d)
				}
			}
			return true
		})
		return nil
	})
	require.NoError(t, err)
	return out
}

// handlerMetric recognizes m.Counter("name"), m.Gauge("name") and
// m.Timer("name") of a Temporal metrics handler.
func handlerMetric(call *ast.CallExpr) (metricDecl, bool) {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || len(call.Args) != 1 || !slices.Contains([]string{"Counter", "Gauge", "Timer"}, sel.Sel.Name) {
		return metricDecl{}, false
	}
	name, ok := stringLit(call.Args[0])
	return metricDecl{kind: sel.Sel.Name, name: name}, ok
}

// clientGolangMetric recognizes prometheus.CounterOpts{Name: "name"} and
// its Gauge, Histogram and Summary siblings.
func clientGolangMetric(t *testing.T, fset *token.FileSet, lit *ast.CompositeLit) (metricDecl, bool) {
	sel, ok := lit.Type.(*ast.SelectorExpr)
	if !ok || !slices.Contains([]string{"CounterOpts", "GaugeOpts", "HistogramOpts", "SummaryOpts"}, sel.Sel.Name) {
		return metricDecl{}, false
	}
	if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "prometheus" {
		return metricDecl{}, false
	}
	d := metricDecl{kind: sel.Sel.Name}
	for _, e := range lit.Elts {
		kv, ok := e.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		switch key, _ := kv.Key.(*ast.Ident); {
		case key == nil:
		case key.Name == "Name":
			d.name, ok = stringLit(kv.Value)
			if !ok {
				t.Errorf("%s: a metric name that is not a string literal", fset.Position(kv.Pos()))
			}
		case key.Name == "Namespace" || key.Name == "Subsystem":
			t.Errorf("%s: %s is not supported by sourceMetricNames: write the full name", fset.Position(kv.Pos()), key.Name)
		}
	}
	return d, d.name != ""
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// isModule tells a nested module (its own go.mod), which is not part of
// what Tenantflow ships.
func isModule(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "go.mod"))
	return err == nil
}
