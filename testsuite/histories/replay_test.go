package histories_test

import (
	"path/filepath"
	"testing"

	"go.temporal.io/sdk/worker"

	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/temporaltest"
	"github.com/tenantflow/tenantflow/wiring"
)

// TestReplayCommittedHistories replays every history recorded from real runs
// (testsuite/histories/*.json, refreshed with `make histories`) against the
// current workflow code. A change that would break running workflows (a
// reordered activity, a removed step without versioning) fails here.
func TestReplayCommittedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(harness.RepoRoot(), "testsuite", "histories", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no committed histories under testsuite/histories: run `make histories`")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			replayer, err := worker.NewWorkflowReplayerWithOptions(worker.WorkflowReplayerOptions{
				DataConverter:    temporaltest.TestKeyring(t).DataConverter(),
				FailureConverter: temporaltest.TestKeyring(t).FailureConverter(),
			})
			if err != nil {
				t.Fatal(err)
			}
			wiring.RegisterWorkflows(replayer)
			if err := replayer.ReplayWorkflowHistoryFromJSONFile(nil, f); err != nil {
				t.Fatalf("replay %s: %v", filepath.Base(f), err)
			}
		})
	}
}
