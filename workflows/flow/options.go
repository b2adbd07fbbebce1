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
