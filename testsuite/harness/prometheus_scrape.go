package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ScrapeJob is a scrape job a test adds beside the shipped ones: processes
// serving /metrics on loopback, as an operator's own job scrapes
// Tenantflow's workers and API.
type ScrapeJob struct {
	Name    string   // the job label
	Targets []string // host:port of each process
}

// StartPrometheusScraping is StartPrometheus with jobs added to the shipped
// configuration, scraped every PrometheusTestInterval.
func StartPrometheusScraping(t testing.TB, jobs ...ScrapeJob) *Prometheus {
	t.Helper()
	SkipShort(t, "Prometheus")
	promBin := RequireBinary(t, "prometheus", "prometheus")
	bbxBin := RequireBinary(t, "prometheus-blackbox-exporter", "prometheus-blackbox-exporter")
	dir := t.TempDir()
	sd := filepath.Join(dir, "targets")
	if err := os.MkdirAll(sd, 0o755); err != nil {
		t.Fatal(err)
	}
	bbxAddr, promAddr := Addr(FreePort(t)), Addr(FreePort(t))
	src := filepath.Join(RepoRoot(), "deploy", "prometheus")

	bbxConf := filepath.Join(dir, "blackbox.yml")
	copyFile(t, filepath.Join(src, "blackbox.yml"), bbxConf)
	renderYAML(t, filepath.Join(src, "tenantflow-rules.yml"), filepath.Join(dir, "tenantflow-rules.yml"), setRuleDurations)
	promConf := filepath.Join(dir, "prometheus.yml")
	renderYAML(t, filepath.Join(src, "prometheus.yml"), promConf, func(doc map[string]any) error {
		if err := localizeScrapeConfig(doc, dir, sd, bbxAddr); err != nil {
			return err
		}
		return addScrapeJobs(doc, jobs)
	})

	p := &Prometheus{
		URL:   "http://" + promAddr,
		SDDir: sd,
		Blackbox: NewProcess(t, dir, nil, bbxBin,
			"--config.file="+bbxConf, "--web.listen-address="+bbxAddr),
		Server: NewProcess(t, dir, nil, promBin,
			"--config.file="+promConf, "--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+promAddr),
	}
	p.Blackbox.Start()
	p.Server.Start()
	WaitFor(t, "blackbox exporter", 30*time.Second, HTTPOK("http://"+bbxAddr+"/-/healthy"))
	p.WaitReady(t)
	return p
}

// addScrapeJobs appends a static job per ScrapeJob; a name the shipped
// configuration already uses is refused.
func addScrapeJobs(doc map[string]any, jobs []ScrapeJob) error {
	configs, _ := doc["scrape_configs"].([]any)
	for _, j := range jobs {
		for _, c := range configs {
			if c.(map[string]any)["job_name"] == j.Name {
				return fmt.Errorf("scrape job %s already in the shipped configuration", j.Name)
			}
		}
		targets := make([]any, len(j.Targets))
		for i, a := range j.Targets {
			targets[i] = a
		}
		configs = append(configs, map[string]any{
			"job_name":        j.Name,
			"scrape_interval": PrometheusTestInterval.String(),
			"scrape_timeout":  PrometheusTestInterval.String(),
			"static_configs":  []any{map[string]any{"targets": targets}},
		})
	}
	doc["scrape_configs"] = configs
	return nil
}
