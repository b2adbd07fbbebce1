package harness

import (
	"os/exec"
	"path/filepath"
	"testing"
)

// BuildTenantflow compiles the real tenantflow binary into a temporary
// directory, for tests that run it as users do (skipped in -short).
func BuildTenantflow(t testing.TB) string {
	t.Helper()
	SkipShort(t, "the tenantflow binary")
	bin := filepath.Join(t.TempDir(), "tenantflow")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tenantflow")
	cmd.Dir = RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build tenantflow: %v\n%s", err, out)
	}
	return bin
}
