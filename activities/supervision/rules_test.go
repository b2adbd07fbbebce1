package supervision

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// The shipped alert rules are checked and unit-tested by Prometheus's own
// promtool: an alert that stops firing on a failed drill, a stale backup
// or a tenant down fails here, not in production.
func TestShippedAlertRules(t *testing.T) {
	promtool := harness.RequireBinary(t, "promtool", "prometheus")
	dir := filepath.Join(harness.RepoRoot(), "deploy", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "tenantflow-rules.yml"},
		{"test", "rules", "tenantflow-rules.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
