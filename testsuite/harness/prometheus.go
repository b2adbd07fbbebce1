package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Test timings that replace the shipped ones, so an alert fires in seconds.
const (
	PrometheusTestInterval = time.Second     // scrape and rule evaluation
	PrometheusTestAlertFor = 2 * time.Second // every rule's for:
)

// PrometheusJob is the scrape job of deploy/prometheus/prometheus.yml that
// probes the tenants.
const PrometheusJob = "tenantflow-blackbox"

// Prometheus is a Prometheus server and a blackbox exporter started for one
// test from the files in deploy/prometheus (what operators get), rendered
// with the test's directories, ports and timings.
type Prometheus struct {
	URL      string // http://127.0.0.1:<port>
	SDDir    string // the file_sd directory the job globs
	Server   *Process
	Blackbox *Process
}

// StartPrometheus starts the blackbox exporter and Prometheus on free
// loopback ports and waits until both are ready.
func StartPrometheus(t testing.TB) *Prometheus {
	t.Helper()
	return StartPrometheusScraping(t)
}

// WaitReady waits for Prometheus to answer /-/ready (after a restart).
func (p *Prometheus) WaitReady(t testing.TB) {
	t.Helper()
	WaitFor(t, "prometheus", time.Minute, HTTPOK(p.URL+"/-/ready"))
}

// API GETs a Prometheus HTTP API path (/api/v1/...) and decodes its data
// field into out.
func (p *Prometheus) API(path string, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("GET %s: status %d: %w", path, resp.StatusCode, err)
	}
	if env.Status != "success" {
		return fmt.Errorf("GET %s: %s: %s", path, env.Status, env.Error)
	}
	return json.Unmarshal(env.Data, out)
}

// HTTPOK is a ready func for WaitFor: GET url answers 200.
func HTTPOK(url string) func() error {
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("GET %s: %w", url, err)
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
		}
		return nil
	}
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// renderYAML rewrites a shipped YAML file for the test through edit, which
// fails when the file no longer has what the test relies on.
func renderYAML(t testing.TB, from, to string, edit func(map[string]any) error) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("parse %s: %v", from, err)
	}
	if err := edit(doc); err != nil {
		t.Fatalf("render %s for the test: %v", from, err)
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// setRuleDurations shortens every rule's for: to PrometheusTestAlertFor.
func setRuleDurations(doc map[string]any) error {
	n := 0
	groups, _ := doc["groups"].([]any)
	for _, g := range groups {
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, r := range rules {
			rule := r.(map[string]any)
			if _, ok := rule["for"]; ok {
				rule["for"] = PrometheusTestAlertFor.String()
				n++
			}
		}
	}
	if n == 0 {
		return fmt.Errorf("no rule with a for: duration")
	}
	return nil
}

// localizeScrapeConfig points the shipped config at the test's rule file,
// file_sd directory and exporter, with test intervals. The file_sd glob's
// file pattern is kept as shipped.
func localizeScrapeConfig(doc map[string]any, dir, sd, bbxAddr string) error {
	interval := PrometheusTestInterval.String()
	global, ok := doc["global"].(map[string]any)
	if !ok {
		return fmt.Errorf("no global section")
	}
	global["scrape_interval"], global["evaluation_interval"] = interval, interval
	if _, ok := global["scrape_timeout"]; ok {
		global["scrape_timeout"] = interval
	}
	rules, _ := doc["rule_files"].([]any)
	if len(rules) == 0 {
		return fmt.Errorf("no rule_files")
	}
	for i, r := range rules {
		rules[i] = filepath.Join(dir, filepath.Base(r.(string)))
	}
	jobs, _ := doc["scrape_configs"].([]any)
	for _, j := range jobs {
		job := j.(map[string]any)
		if job["job_name"] != PrometheusJob {
			continue
		}
		for _, k := range []string{"scrape_interval", "scrape_timeout"} {
			if _, ok := job[k]; ok {
				job[k] = interval
			}
		}
		files := 0
		sds, _ := job["file_sd_configs"].([]any)
		for _, s := range sds {
			globs, _ := s.(map[string]any)["files"].([]any)
			for i, g := range globs {
				globs[i] = filepath.Join(sd, filepath.Base(g.(string)))
				files++
			}
		}
		exporters := 0
		relabels, _ := job["relabel_configs"].([]any)
		for _, r := range relabels {
			rc := r.(map[string]any)
			if rc["target_label"] == "__address__" {
				rc["replacement"] = bbxAddr
				exporters++
			}
		}
		if files == 0 || exporters != 1 {
			return fmt.Errorf("job %s: %d file_sd globs, %d __address__ relabelings (want ≥1 and 1)", PrometheusJob, files, exporters)
		}
		return nil
	}
	return fmt.Errorf("no scrape job %s", PrometheusJob)
}
