package tenant

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
)

// Every activity's timeouts and retries, in one place.

// Short, idempotent runtime calls run as local activities (see
// flow.LocalStep).
var localStepOptions = flow.LocalStep

// Waiting for health can take as long as the template's checks allow, so it
// is a regular activity that heartbeats what it waits for (visible in the Web
// UI) and is retried elsewhere if its worker dies. Its timeout follows the
// health budget (see healthWaitOptions).
var waitHealthyOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 10 * time.Minute,
	HeartbeatTimeout:    15 * time.Second,
	WaitForCancellation: true,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
		MaximumAttempts:    5,
	},
}

// admissionOptions wait in a host's queue (AwaitAdmission) as long as a
// batch takes to start ahead of the tenant. The wait heartbeats its
// place: a worker that dies is noticed and the wait goes on, queued
// again, on another.
var admissionOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 2 * time.Hour,
	HeartbeatTimeout:    30 * time.Second,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
		MaximumAttempts:    5,
	},
}

// healthWaitSlack is what a health wait gets beyond its budget: the
// driver's own last probe and its answer. 10 minutes stays the floor, the
// OpenShift driver's longest rollout of services without a check.
const healthWaitSlack = 2 * time.Minute

// healthWaitOptions are waitHealthyOptions with room for env's health
// budget: an attempt must never be cut off before its budget is spent,
// or a slow start would fail as a timeout after all its retries instead
// of as ServiceUnhealthy once.
func healthWaitOptions(env spec.Environment) workflow.ActivityOptions {
	o := waitHealthyOptions
	o.StartToCloseTimeout = max(o.StartToCloseTimeout, env.HealthBudget()+healthWaitSlack)
	return o
}

// Calls to outside systems are regular activities (see flow.OutsideCall).
var integrationOptions = flow.OutsideCall

// Backing up and verifying read and write every byte of the tenant's
// volumes: regular activities that heartbeat their progress, so a worker
// that dies mid-way is noticed within the heartbeat timeout and the
// activity resumes on another worker (completed volumes are kept, a
// half-written archive is rewritten).
// offsitePruneOptions run PruneOffsite on the pruner's queue (set per
// call). A pruner that does not poll fails it after ScheduleToStart, and
// the next backup tries again: the tenant's operations never wait on it
// for long.
var offsitePruneOptions = workflow.ActivityOptions{
	ScheduleToStartTimeout: 10 * time.Minute,
	StartToCloseTimeout:    6 * time.Hour,
	HeartbeatTimeout:       time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
		MaximumAttempts:    5,
	},
}

var backupOptions = workflow.ActivityOptions{
	StartToCloseTimeout: 6 * time.Hour,
	HeartbeatTimeout:    10 * time.Second,
	WaitForCancellation: true,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    time.Minute,
		MaximumAttempts:    10,
	},
}

// copyOptions run a move's live pre-copy on the source host: long, with
// progress; a retry sends what still differs.
var copyOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    6 * time.Hour,
	ScheduleToStartTimeout: hostStartTimeout,
	HeartbeatTimeout:       10 * time.Second,
	WaitForCancellation:    true,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
		MaximumAttempts:    5,
	},
}

// finalCopyOptions run the final pass, while the tenant is down: what
// changed since the pre-copy is small, so a stuck pass fails fast and the
// move rolls back to the source.
var finalCopyOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    10 * time.Minute,
	ScheduleToStartTimeout: time.Minute,
	HeartbeatTimeout:       10 * time.Second,
	WaitForCancellation:    true,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    200 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    5 * time.Second,
		MaximumAttempts:    3,
	},
}

// Once the backup is verified there is no way back: every teardown step
// retries for a day (an outage of the DNS server or the CMDB is waited
// out) and a step that still fails is reported, not undone.
var teardownOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    time.Minute,
	ScheduleToCloseTimeout: 24 * time.Hour,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    5 * time.Minute,
	},
}

var teardownLocalOptions = workflow.LocalActivityOptions{
	ScheduleToCloseTimeout: 24 * time.Hour,
	StartToCloseTimeout:    time.Minute,
	RetryPolicy:            teardownOptions.RetryPolicy,
}

// stopGrace is how long each service may finish its work after SIGTERM
// when a decommission stops it.
const stopGrace = 10 * time.Second

// defaultStopGrace is how long a retired instance may finish in-flight
// requests after SIGTERM.
const defaultStopGrace = 10 * time.Second

// defaultPullBudget bounds an image pull (with its retries through a
// registry outage) when the release sets no larger health timeout: the
// tenant takes no other operation while its cut-over pulls.
const defaultPullBudget = 5 * time.Minute

// ensureImageOptions run the pull as a local activity (idempotent:
// present images are not pulled again) within the release's budget: its
// healthTimeout, or defaultPullBudget if that is longer.
func ensureImageOptions(in ApplyInput) workflow.LocalActivityOptions {
	budget := max(defaultPullBudget, in.HealthTimeout.D())
	return workflow.LocalActivityOptions{
		ScheduleToCloseTimeout: budget,
		StartToCloseTimeout:    budget,
		RetryPolicy:            localStepOptions.RetryPolicy,
	}
}
