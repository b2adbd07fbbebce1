package temporaltest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/workflows/searchattr"
)

func hello(ctx workflow.Context, name string) (string, error) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, searchattr.TenantID.ValueSet(name)); err != nil {
		return "", err
	}
	return "hello " + name, nil
}

// The full server on PostgreSQL runs a workflow, keeps its history in
// PostgreSQL and finds it by a custom search attribute (SQL visibility).
func TestTheClusterRunsWorkflowsOnPostgres(t *testing.T) {
	c := StartCluster(t)
	w := worker.New(c.Client, "cluster-test", worker.Options{})
	w.RegisterWorkflow(hello)
	require.NoError(t, w.Start())
	defer w.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run, err := c.Client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "hello-pg", TaskQueue: "cluster-test"}, hello, "pg")
	require.NoError(t, err)
	var out string
	require.NoError(t, run.Get(ctx, &out))
	require.Equal(t, "hello pg", out)
	require.Eventually(t, func() bool {
		resp, err := c.Client.ListWorkflow(ctx, listRequest(c, `TenantId = "pg"`))
		return err == nil && len(resp.GetExecutions()) == 1 &&
			resp.GetExecutions()[0].GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED
	}, 30*time.Second, 200*time.Millisecond, "found through SQL visibility")
}

func listRequest(c *Cluster, query string) *workflowservice.ListWorkflowExecutionsRequest {
	return &workflowservice.ListWorkflowExecutionsRequest{Namespace: c.Config.Namespace, Query: query}
}
