package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/tenantflow/tenantflow/activities/cmdb"
	"github.com/tenantflow/tenantflow/activities/dns"
	"github.com/tenantflow/tenantflow/activities/integrations"
	"github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/supervision"
	"github.com/tenantflow/tenantflow/workflows/flow"
)

var fullPlan = integrations.Plan{
	Routing: true, Host: "acme.apps.example.test", URL: "https://acme.apps.example.test",
	DNS: true, Directory: true, AdminUser: "admin", CMDB: true, Supervision: true,
}

// ownerCall is the owner an integration call carried, and whether it might
// adopt objects from before runs were stamped.
type ownerCall struct {
	call, owner string
	adopt       bool
}

// ownerLog collects the ownerCalls of a test, in order; the mocks of
// mockIntegrations and mockDecommission reset it.
type ownerLog struct {
	mu    sync.Mutex
	calls []ownerCall
}

var owners ownerLog

func (o *ownerLog) reset() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = nil
}

func (o *ownerLog) add(call, owner string, adopt bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, ownerCall{call, owner, adopt})
}

func (o *ownerLog) all() []ownerCall {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.calls)
}

// requireOwners checks that every integration call carried the tenant's
// provisioning run as owner, that the first provisioning of them (the
// provisioning's own calls and its compensation) never adopt, and that the
// rest (release, decommission, restore, purge) do.
func (s *provisionSuite) requireOwners(provisioning int) []ownerCall {
	run := s.queryState().ProvisionID
	s.Require().NotEmpty(run)
	calls := owners.all()
	s.Require().GreaterOrEqual(len(calls), provisioning)
	for i, c := range calls {
		s.Equal(run, c.owner, "%s (call %d) carries the provisioning run as owner", c.call, i)
		s.Equal(i >= provisioning, c.adopt, "%s (call %d): only an existing tenant's calls may adopt", c.call, i)
	}
	return calls
}

// integrationCalls collects what the integration mocks received.
type integrationCalls struct {
	mu          sync.Mutex
	routeIn     proxy.RouteInput
	routes      []proxy.RouteInput // every EnsureRoute, in order
	directoryIn ldap.DirectoryInput
	watchIn     supervision.WatchInput
	parallel    sync.WaitGroup // DNS, LDAP and CMDB each mark themselves done
}

// mockIntegrations mocks every integration activity; fail names one that
// fails permanently, flaky one that fails transiently twice.
func (s *provisionSuite) mockIntegrations(fail, flaky string) *integrationCalls {
	// Registered method by method, as the worker does: the structs also
	// have helper methods (Check, …) that are not activities.
	d0, l0, c0, p0, s0 := &dns.Activities{}, &ldap.Activities{}, &cmdb.Activities{}, &proxy.Activities{}, &supervision.Activities{}
	for _, fn := range []any{d0.EnsureDNSRecord, d0.RemoveDNSRecord, l0.EnsureDirectory, l0.RemoveDirectory,
		c0.RegisterInCMDB, c0.RemoveFromCMDB, p0.EnsureRoute, p0.RemoveRoute, s0.StartSupervision, s0.StopSupervision} {
		s.env.RegisterActivity(fn)
	}
	ic := &integrationCalls{}
	ic.parallel.Add(3)
	owners.reset()
	flakes := 2
	fail, failType, ok := strings.Cut(fail, ":") // "EnsureRoute:ResourceNotOurs" fails with that type
	if !ok {
		failType = "Rejected"
	}
	outcome := func(name string) error {
		s.record(name)
		switch {
		case name == fail:
			return temporal.NewNonRetryableApplicationError(name+" refused", failType, nil)
		case name == flaky && flakes > 0:
			flakes--
			return errors.New("connection refused")
		case name == s.down:
			return errors.New("connection refused (down for good)")
		}
		return nil
	}
	var d *dns.Activities
	var l *ldap.Activities
	var c *cmdb.Activities
	var p *proxy.Activities
	var sv *supervision.Activities
	s.env.OnActivity(d.EnsureDNSRecord, mock.Anything, mock.Anything).Return(func(_ context.Context, in dns.RecordInput) (dns.Record, error) {
		defer ic.parallel.Done()
		owners.add("EnsureDNSRecord", in.Owner, in.Adopt)
		return dns.Record{Name: in.Name + ".", Type: "A", Target: "127.0.0.1", TTL: 300}, outcome("EnsureDNSRecord")
	})
	s.env.OnActivity(l.EnsureDirectory, mock.Anything, mock.Anything).Return(func(_ context.Context, in ldap.DirectoryInput) (ldap.Directory, error) {
		owners.add("EnsureDirectory", in.Owner, in.Adopt)
		err := outcome("EnsureDirectory")
		if err == nil || name(err) == "Rejected" {
			defer ic.parallel.Done()
		}
		ic.mu.Lock()
		ic.directoryIn = in
		ic.mu.Unlock()
		return ldap.Directory{OU: "ou=acme,ou=tenants", Group: "cn=acme-admins", Admin: "uid=admin,ou=acme,ou=tenants"}, err
	})
	s.env.OnActivity(c.RegisterInCMDB, mock.Anything, mock.Anything).Return(func(_ context.Context, in cmdb.CMDBInput) (cmdb.CMDBRecord, error) {
		defer ic.parallel.Done()
		owners.add("RegisterInCMDB", in.Owner, in.Adopt)
		return cmdb.CMDBRecord{OrganizationID: "3", ApplicationSolutionID: "7"}, outcome("RegisterInCMDB")
	})
	s.env.OnActivity(p.EnsureRoute, mock.Anything, mock.Anything).Return(func(_ context.Context, in proxy.RouteInput) (proxy.Route, error) {
		owners.add("EnsureRoute", in.Owner, in.Adopt)
		ic.mu.Lock()
		ic.routeIn = in
		ic.routes = append(ic.routes, in)
		ic.mu.Unlock()
		return proxy.Route{ID: "tenantflow-acme", Host: fullPlan.Host, URL: fullPlan.URL, Upstreams: in.Upstreams}, outcome("EnsureRoute")
	})
	s.env.OnActivity(sv.StartSupervision, mock.Anything, mock.Anything).Return(func(_ context.Context, in supervision.WatchInput) error {
		owners.add("StartSupervision", in.Owner, in.Adopt)
		ic.mu.Lock()
		ic.watchIn = in
		ic.mu.Unlock()
		return outcome("StartSupervision")
	})
	s.env.OnActivity(d.RemoveDNSRecord, mock.Anything, mock.Anything).Return(func(_ context.Context, in dns.RecordInput) error {
		return s.undoneBy("RemoveDNSRecord", in.Owner, in.Adopt)
	})
	s.env.OnActivity(l.RemoveDirectory, mock.Anything, mock.Anything).Return(func(_ context.Context, in ldap.DirectoryRef) error {
		return s.undoneBy("RemoveDirectory", in.Owner, in.Adopt)
	})
	s.env.OnActivity(c.RemoveFromCMDB, mock.Anything, mock.Anything).Return(func(_ context.Context, in cmdb.CMDBRef) error {
		return s.undoneBy("RemoveFromCMDB", in.Owner, in.Adopt)
	})
	s.env.OnActivity(p.RemoveRoute, mock.Anything, mock.Anything).Return(func(_ context.Context, in proxy.RouteRef) error {
		return s.undoneBy("RemoveRoute", in.Owner, in.Adopt)
	})
	s.env.OnActivity(sv.StopSupervision, mock.Anything, mock.Anything).Return(func(_ context.Context, in supervision.WatchRef) error {
		return s.undoneBy("StopSupervision", in.Owner, in.Adopt)
	})
	return ic
}

func (s *provisionSuite) undone(call string) error {
	s.record(call)
	return nil
}

// undoneBy records an integration undo with the owner it carried.
func (s *provisionSuite) undoneBy(call, owner string, adopt bool) error {
	owners.add(call, owner, adopt)
	return s.undone(call)
}

func name(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

func (s *provisionSuite) TestIntegrationsRunBesideTheRuntime() {
	s.plan = fullPlan
	ic := s.mockIntegrations("", "")
	// WaitHealthy returns only once DNS, LDAP and CMDB have all been called:
	// were they run after the runtime instead of beside it, this would time out.
	s.mockRuntime(nil, func() error {
		done := make(chan struct{})
		go func() { ic.parallel.Wait(); close(done) }()
		select {
		case <-done:
			return nil
		case <-time.After(5 * time.Second):
			return temporal.NewNonRetryableApplicationError("DNS, LDAP and CMDB did not run beside the runtime", "NotParallel", nil)
		}
	})
	s.runUntilSettled(defaultInput(s.T()), func(st Tenant) {
		s.Equal(StateActive, st.State, st.Error)
		s.Equal(fullPlan.URL, st.URL)
		s.Equal("http://127.0.0.1:40000", st.Endpoint)
		s.Equal(flow.Progress{Done: 9, Total: 9}, st.Progress)
		kinds := map[string]bool{}
		for _, r := range st.Resources {
			kinds[string(r.Kind)] = true
		}
		s.Equal(map[string]bool{"dns": true, "ldap": true, "cmdb": true, "route": true, "supervision": true}, kinds)
		s.Equal([]Account{{Username: "admin", DN: "uid=admin,ou=acme,ou=tenants"}}, st.Accounts)
		b, _ := json.Marshal(st)
		s.NotContains(string(b), ic.directoryIn.AdminPassword)
	})
	s.Equal([]string{"127.0.0.1:40000"}, ic.routeIn.Upstreams)
	s.Equal("http://127.0.0.1:40000", ic.watchIn.URL, "supervision probes the endpoint unless ProbePublic")
	s.Len(ic.directoryIn.AdminPassword, 24)
	calls := s.requireOwners(5)
	s.Len(calls, 5, "one call per outside system")
}

// A provisioning refused because a name is another run's (a tenant
// requested again after its workflow was terminated) undoes its steps with
// its own run as owner and without adopting, so the outside systems leave
// the other run's objects alone.
func (s *provisionSuite) TestResourceNotOursIsCompensatedWithItsOwnRun() {
	s.plan = fullPlan
	s.mockIntegrations("EnsureDNSRecord:ResourceNotOurs", "")
	s.mockRuntime(nil, nil)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))
	s.Require().Error(s.env.GetWorkflowError())
	s.Contains(s.queryState().Error, "EnsureDNSRecord refused")
	calls := s.requireOwners(len(owners.all()))
	var undone []string
	for _, c := range calls {
		if strings.HasPrefix(c.call, "Remove") || strings.HasPrefix(c.call, "Stop") {
			undone = append(undone, c.call)
		}
	}
	s.ElementsMatch([]string{"RemoveDNSRecord", "RemoveDirectory", "RemoveFromCMDB", "RemoveRoute", "StopSupervision"}, undone)
}

func (s *provisionSuite) TestLateFailureCompensatesEveryBranch() {
	s.plan = fullPlan
	s.mockIntegrations("StartSupervision", "")
	s.mockRuntime(nil, nil)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))
	s.Require().Error(s.env.GetWorkflowError())
	calls := s.recorded()
	for _, undo := range []string{"StopSupervision", "RemoveRoute", "RemoveDNSRecord", "RemoveDirectory", "RemoveFromCMDB", "RemoveServices", "RemoveVolumes", "RemoveNetwork"} {
		s.Contains(calls, undo)
	}
	// Latest first: supervision before the route before the containers,
	// containers before their volumes and network.
	order := func(c string) int { return slices.Index(calls, c) }
	s.Less(order("StopSupervision"), order("RemoveRoute"))
	s.Less(order("RemoveRoute"), order("RemoveServices"))
	s.Less(order("RemoveServices"), order("RemoveVolumes"))
	s.Less(order("RemoveVolumes"), order("RemoveNetwork"))
	st := s.queryState()
	s.Equal(StateFailed, st.State)
	s.Contains(st.Error, "StartSupervision refused")
	s.Empty(st.Resources)
	s.Empty(st.URL)
}

func (s *provisionSuite) TestEarlyBranchFailureWaitsForTheRuntimeThenCompensates() {
	s.plan = fullPlan
	s.mockIntegrations("EnsureDirectory", "")
	s.mockRuntime(nil, nil)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))
	s.Require().Error(s.env.GetWorkflowError())
	calls := s.recorded()
	s.Contains(calls, "WaitHealthy", "the runtime branch is not abandoned half-way")
	s.Contains(calls, "RemoveDirectory")
	s.Contains(calls, "RemoveServices")
	s.Contains(s.queryState().Error, "EnsureDirectory refused")
}

func (s *provisionSuite) TestIntegrationOutageIsRetried() {
	s.plan = fullPlan
	s.mockIntegrations("", "EnsureDirectory")
	s.mockRuntime(nil, nil)
	s.runUntilSettled(defaultInput(s.T()), func(st Tenant) {
		s.Equal(StateActive, st.State, st.Error)
	})
	n := 0
	for _, c := range s.recorded() {
		if c == "EnsureDirectory" {
			n++
		}
		s.NotContains(c, "Remove")
	}
	s.Equal(3, n)
}

// fetchAt sends the credentials Update at simulated time at; the test
// environment delivers the outcome to out once the workflow has handled it.
func (s *provisionSuite) fetchAt(at time.Duration, out *fetchOutcome) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(UpdateFetchCredentials, "", &testsuite.TestUpdateCallback{
			OnReject: func(err error) { out.err = err },
			OnAccept: func() {},
			OnComplete: func(v any, err error) {
				out.err = err
				if c, ok := v.(Credentials); ok {
					out.creds = c
				}
			},
		}, FetchCredentialsInput{By: "distributor"})
	}, at)
}

type fetchOutcome struct {
	creds Credentials
	err   error
}

func (s *provisionSuite) TestCredentialsAreHandedOutOnce() {
	s.plan = fullPlan
	ic := s.mockIntegrations("", "")
	s.mockRuntime(nil, nil)
	var first, second fetchOutcome
	s.fetchAt(time.Hour, &first)
	s.fetchAt(time.Hour+time.Minute, &second)
	s.env.RegisterDelayedCallback(func() {
		st := s.queryState()
		s.Equal("distributor", st.CredentialsFetchedBy)
		s.NotNil(st.CredentialsFetchedAt)
		s.env.CancelWorkflow()
	}, time.Hour+2*time.Minute)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))
	s.Require().NoError(first.err)
	s.Equal("admin", first.creds.Username)
	s.Equal(ic.directoryIn.AdminPassword, first.creds.Password)
	s.Equal(fullPlan.URL, first.creds.URL)
	s.Equal(ErrCredentialsAlreadyFetched, name(second.err))
}

func (s *provisionSuite) TestNoCredentialsWithoutDirectory() {
	s.mockRuntime(nil, nil)
	var out fetchOutcome
	s.fetchAt(time.Hour, &out)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 2*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))
	s.Equal(ErrCredentialsUnavailable, name(out.err))
}

// A permanent runtime failure does not wait for a side branch retrying
// through an outage: the branch is cancelled and compensation starts.
func (s *provisionSuite) TestRuntimeFailureCancelsRetryingBranches() {
	s.plan = fullPlan
	s.down = "EnsureDirectory"
	s.mockIntegrations("", "")
	s.mockRuntime(func(in runtimes.ServiceInput) error {
		if in.Service.Name == "app" {
			return temporal.NewNonRetryableApplicationError("image gone", "ImageNotFound", nil)
		}
		return nil
	}, nil)
	start := s.env.Now()
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))
	s.Require().Error(s.env.GetWorkflowError())
	n := 0
	for _, c := range s.recorded() {
		if c == "EnsureDirectory" {
			n++
		}
	}
	// Without cancellation the branch would keep retrying (the test
	// environment stops at 10 attempts, ~2.5 simulated minutes).
	s.Less(s.env.Now().Sub(start), 30*time.Second, "compensation must not wait out the LDAP branch's retries")
	s.LessOrEqual(n, 2)
	calls := s.recorded()
	s.Contains(calls, "RemoveDirectory")
	s.Contains(calls, "RemoveServices")
	s.Contains(s.queryState().Error, "image gone")
}
