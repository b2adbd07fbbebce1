package tenant

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/tenantflow/tenantflow/activities/domains"
	"github.com/tenantflow/tenantflow/activities/proxy"
)

// domainCalls records the domain activities and answers them: the record
// of a host is found from its verifiedFrom-th lookup, the name taken is
// served by another tenant, and the certificate comes on the second look.
type domainCalls struct {
	mu      sync.Mutex
	lookups map[string]int
	https   map[string]int
	gone    map[string]bool // hosts whose record the customer removed
}

func (s *provisionSuite) mockDomains(verifiedFrom int, taken string) *domainCalls {
	dc := &domainCalls{lookups: map[string]int{}, https: map[string]int{}, gone: map[string]bool{}}
	d0, p0 := &domains.Activities{}, &proxy.Activities{}
	for _, fn := range []any{d0.VerifyDomain, d0.CheckHTTPS, p0.CheckDomainFree} {
		s.env.RegisterActivity(fn)
	}
	s.env.OnActivity(d0.VerifyDomain, mock.Anything, mock.Anything).Return(func(_ context.Context, in domains.VerifyInput) (domains.Verification, error) {
		dc.mu.Lock()
		defer dc.mu.Unlock()
		dc.lookups[in.Host]++
		if dc.lookups[in.Host] < verifiedFrom || dc.gone[in.Host] {
			return domains.Verification{Found: []string{"google-site-verification=x"}}, nil
		}
		return domains.Verification{Verified: true, Found: []string{in.Value}}, nil
	})
	s.env.OnActivity(p0.CheckDomainFree, mock.Anything, mock.Anything).Return(func(_ context.Context, in proxy.DomainInput) error {
		if in.Host == taken {
			return temporal.NewNonRetryableApplicationError(in.Host+" is already served by tenant globex", proxy.ErrDomainTaken, nil)
		}
		return nil
	})
	s.env.OnActivity(d0.CheckHTTPS, mock.Anything, mock.Anything).Return(func(_ context.Context, in domains.HTTPSInput) (domains.HTTPSAnswer, error) {
		dc.mu.Lock()
		defer dc.mu.Unlock()
		dc.https[in.Host]++
		if dc.https[in.Host] == 1 {
			return domains.HTTPSAnswer{}, errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority")
		}
		return domains.HTTPSAnswer{Status: 200, Issuer: "CN=Pebble Intermediate CA"}, nil
	})
	return dc
}

// A custom domain: the tenant answers the record to add, looks it up until
// it is there, adds the name to its route, and is active once the name
// answers over HTTPS. A cut-over keeps the alias; a removal takes it off.
// A name another route serves fails; the platform's own names and
// malformed ones are refused.
func (s *provisionSuite) TestCustomDomainVerifiedRoutedAndRemoved() {
	s.plan = fullPlan
	s.mockRuntime(nil, nil)
	ic := s.mockIntegrations("", "")
	s.mockDecommission(nil)
	s.mockCutover()
	dc := s.mockDomains(2, "taken.example.org")
	var added, own, platform, bad, twice, taken, notFound, removed error
	var asked Domain
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(UpdateAddDomain, "", updateCallbacks(&added, func(v any) { asked = v.(Domain) }), DomainRequest{Host: "crm.customer.com", By: "distributor"})
	}, 10*time.Minute)
	s.updateAt(10*time.Minute, UpdateAddDomain, DomainRequest{Host: "acme.apps.example.test", By: "ops"}, &own)
	s.updateAt(10*time.Minute, UpdateAddDomain, DomainRequest{Host: "shop.apps.example.test", By: "ops"}, &platform)
	s.updateAt(10*time.Minute, UpdateAddDomain, DomainRequest{Host: "CRM.customer.com", By: "ops"}, &bad)
	s.updateAt(11*time.Minute, UpdateAddDomain, DomainRequest{Host: "crm.customer.com", By: "ops"}, &twice)
	s.updateAt(12*time.Minute, UpdateAddDomain, DomainRequest{Host: "taken.example.org", By: "ops"}, &taken)
	var waiting, active Tenant
	s.stateAt(10*time.Minute+time.Second, &waiting)
	s.stateAt(30*time.Minute, &active)
	var release ApplyResult
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(UpdateApplyRelease, "", updateCallbacks(new(error), func(v any) { release = v.(ApplyResult) }),
			ApplyInput{Release: "r1", Image: "tenantflow/demo-app:v2"})
	}, 40*time.Minute)
	s.updateAt(50*time.Minute, UpdateRemoveDomain, DomainRequest{Host: "nope.customer.com", By: "ops"}, &notFound)
	s.updateAt(50*time.Minute, UpdateRemoveDomain, DomainRequest{Host: "crm.customer.com", By: "ops"}, &removed)
	var after Tenant
	s.stateAt(time.Hour, &after)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 2*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	s.Require().NoError(added)
	_, value := domains.Challenge("acme", waiting.ProvisionID, "crm.customer.com")
	s.Equal(DomainRecord{Name: "_tenantflow-challenge.crm.customer.com", Type: "TXT", Value: value}, asked.Record)
	s.Equal(DomainVerifying, asked.Status)
	s.Equal(ErrDomainRefused, name(own))
	s.Contains(own.Error(), "in the platform's own domain apps.example.test")
	s.Equal(ErrDomainRefused, name(platform))
	s.Equal(ErrDomainRefused, name(bad))
	s.Contains(twice.Error(), "already has domain crm.customer.com")
	s.Require().NoError(taken)

	s.Equal(DomainVerifying, waiting.Domains[0].Status, "the record is not there at the first look")
	s.Contains(waiting.Domains[0].Error, "is not there yet")
	s.Equal([]string{"google-site-verification=x"}, waiting.Domains[0].Found)

	byHost := map[string]Domain{}
	for _, d := range active.Domains {
		byHost[d.Host] = d
	}
	crm := byHost["crm.customer.com"]
	s.Equal(DomainActive, crm.Status, crm.Error)
	s.Equal("CN=Pebble Intermediate CA", crm.Issuer)
	s.NotNil(crm.ActiveAt)
	s.Equal(2, dc.lookups["crm.customer.com"], "looked up again until found")
	s.Equal(DomainFailed, byHost["taken.example.org"].Status)
	s.Contains(byHost["taken.example.org"].Error, "already served by tenant globex")

	s.Equal(OutcomeUpdated, release.Outcome, release.Error)
	s.Require().NoError(removed)
	s.Equal(ErrDomainNotFound, name(notFound))
	s.Len(after.Domains, 1, "crm removed; the failed one stays listed until asked again or removed")
	s.Equal("taken.example.org", after.Domains[0].Host)

	var withAlias, cutover, last proxy.RouteInput
	for i, r := range ic.routes {
		if len(r.Aliases) > 0 && withAlias.Tenant == "" {
			withAlias = r
		}
		if len(r.Aliases) > 0 && r.Upstreams[0] != ic.routes[0].Upstreams[0] {
			cutover = r
		}
		last = ic.routes[i]
	}
	s.Equal([]string{"crm.customer.com"}, withAlias.Aliases, "the route serves the verified domain")
	s.Equal([]string{"crm.customer.com"}, cutover.Aliases, "a cut-over keeps it")
	s.Empty(last.Aliases, "a removal takes it off")
	s.Equal(cutover.Upstreams, last.Upstreams, "on the route as it is")
}

// updateCallbacks sends an Update's outcome to a test.
func updateCallbacks(rejected *error, done func(any)) *testsuite.TestUpdateCallback {
	return &testsuite.TestUpdateCallback{
		OnReject: func(err error) { *rejected = err }, OnAccept: func() {},
		OnComplete: func(v any, err error) {
			if err != nil {
				*rejected = err
				return
			}
			done(v)
		},
	}
}

// An active domain's record is looked at every day: gone, the domain is
// warned about, then after the grace period taken off the route.
func (s *provisionSuite) TestADomainWhoseRecordIsGoneLeavesTheRoute() {
	s.plan = fullPlan
	s.mockRuntime(nil, nil)
	ic := s.mockIntegrations("", "")
	s.mockDecommission(nil)
	dc := s.mockDomains(1, "")
	var added error
	s.updateAt(10*time.Minute, UpdateAddDomain, DomainRequest{Host: "crm.customer.com", By: "ops"}, &added)
	var active, warned, gone Tenant
	s.stateAt(time.Hour, &active)
	s.env.RegisterDelayedCallback(func() { dc.mu.Lock(); dc.gone["crm.customer.com"] = true; dc.mu.Unlock() }, 2*time.Hour)
	s.stateAt(50*time.Hour, &warned)
	s.stateAt(5*24*time.Hour, &gone)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 6*24*time.Hour)
	s.env.ExecuteWorkflow(WorkflowType, defaultInput(s.T()))

	s.Require().NoError(added)
	s.Equal(DomainActive, active.Domains[0].Status, active.Domains[0].Error)
	s.Require().NotNil(active.Domains[0].NextCheckAt, "looked at again in a day")
	s.Equal(DomainActive, warned.Domains[0].Status, "within the grace period it is still served")
	s.NotNil(warned.Domains[0].RecordMissingSince)
	s.Contains(warned.Domains[0].Error, "is gone since")
	s.Equal(DomainFailed, gone.Domains[0].Status)
	s.Contains(gone.Domains[0].Error, "no longer proves to be the tenant's")
	last := ic.routes[len(ic.routes)-1]
	s.Empty(last.Aliases, "taken off the route")
}
