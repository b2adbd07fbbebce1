// Package imagebuild is the BuildImage workflow and its contract: one
// commit (of a GitLab project, or any git repository) built into the
// private registry, its status reported back to GitLab for GitLab's.
package imagebuild

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/build"
	"github.com/tenantflow/tenantflow/activities/gitlab"
	"github.com/tenantflow/tenantflow/workflows/flow"
)

// WorkflowType is the registered type of the image build workflow.
const WorkflowType = "BuildImage"

// WorkflowID is derived from project and commit (and the tag, for a
// tag build, which must push that tag too), so one commit is never built
// twice at the same time: a second request joins the first.
func WorkflowID(project, sha, tag string) string {
	id := "build:" + project + "@" + sha
	if tag != "" {
		id += "+" + tag
	}
	return id
}

// ErrBuildFailed is the failure type of a build that failed permanently.
const ErrBuildFailed = "BuildFailed"

// CommitStatusName is the name of the commit status Tenantflow reports in
// GitLab (the "pipeline" line next to the commit).
const CommitStatusName = "tenantflow/build"

// Request starts a build.
type Request struct {
	Build build.BuildInput `json:"build"`
	// TargetURL is where the GitLab commit status links to: the workflow in
	// the Temporal Web UI.
	TargetURL   string `json:"targetUrl,omitempty"`
	RequestedBy string `json:"requestedBy,omitempty"`
	Trigger     string `json:"trigger,omitempty"` // api or webhook
}

// Build is a build as the API shows it.
type Build struct {
	Project    string        `json:"project"`
	Ref        string        `json:"ref"`
	RefType    string        `json:"refType"`
	SHA        string        `json:"sha"`
	State      State         `json:"state"`
	Image      build.Image   `json:"image"`
	Skipped    bool          `json:"skipped"` // the registry held the image already
	Progress   flow.Progress `json:"progress"`
	Error      string        `json:"error,omitempty"`
	StartedAt  time.Time     `json:"startedAt"`
	FinishedAt *time.Time    `json:"finishedAt,omitempty"`
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

// QueryState is the query that returns the Build.
const QueryState = "state"

// Workflow builds one commit into the registry and reports the status
// back to GitLab: pending → running → success/failed. A commit whose image
// is in the registry already is not built again.
func Workflow(ctx workflow.Context, req Request) (Build, error) {
	in := req.Build
	b := &builder{in: in, st: Build{Project: in.Project, Ref: in.Ref, RefType: in.RefType, SHA: in.SHA,
		State: flow.Must(stateNew.To(StatePending)), StartedAt: workflow.Now(ctx), Progress: flow.Progress{Total: 2}}}
	if err := workflow.SetQueryHandlerWithOptions(ctx, QueryState, func() (Build, error) { return b.st, nil },
		workflow.QueryHandlerOptions{Description: "The build's state, image and digest"}); err != nil {
		return b.st, err
	}
	// Statuses and cleanup run on a disconnected context: a cancelled build
	// still says "failed" in GitLab and untags what it pushed.
	dctx, cancelDisconnected := workflow.NewDisconnectedContext(ctx)
	defer cancelDisconnected()
	b.dctx = dctx
	b.report = startReporter(dctx, req)
	defer b.report.close(dctx)
	err := b.run(ctx)
	return b.st, err
}

// builder is one build run: what it builds, where it stands, and its
// status reporter.
type builder struct {
	in     build.BuildInput
	st     Build
	dctx   workflow.Context
	report *reporter
}

// run finds the image in the registry, or builds and pushes it.
func (b *builder) run(ctx workflow.Context) error {
	b.report.send(b.dctx, "pending", "queued")
	b.st.Progress.Step = "check registry"
	if err := workflow.ExecuteLocalActivity(workflow.WithLocalActivityOptions(ctx, flow.LocalStep), builds.FindImage, b.in).Get(ctx, &b.st.Image); err != nil {
		b.finish(StateFailed, flow.ErrorMessage(err))
		b.report.send(b.dctx, "failed", "registry unreachable")
		return temporal.NewNonRetryableApplicationError(b.st.Error, ErrBuildFailed, err)
	}
	b.st.Progress.Done++
	if b.st.Image.Digest != "" {
		b.st.Skipped = true
		b.st.Progress.Done++
		b.finish(StateSucceeded, "")
		b.report.send(b.dctx, "success", "already in the registry: "+b.st.Image.Digest)
		return nil
	}
	return b.buildAndPush(ctx)
}

// buildAndPush builds the image and pushes it. A failed build untags
// whatever it pushed, keeping every digest the registry held before.
func (b *builder) buildAndPush(ctx workflow.Context) error {
	before := b.st.Image
	b.st.State = flow.Must(b.st.State.To(StateBuilding))
	b.st.Progress.Step = "build and push"
	b.report.send(b.dctx, "running", "building "+b.in.Image)
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, buildOptions), builds.BuildAndPushImage, b.in).Get(ctx, &b.st.Image); err != nil {
		cleanup := build.RemoveInput{Build: b.in, Keep: before.Digests()}
		if rerr := workflow.ExecuteActivity(workflow.WithActivityOptions(b.dctx, commitStatusOptions), builds.RemoveImage, cleanup).Get(b.dctx, nil); rerr != nil {
			workflow.GetLogger(ctx).Error("half-pushed image not removed", "error", rerr)
		}
		b.finish(StateFailed, flow.ErrorMessage(err))
		b.report.send(b.dctx, "failed", truncate(b.st.Error, 200))
		return temporal.NewNonRetryableApplicationError("build "+b.in.Project+"@"+b.in.SHA+": "+b.st.Error, ErrBuildFailed, err)
	}
	b.st.Progress.Done++
	b.finish(StateSucceeded, "")
	b.report.send(b.dctx, "success", "pushed "+b.st.Image.Digest)
	workflow.GetLogger(ctx).Info("image built", "ref", b.st.Image.Ref, "digest", b.st.Image.Digest)
	return nil
}

// finish ends the build in a final state.
func (b *builder) finish(state State, errMsg string) {
	b.st.State = flow.Must(b.st.State.To(state))
	b.st.Error, b.st.FinishedAt = errMsg, timePtr(workflow.Now(b.dctx))
	b.st.Progress.Step = ""
}

func timePtr(t time.Time) *time.Time { return &t }

// reporter sends the build's commit statuses to GitLab in order from its
// own coroutine, so a slow or unreachable GitLab never holds the build up;
// the run waits for the last one only before it closes.
type reporter struct {
	statuses workflow.Channel
	done     workflow.WaitGroup
	// off: a git project's build, with no GitLab to report to (decided
	// by the input, so replays of GitLab builds are unchanged).
	off bool
}

type commitStatus struct{ state, description string }

func startReporter(dctx workflow.Context, req Request) *reporter {
	r := &reporter{statuses: workflow.NewBufferedChannel(dctx, 4), done: workflow.NewWaitGroup(dctx), off: req.Build.Git != ""}
	r.done.Add(1)
	workflow.Go(dctx, func(ctx workflow.Context) {
		defer r.done.Done()
		var cs commitStatus
		for r.statuses.Receive(ctx, &cs) {
			err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, commitStatusOptions), gl.SetCommitStatus, gitlab.StatusInput{
				ProjectID: req.Build.ProjectID, SHA: req.Build.SHA, State: cs.state, Name: CommitStatusName, Ref: req.Build.Ref,
				TargetURL: req.TargetURL, Description: cs.description,
			}).Get(ctx, nil)
			if err != nil {
				workflow.GetLogger(ctx).Warn("commit status not reported", "state", cs.state, "error", err)
			}
		}
	})
	return r
}

func (r *reporter) send(dctx workflow.Context, state, description string) {
	if r.off {
		return
	}
	r.statuses.Send(dctx, commitStatus{state, description})
}

// close lets the last status go out before the run ends.
func (r *reporter) close(dctx workflow.Context) {
	r.statuses.Close()
	r.done.Wait(dctx)
}

// The activities the build workflow calls (see the tenant package's
// activities.go for why nil pointers).
var (
	builds *build.Activities
	gl     *gitlab.Activities
)

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
