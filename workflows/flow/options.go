package flow

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// LocalStep are the options of short, idempotent calls run as local
// activities: they cost no round trip to the server, which keeps
// orchestration overhead small. They retry for up to 10 minutes (a Docker
// host restarting, a registry blinking) before the operation is given up
// and compensated.
var LocalStep = workflow.LocalActivityOptions{
	ScheduleToCloseTimeout: 10 * time.Minute,
	StartToCloseTimeout:    time.Minute,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    200 * time.Millisecond,
		BackoffCoefficient: 2,
		MaximumInterval:    15 * time.Second,
	},
}

// OutsideCall are the options of a call to an outside system (DNS, the
// proxy, the CMDB, Temporal's visibility, …) as a regular activity, so ops
// see each attempt and its last failure in the Web UI while a server is
// down. It keeps retrying for 30 minutes: an outage of that length is
// waited out, a longer one fails the operation, which compensates. A
// cancelled call is waited for, so compensation never races a step that
// is still creating.
var OutsideCall = workflow.ActivityOptions{
	StartToCloseTimeout:    30 * time.Second,
	ScheduleToCloseTimeout: 30 * time.Minute,
	WaitForCancellation:    true,
	RetryPolicy: &temporal.RetryPolicy{
		InitialInterval:    time.Second,
		BackoffCoefficient: 2,
		MaximumInterval:    30 * time.Second,
	},
}
