package harness

import (
	"fmt"
	"testing"
)

// skipRecorder is a testing.TB whose Skipf records instead of stopping
// the test, so a test can see whether a harness would skip.
type skipRecorder struct {
	testing.TB
	skipped string
}

func (r *skipRecorder) Helper() {}

func (r *skipRecorder) Skipf(format string, args ...any) { r.skipped = fmt.Sprintf(format, args...) }

// The test runs in both modes: under `go test -short` it checks that the
// harnesses skip, otherwise that they do not.
func TestSkipShortSkipsOnlyInShortMode(t *testing.T) {
	t.Setenv(RequireEnv, "1") // short mode wins even where CI requires integrations
	r := &skipRecorder{TB: t}
	SkipShort(r, "slapd")
	if testing.Short() && r.skipped != "short mode: slapd is an integration" {
		t.Fatalf("short mode: want a skip naming slapd, got %q", r.skipped)
	}
	if !testing.Short() && r.skipped != "" {
		t.Fatalf("not short: want no skip, got %q", r.skipped)
	}
}
