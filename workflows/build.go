package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/build"
	"github.com/tenantflow/tenantflow/activities/gitlab"
)

// BuildWorkflowType is the registered type of the image build workflow.
const BuildWorkflowType = "BuildImage"

// BuildWorkflowID is derived from project and commit (and the tag, for a
// tag build, which must push that tag too), so one commit is never built
// twice at the same time: a second request joins the first.
func BuildWorkflowID(project, sha, tag string) string {
	id := "build:" + project + "@" + sha
	if tag != "" {
		id += "+" + tag
	}
	return id
}

// Build states, as GET /v1/builds/{id} shows them.
const (
	BuildPending   = "pending"
	BuildBuilding  = "building"
	BuildSucceeded = "succeeded"
	BuildFailed    = "failed"
)

// ErrBuildFailed is the failure type of a build that failed permanently.
const ErrBuildFailed = "BuildFailed"

// CommitStatusName is the name of the commit status Tenantflow reports in
// GitLab (the "pipeline" line next to the commit).
const CommitStatusName = "tenantflow/build"

// BuildRequest starts a build.
type BuildRequest struct {
	Build build.BuildInput `json:"build"`
	// TargetURL is where the GitLab commit status links to: the workflow in
	// the Temporal Web UI.
	TargetURL   string `json:"targetUrl,omitempty"`
	RequestedBy string `json:"requestedBy,omitempty"`
	Trigger     string `json:"trigger,omitempty"` // api or webhook
}

// BuildState is a build as the API shows it.
type BuildState struct {
	Project    string      `json:"project"`
	Ref        string      `json:"ref"`
	RefType    string      `json:"refType"`
	SHA        string      `json:"sha"`
	State      string      `json:"state"`
	Image      build.Image `json:"image"`
	Skipped    bool        `json:"skipped"` // the registry held the image already
	Progress   Progress    `json:"progress"`
	Error      string      `json:"error,omitempty"`
	StartedAt  time.Time   `json:"startedAt"`
	FinishedAt *time.Time  `json:"finishedAt,omitempty"`
}

// Reporting to GitLab must not decide a build's outcome: its status calls
// retry for a while and are then given up (and logged).
var commitStatusOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    30 * time.Second,
	ScheduleToCloseTimeout: 10 * time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
	},
}

// A build runs for minutes; it heartbeats its log and push progress, so a
// dead worker is noticed within two minutes and the build retried (it finds
// a finished push in the registry and returns at once).
var buildOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 30 * time.Minute,
	HeartbeatTimeout:    2 * time.Minute,
	WaitForCancellation: true,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    5 * time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
		MaximumAttempts:    3,
	},
}

// BuildImageWorkflow builds one commit into the registry and reports the
// status back to GitLab: pending → running → success/failed. A commit whose
// image is in the registry already is not built again.
func BuildImageWorkflow(ctx workflow.Context, req BuildRequest) (BuildState, error) {
	in := req.Build
	log := workflow.GetLogger(ctx)
	st := BuildState{Project: in.Project, Ref: in.Ref, RefType: in.RefType, SHA: in.SHA, State: BuildPending,
		StartedAt: workflow.Now(ctx), Progress: Progress{Total: 2}}
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryState, func() (BuildState, error) { return st, nil },
		workflow.QueryHandlerOptions{Description: "The build's state, image and digest"}); err != nil {
		return st, err
	}
	var g *gitlab.Activities
	var b *build.Activities
	// Statuses and cleanup run on a disconnected context: a cancelled build
	// still says "failed" in GitLab and untags what it pushed.
	dctx, cancelDisconnected := workflow.NewDisconnectedContext(ctx)
	defer cancelDisconnected()
	// Statuses go out in order from their own coroutine, so a slow or
	// unreachable GitLab never holds the build up; the run waits for the
	// last one only before it closes.
	type commitStatus struct{ state, description string }
	statuses := workflow.NewBufferedChannel(dctx, 4)
	reporter := workflow.NewWaitGroup(dctx)
	reporter.Add(1)
	workflow.Go(dctx, func(ctx workflow.Context) {
		defer reporter.Done()
		var cs commitStatus
		for statuses.Receive(ctx, &cs) {
			err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, commitStatusOptions), g.SetCommitStatus, gitlab.StatusInput{
				ProjectID: in.ProjectID, SHA: in.SHA, State: cs.state, Name: CommitStatusName, Ref: in.Ref,
				TargetURL: req.TargetURL, Description: cs.description,
			}).Get(ctx, nil)
			if err != nil {
				log.Warn("commit status not reported", "state", cs.state, "error", err)
			}
		}
	})
	defer func() {
		statuses.Close()
		reporter.Wait(dctx)
	}()
	status := func(state, description string) { statuses.Send(dctx, commitStatus{state, description}) }
	finish := func(state, errMsg string) {
		now := workflow.Now(ctx)
		st.State, st.Error, st.FinishedAt = state, errMsg, &now
		st.Progress.Step = ""
	}

	status("pending", "queued")
	st.Progress.Step = "check registry"
	lctx := workflow.WithLocalActivityOptions(ctx, localStepOptions)
	if err := workflow.ExecuteLocalActivity(lctx, b.FindImage, in).Get(ctx, &st.Image); err != nil {
		finish(BuildFailed, errorMessage(err))
		status("failed", "registry unreachable")
		return st, temporal.NewNonRetryableApplicationError(st.Error, ErrBuildFailed, err)
	}
	st.Progress.Done++
	if st.Image.Digest != "" {
		st.Skipped = true
		st.Progress.Done++
		finish(BuildSucceeded, "")
		status("success", "already in the registry: "+st.Image.Digest)
		return st, nil
	}

	before := st.Image
	st.State, st.Progress.Step = BuildBuilding, "build and push"
	status("running", "building "+in.Image)
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, buildOptions), b.BuildAndPushImage, in).Get(ctx, &st.Image); err != nil {
		// Untag whatever this build pushed before it failed, keeping every
		// digest the registry held before the build.
		cleanup := build.RemoveInput{Build: in, Keep: before.Digests()}
		if rerr := workflow.ExecuteActivity(workflow.WithActivityOptions(dctx, commitStatusOptions), b.RemoveImage, cleanup).Get(dctx, nil); rerr != nil {
			log.Error("half-pushed image not removed", "error", rerr)
		}
		finish(BuildFailed, errorMessage(err))
		status("failed", truncate(st.Error, 200))
		return st, temporal.NewNonRetryableApplicationError("build "+in.Project+"@"+in.SHA+": "+st.Error, ErrBuildFailed, err)
	}
	st.Progress.Done++
	finish(BuildSucceeded, "")
	status("success", "pushed "+st.Image.Digest)
	log.Info("image built", "ref", st.Image.Ref, "digest", st.Image.Digest)
	return st, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
