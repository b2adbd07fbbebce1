package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/integrations"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/searchattr"
)

type provisionSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env   *testsuite.TestWorkflowEnvironment
	mu    sync.Mutex
	calls []string
	sa    temporal.SearchAttributes // last upserted
	plan  integrations.Plan         // what PlanIntegrations answers
	down  string                    // an integration activity that always fails, retryably
	// pruner is the off-site pruner's queue CopyOffsite reports.
	pruner string
	// queues is the task queue each recorded runtime call ran on.
	queues map[string]string
	// queued is the place Admit answers (the zero value: admitted).
	queued *runtimes.Admission
	// failCall names a directory call that fails permanently.
	failCall string
}

func TestProvision(t *testing.T) { suite.Run(t, new(provisionSuite)) }

func (s *provisionSuite) SetupTest() {
	s.pruner = ""
	s.queued = nil
	s.failCall = ""
	s.queues = map[string]string{}
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterWorkflowWithOptions(Workflow, workflow.RegisterOptions{Name: WorkflowType})
	s.env.RegisterActivity(&runtimes.Activities{})
	s.env.RegisterActivity(&integrations.Activities{})
	s.calls = nil
	s.plan = integrations.Plan{}
	s.down = ""
	s.env.OnUpsertTypedSearchAttributes(mock.Anything).Run(func(args mock.Arguments) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.sa = args.Get(0).(temporal.SearchAttributes)
	}).Return(nil)
}

func (s *provisionSuite) keyword(key temporal.SearchAttributeKeyKeyword) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, _ := s.sa.GetKeyword(key)
	return v
}

func (s *provisionSuite) record(call string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call)
}

func (s *provisionSuite) recorded() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

func defaultInput(t require.TestingT) Input {
	tpls, err := spec.LoadTemplates("../../deploy/templates")
	require.NoError(t, err)
	return Input{Spec: Spec{Name: "acme", Template: "light", Stage: "prod"}, Template: *tpls["light"]}
}

// mockRuntime makes every runtime activity succeed, recording its calls;
// startService lets a test inject failures per service.
func (s *provisionSuite) mockRuntime(startService func(in runtimes.ServiceInput) error, waitHealthy func() error) {
	var p *integrations.Activities
	s.env.OnActivity(p.PlanIntegrations, mock.Anything, mock.Anything).Return(func(context.Context, integrations.Input) (integrations.Plan, error) {
		return s.plan, nil
	})
	var a *runtimes.Activities
	s.env.OnActivity(a.Admit, mock.Anything, mock.Anything).Return(func(ctx context.Context, ref runtimes.TenantRef) (runtimes.Admission, error) {
		if s.queued != nil {
			s.recordOn(ctx, "Admit")
			return *s.queued, nil
		}
		return runtimes.Admission{Admitted: true}, nil
	})
	s.env.OnActivity(a.AwaitAdmission, mock.Anything, mock.Anything).Return(func(ctx context.Context, ref runtimes.TenantRef) (runtimes.Admission, error) {
		s.recordOn(ctx, "AwaitAdmission")
		s.mu.Lock()
		s.queues["AwaitAdmission heartbeat timeout"] = activity.GetInfo(ctx).HeartbeatTimeout.String()
		s.mu.Unlock()
		return runtimes.Admission{Admitted: true}, nil
	})
	s.env.OnActivity(a.CreateNetwork, mock.Anything, mock.Anything).Return(func(ctx context.Context, ref runtimes.TenantRef) error {
		s.recordOn(ctx, "CreateNetwork")
		return nil
	})
	s.env.OnActivity(a.CreateVolumes, mock.Anything, mock.Anything).Return(func(_ context.Context, in runtimes.VolumesInput) error {
		s.record("CreateVolumes")
		return nil
	})
	s.env.OnActivity(a.StartService, mock.Anything, mock.Anything).Return(func(ctx context.Context, in runtimes.ServiceInput) (runtimes.ServiceStatus, error) {
		s.recordOn(ctx, "StartService "+in.Service.Name)
		if startService != nil {
			if err := startService(in); err != nil {
				return runtimes.ServiceStatus{}, err
			}
		}
		return runtimes.ServiceStatus{Service: in.Service.Name, ID: "id-" + in.Service.Name, Image: in.Service.Image}, nil
	})
	s.env.OnActivity(a.WaitHealthy, mock.Anything, mock.Anything).Return(func(ctx context.Context, env spec.Environment) (runtimes.Endpoint, error) {
		s.recordOn(ctx, "WaitHealthy")
		if waitHealthy != nil {
			if err := waitHealthy(); err != nil {
				return runtimes.Endpoint{}, err
			}
		}
		gen := 0
		for _, svc := range env.Services {
			gen = max(gen, svc.Generation)
		}
		return runtimes.Endpoint{URL: fmt.Sprintf("http://127.0.0.1:%d", 40000+gen)}, nil
	})
	for name, fn := range map[string]any{"RemoveServices": a.RemoveServices, "RemoveVolumes": a.RemoveVolumes, "RemoveNetwork": a.RemoveNetwork} {
		s.env.OnActivity(fn, mock.Anything, mock.Anything).Return(func(ctx context.Context, _ runtimes.TenantRef) error {
			s.recordOn(ctx, name)
			return nil
		})
	}
}

// recordOn records a call and the task queue it ran on.
func (s *provisionSuite) recordOn(ctx context.Context, call string) {
	s.record(call)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queues[call] = activity.GetInfo(ctx).TaskQueue
}

func (s *provisionSuite) queryState() Tenant {
	v, err := s.env.QueryWorkflow(QueryState)
	s.Require().NoError(err)
	var st Tenant
	s.Require().NoError(v.Get(&st))
	return st
}

// runUntilSettled runs the workflow and, once provisioning is over (the
// entity then waits for operations), checks the state and cancels it.
func (s *provisionSuite) runUntilSettled(in Input, check func(Tenant)) {
	s.env.RegisterDelayedCallback(func() {
		check(s.queryState())
		s.env.CancelWorkflow()
	}, time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, in)
	s.Require().True(s.env.IsWorkflowCompleted())
}

func (s *provisionSuite) TestProvisionsAndReportsState() {
	var envSeen spec.Environment
	s.mockRuntime(func(in runtimes.ServiceInput) error {
		if in.Service.Name == "app" {
			envSeen.Services = append(envSeen.Services, in.Service)
		}
		return nil
	}, nil)
	s.runUntilSettled(defaultInput(s.T()), func(st Tenant) {
		s.Equal(StateActive, st.State)
		s.Equal("http://127.0.0.1:40000", st.URL)
		s.Equal("tenantflow/demo-app:dev", st.Image)
		s.Equal(flow.Progress{Done: 4, Total: 4}, st.Progress)
		s.Len(st.Services, 2)
		s.Empty(st.Error)
	})
	s.ElementsMatch([]string{"CreateNetwork", "CreateVolumes", "StartService db", "StartService app", "WaitHealthy"}, s.recorded())

	s.Equal(string(StateActive), s.keyword(searchattr.TenantState))
	s.Equal("tenantflow/demo-app:dev", s.keyword(searchattr.Image))
	s.Equal("acme", s.keyword(searchattr.TenantID))

	// The generated password reached the containers but never the query.
	s.Require().Len(envSeen.Services, 1)
	pass := envSeen.Services[0].Env["DB_PASSWORD"]
	s.Len(pass, 32)
	st, _ := json.Marshal(s.queryState())
	s.NotContains(string(st), pass)
}

// A tenant its host cannot admit yet waits its turn before anything is
// made for it, in a regular activity that heartbeats (its place shows in
// the Web UI, a lost worker is noticed), and then provisions as any.
func (s *provisionSuite) TestAQueuedTenantWaitsItsTurnBeforeMakingAnything() {
	s.queued = &runtimes.Admission{Ahead: 3, Starting: 8, Limit: 8}
	s.mockRuntime(nil, nil)
	s.runUntilSettled(defaultInput(s.T()), func(st Tenant) {
		s.Equal(StateActive, st.State)
		s.Equal(flow.Progress{Done: 4, Total: 4}, st.Progress, "the wait is not a counted step")
	})
	calls := s.recorded()
	s.Equal([]string{"Admit", "AwaitAdmission"}, calls[:2], "nothing made before the turn: %v", calls)
	s.ElementsMatch([]string{"CreateNetwork", "CreateVolumes", "StartService db", "StartService app", "WaitHealthy"}, calls[2:])
	s.Equal("30s", s.queues["AwaitAdmission heartbeat timeout"])
}

func (s *provisionSuite) TestRetriesTransientFailure() {
	failures := 2
	s.mockRuntime(func(in runtimes.ServiceInput) error {
		if in.Service.Name == "app" && failures > 0 {
			failures--
			return errors.New("docker: connection reset")
		}
		return nil
	}, nil)
	s.runUntilSettled(defaultInput(s.T()), func(st Tenant) {
		s.Equal(StateActive, st.State)
	})
	var appStarts int
	for _, c := range s.recorded() {
		if c == "StartService app" {
			appStarts++
		}
		s.NotContains(c, "Remove", "a transient failure must not compensate")
	}
	s.Equal(3, appStarts)
}

func (s *provisionSuite) TestPermanentFailureCompensatesInReverseOrder() {
	s.mockRuntime(func(in runtimes.ServiceInput) error {
		if in.Service.Name == "app" {
			return temporal.NewNonRetryableApplicationError("image gone", "ImageNotFound", nil)
		}
		return nil
	}, nil)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))
	s.Require().True(s.env.IsWorkflowCompleted())
	err := s.env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	s.Require().ErrorAs(err, &appErr)
	s.Equal(ErrProvisioningFailed, appErr.Type())

	calls := s.recorded()
	s.Equal([]string{"RemoveServices", "RemoveVolumes", "RemoveNetwork"}, calls[len(calls)-3:])
	s.NotContains(calls, "WaitHealthy")

	st := s.queryState()
	s.Equal(StateFailed, st.State)
	s.Contains(st.Error, "image gone (ImageNotFound)")
	s.Empty(st.Services)
	s.Equal(string(StateFailed), s.keyword(searchattr.TenantState))
}

func (s *provisionSuite) TestUnhealthyTenantIsCompensated() {
	s.mockRuntime(nil, func() error {
		return temporal.NewNonRetryableApplicationError("service app is unhealthy", "ServiceUnhealthy", nil)
	})
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))
	s.Require().Error(s.env.GetWorkflowError())
	calls := s.recorded()
	s.Equal([]string{"WaitHealthy", "RemoveServices", "RemoveVolumes", "RemoveNetwork"}, calls[len(calls)-4:])
	s.Contains(s.queryState().Error, "ServiceUnhealthy")
}

func (s *provisionSuite) TestProgressIsQueryableMidway() {
	release := make(chan struct{})
	s.mockRuntime(nil, func() error {
		<-release
		return nil
	})
	var mid Tenant
	s.env.RegisterDelayedCallback(func() {
		mid = s.queryState()
		close(release)
	}, time.Second)
	s.runUntilSettled(defaultInput(s.T()), func(st Tenant) { s.Equal(StateActive, st.State) })
	s.Equal(StateProvisioning, mid.State)
	s.Equal(flow.Progress{Done: 3, Total: 4, Step: StepWaitHealthy}, mid.Progress)
}

func (s *provisionSuite) TestCancelDuringProvisioningCompensates() {
	release := make(chan struct{})
	s.mockRuntime(nil, func() error {
		<-release
		return nil
	})
	s.env.RegisterDelayedCallback(func() {
		s.env.CancelWorkflow()
		close(release)
	}, time.Second)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().Error(s.env.GetWorkflowError())
	calls := s.recorded()
	s.Equal([]string{"RemoveServices", "RemoveVolumes", "RemoveNetwork"}, calls[len(calls)-3:])
	s.Equal(StateFailed, s.queryState().State)
}

// The workflow does not know the runtime: it passes the template's along
// to every runtime activity and to the integration plan, as data.
func (s *provisionSuite) TestRuntimeTravelsWithEveryCall() {
	var a *runtimes.Activities
	var p *integrations.Activities
	seen := map[string]string{}
	note := func(what, rt string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		seen[what] = rt
	}
	s.env.OnActivity(p.PlanIntegrations, mock.Anything, mock.Anything).Return(func(_ context.Context, in integrations.Input) (integrations.Plan, error) {
		note("PlanIntegrations", in.Runtime)
		return integrations.Plan{}, nil
	})
	s.env.OnActivity(a.Admit, mock.Anything, mock.Anything).Return(func(_ context.Context, in runtimes.TenantRef) (runtimes.Admission, error) {
		note("Admit", in.Runtime)
		return runtimes.Admission{Admitted: true}, nil
	})
	s.env.OnActivity(a.CreateNetwork, mock.Anything, mock.Anything).Return(func(_ context.Context, in runtimes.TenantRef) error {
		note("CreateNetwork", in.Runtime)
		return nil
	})
	s.env.OnActivity(a.CreateVolumes, mock.Anything, mock.Anything).Return(func(_ context.Context, in runtimes.VolumesInput) error {
		note("CreateVolumes", in.Runtime)
		return nil
	})
	s.env.OnActivity(a.StartService, mock.Anything, mock.Anything).Return(func(_ context.Context, in runtimes.ServiceInput) (runtimes.ServiceStatus, error) {
		note("StartService "+in.Service.Name, in.Runtime)
		return runtimes.ServiceStatus{Service: in.Service.Name, ID: "x"}, nil
	})
	s.env.OnActivity(a.WaitHealthy, mock.Anything, mock.Anything).Return(func(_ context.Context, env spec.Environment) (runtimes.Endpoint, error) {
		note("WaitHealthy", env.Runtime)
		return runtimes.Endpoint{URL: "https://acme.apps.example.com"}, nil
	})
	in := defaultInput(s.T())
	in.Template.Runtime = spec.OpenShift
	s.runUntilSettled(in, func(st Tenant) {
		s.Equal(StateActive, st.State)
		s.Equal("https://acme.apps.example.com", st.URL)
		s.Equal(spec.OpenShift, st.Runtime, "the API shows where the tenant runs")
	})
	s.Equal(map[string]string{"PlanIntegrations": "openshift", "Admit": "openshift", "CreateNetwork": "openshift", "CreateVolumes": "openshift",
		"StartService app": "openshift", "StartService db": "openshift", "WaitHealthy": "openshift"}, seen)
}

// A health budget longer than the activity's default timeout (a slow
// template, a release's healthTimeout of up to an hour) gets an attempt
// long enough to spend it: cut off earlier, the wait would restart its
// budget on each retry and fail as a timeout instead of ServiceUnhealthy.
func (s *provisionSuite) TestHealthWaitOutlastsItsBudget() {
	var a *runtimes.Activities
	var deadline time.Duration
	s.env.OnActivity(a.WaitHealthy, mock.Anything, mock.Anything).Return(func(ctx context.Context, env spec.Environment) (runtimes.Endpoint, error) {
		info := activity.GetInfo(ctx)
		deadline = info.Deadline.Sub(info.StartedTime)
		return runtimes.Endpoint{URL: "http://127.0.0.1:40000"}, nil
	})
	s.mockRuntime(nil, nil) // after: the first matching mock answers
	in := defaultInput(s.T())
	for i := range in.Template.Services {
		in.Template.Services[i].HealthCheck.StartPeriod = spec.Duration(30 * time.Minute)
	}
	s.runUntilSettled(in, func(st Tenant) { s.Equal(StateActive, st.State) })
	s.GreaterOrEqual(deadline, 30*time.Minute)
}
