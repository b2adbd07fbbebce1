package tenant

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/domains"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
)

// Custom domains. A customer asks for crm.customer.com (addDomain); the
// tenant answers with a TXT record to add, which names the tenant. Its
// domain step, run as an operation of its own whenever a check is due
// (never for long: a lookup, a route change, an HTTPS check), looks the
// record up with a growing interval until it is there, makes sure no
// other route serves the name, adds the name to the tenant's route as an
// alias (Caddy's automatic HTTPS obtains the certificate by ACME) and
// waits until the name answers over HTTPS with a valid certificate. Every
// later change of the route (cut-over, suspend, resume) keeps the aliases.
// removeDomain takes the alias off the route; decommission releases every
// domain with the route.

// dm names the domain activities (a nil pointer: the worker registers the
// real struct).
var dm *domains.Activities

// How long a domain waits for its record, and how often it is looked up.
const (
	domainVerifyFor      = 72 * time.Hour
	domainFirstRecheck   = 10 * time.Second
	domainMaxRecheck     = 10 * time.Minute
	domainCertificateFor = 24 * time.Hour
	// An active domain's record is looked at again every day; a record
	// gone for domainRecordGrace takes the name off the route (the
	// customer moved it, or the domain changed hands).
	domainRecheckActive = 24 * time.Hour
	domainRecordGrace   = 72 * time.Hour
)

// domainCheckOptions: a lookup is quick; a resolver outage is retried,
// then the check comes again later.
var domainCheckOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    30 * time.Second,
	ScheduleToCloseTimeout: 2 * time.Minute,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Second},
}

// httpsCheckOptions: Caddy obtains a certificate in seconds to minutes;
// the check is retried for half a minute, then the domain step ends (so
// it never holds the tenant's other operations up for long) and the
// domain is checked again later (NextCheckAt).
var httpsCheckOptions = workflow.ActivityOptions{
	StartToCloseTimeout:    15 * time.Second,
	ScheduleToCloseTimeout: 30 * time.Second,
	RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 500 * time.Millisecond, BackoffCoefficient: 1.5, MaximumInterval: 5 * time.Second},
}

// validateAddDomain refuses what can never be served.
func (t *entity) validateAddDomain(ctx workflow.Context, in DomainRequest) error {
	host := in.Host
	switch {
	case in.By == "":
		return flow.Refuse(ErrDomainRefused, "a domain request needs a requester (by)")
	case t.state.State != StateActive && t.state.State != StateSuspended:
		return flow.Refuse(ErrDomainRefused, "tenant %s is %s: domains are added to an active or suspended tenant", t.spec.Name, t.state.State)
	case !spec.IsDomainName(host):
		return flow.Refuse(ErrDomainRefused, "host %q is not a lower-case domain name of at least two labels", host)
	}
	if _, routed := t.resource(KindRoute); !routed {
		return flow.Refuse(ErrDomainRefused, "tenant %s is not behind the proxy (routing is off, or its runtime has its own route): it cannot serve a custom domain", t.spec.Name)
	}
	if own := t.ownHost(); own != "" {
		parent := own[strings.IndexByte(own, '.')+1:]
		if host == own || host == parent || strings.HasSuffix(host, "."+parent) {
			return flow.Refuse(ErrDomainRefused, "host %s is in the platform's own domain %s: only a customer's domain is added", host, parent)
		}
	}
	live := 0
	for _, d := range t.state.Domains {
		if d.Host == host && d.Status != DomainFailed {
			return flow.Refuse(ErrDomainRefused, "tenant %s already has domain %s (%s)", t.spec.Name, host, d.Status)
		}
		if d.Status != DomainFailed {
			live++
		}
	}
	if live >= proxy.MaxAliases {
		return flow.Refuse(ErrDomainRefused, "tenant %s has %d domains, the most it may have", t.spec.Name, live)
	}
	return nil
}

// addDomain records the domain and the record that proves it; the domain
// step checks it at once.
func (t *entity) addDomain(ctx workflow.Context, in DomainRequest) (Domain, error) {
	now := workflow.Now(ctx)
	name, value := domains.Challenge(t.spec.Name, t.state.ProvisionID, in.Host)
	d := Domain{Host: in.Host, Status: DomainVerifying, Record: DomainRecord{Name: name, Type: "TXT", Value: value},
		RequestedBy: in.By, RequestedAt: now, NextCheckAt: &now}
	t.state.Domains = slices.DeleteFunc(t.state.Domains, func(o Domain) bool { return o.Host == in.Host })
	t.state.Domains = append(t.state.Domains, d)
	t.logger(ctx).Info("custom domain requested", "host", in.Host, "by", in.By, "record", name)
	t.upsertMemo(ctx)
	return d, nil
}

func (t *entity) validateRemoveDomain(ctx workflow.Context, in DomainRequest) error {
	if in.By == "" {
		return flow.Refuse(ErrDomainRefused, "a domain removal needs a requester (by)")
	}
	i := t.domainIndex(in.Host)
	switch {
	case i < 0:
		return flow.Refuse(ErrDomainNotFound, "tenant %s has no domain %s", t.spec.Name, in.Host)
	case t.state.Domains[i].Status == DomainRemoving:
		return flow.Refuse(ErrDomainRefused, "domain %s of tenant %s is being removed already", in.Host, t.spec.Name)
	}
	return nil
}

// removeDomain forgets a domain the route does not serve yet at once, and
// has the domain step take an alias off the route.
func (t *entity) removeDomain(ctx workflow.Context, in DomainRequest) (Domain, error) {
	i := t.domainIndex(in.Host)
	d := &t.state.Domains[i]
	t.logger(ctx).Info("custom domain removal requested", "host", in.Host, "by", in.By, "status", d.Status)
	if !d.Status.routed() && d.VerifiedAt == nil {
		// Never on the route: forgotten at once. A failed domain that
		// was verified may still be there: it goes through removing.
		out := *d
		out.Status = DomainRemoved
		t.state.Domains = slices.Delete(t.state.Domains, i, i+1)
		t.upsertMemo(ctx)
		return out, nil
	}
	now := workflow.Now(ctx)
	d.Status, d.Error, d.NextCheckAt = DomainRemoving, "", &now
	return *d, nil
}

func (t *entity) domainIndex(host string) int {
	return slices.IndexFunc(t.state.Domains, func(d Domain) bool { return d.Host == host })
}

// ownHost is the tenant's platform host name, from its URL.
func (t *entity) ownHost() string {
	u, err := url.Parse(t.state.URL)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// aliases are the domains the route serves: verified ones, until their
// removal.
func (t *entity) aliases() []string {
	var out []string
	for _, d := range t.state.Domains {
		if d.Status == DomainIssuing || d.Status == DomainActive {
			out = append(out, d.Host)
		}
	}
	return out
}

// routeTo is the tenant's route to up, or to its maintenance page when
// message is set, with its custom domains.
func (t *entity) routeTo(up, message string) proxy.RouteInput {
	in := proxy.RouteInput{Tenant: t.spec.Name, Owner: t.state.ProvisionID, Adopt: t.adopt(), Aliases: t.aliases(), Maintenance: message}
	if message == "" {
		in.Upstreams = []string{up}
	}
	return in
}

// routeNow is the route the tenant should be served by: its maintenance
// page when suspended (the suspension's message, which a suspend always
// sets), else its services' endpoint.
func (t *entity) routeNow(suspended bool) (proxy.RouteInput, error) {
	if suspended {
		return t.routeTo("", t.state.Suspension.Message), nil
	}
	up, err := upstream(runtimes.Endpoint{URL: t.state.Endpoint})
	if err != nil {
		return proxy.RouteInput{}, err
	}
	return t.routeTo(up, ""), nil
}

// domainsDue: a domain check or change is due on a tenant that serves.
func (t *entity) domainsDue(ctx workflow.Context) bool {
	wake := t.nextDomainCheck()
	return !wake.IsZero() && !workflow.Now(ctx).Before(wake)
}

// nextDomainCheck is when the first domain check is due (zero: none).
func (t *entity) nextDomainCheck() time.Time {
	if t.state.State != StateActive && t.state.State != StateSuspended {
		return time.Time{}
	}
	var wake time.Time
	for _, d := range t.state.Domains {
		if d.scheduled() && (wake.IsZero() || d.NextCheckAt.Before(wake)) {
			wake = *d.NextCheckAt
		}
	}
	return wake
}

// checkDomains runs every domain check that is due.
func (t *entity) checkDomains(ctx workflow.Context) {
	now := workflow.Now(ctx)
	for _, host := range t.dueDomains(now) {
		i := t.domainIndex(host)
		if i < 0 {
			continue
		}
		switch t.state.Domains[i].Status {
		case DomainVerifying:
			t.verifyDomain(ctx, host)
		case DomainIssuing:
			t.awaitCertificate(ctx, host)
		case DomainRemoving:
			t.unrouteDomain(ctx, host)
		case DomainActive:
			t.reverifyDomain(ctx, host)
		}
	}
	t.upsertMemo(ctx)
}

func (t *entity) dueDomains(now time.Time) []string {
	var out []string
	for _, d := range t.state.Domains {
		if d.scheduled() && !now.Before(*d.NextCheckAt) {
			out = append(out, d.Host)
		}
	}
	return out
}

// scheduled tells a domain with a check to come.
func (d Domain) scheduled() bool { return d.NextCheckAt != nil && d.Status.pending() }

// domainIn is the domain named host while it is in status want, nil once
// it is gone or moved on: an Update (a removal) may change it while an
// activity of the domain step runs, and the Update's change wins.
func (t *entity) domainIn(host string, want DomainStatus) *Domain {
	i := t.domainIndex(host)
	if i < 0 || t.state.Domains[i].Status != want {
		return nil
	}
	return &t.state.Domains[i]
}

// verifyDomain looks the record up; once found and the name free, the
// route serves it.
func (t *entity) verifyDomain(ctx workflow.Context, host string) {
	d := t.domainIn(host, DomainVerifying)
	now := workflow.Now(ctx)
	d.Checks++
	var v domains.Verification
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, domainCheckOptions), dm.VerifyDomain,
		domains.VerifyInput{Host: host, Name: d.Record.Name, Value: d.Record.Value}).Get(ctx, &v)
	if d = t.domainIn(host, DomainVerifying); d == nil {
		return // removed meanwhile
	}
	switch {
	case err != nil && flow.IsApplicationError(err, domains.ErrNotConfigured):
		t.failDomain(ctx, d, flow.ErrorMessage(err))
		return
	case err != nil:
		d.Error = "the record could not be looked up: " + flow.ErrorMessage(err)
	case !v.Verified:
		d.Found = v.Found
		d.Error = fmt.Sprintf("%s TXT %q is not there yet", d.Record.Name, d.Record.Value)
	}
	if err != nil || !v.Verified {
		if now.Sub(d.RequestedAt) > domainVerifyFor {
			t.failDomain(ctx, d, fmt.Sprintf("the record was not found within %s: %s", domainVerifyFor, d.Error))
			return
		}
		next := now.Add(recheckAfter(d.Checks))
		d.NextCheckAt = &next
		return
	}
	d.Found, d.Error = v.Found, ""
	verified := workflow.Now(ctx)
	d.VerifiedAt = &verified
	err = workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), px.CheckDomainFree,
		proxy.DomainInput{Tenant: t.spec.Name, Host: host}).Get(ctx, nil)
	if d = t.domainIn(host, DomainVerifying); d == nil {
		return
	}
	if err != nil {
		t.failDomain(ctx, d, flow.ErrorMessage(err))
		return
	}
	d.Status = DomainIssuing
	if err := t.applyAliases(ctx); err != nil {
		if d := t.domainIn(host, DomainIssuing); d != nil {
			t.failDomain(ctx, d, "the route could not serve it: "+flow.ErrorMessage(err))
			_ = t.applyAliases(ctx)
		}
		return
	}
	t.logger(ctx).Info("custom domain verified and routed", "host", host)
	if t.domainIn(host, DomainIssuing) != nil {
		t.awaitCertificate(ctx, host)
	}
}

// awaitCertificate checks that the domain answers over HTTPS with a valid
// certificate; until it does, the check comes again.
func (t *entity) awaitCertificate(ctx workflow.Context, host string) {
	var ans domains.HTTPSAnswer
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, httpsCheckOptions), dm.CheckHTTPS, domains.HTTPSInput{Host: host}).Get(ctx, &ans)
	d := t.domainIn(host, DomainIssuing)
	if d == nil {
		return // removed meanwhile
	}
	now := workflow.Now(ctx)
	if err != nil {
		d.Checks++
		d.Error = "no valid certificate yet: " + flow.ErrorMessage(err)
		if d.VerifiedAt != nil && now.Sub(*d.VerifiedAt) > domainCertificateFor {
			// The name may not point at the proxy: stop serving it, so
			// Caddy stops asking the CA for it.
			t.failDomain(ctx, d, fmt.Sprintf("no valid certificate within %s (does the name point at the proxy?): %s", domainCertificateFor, d.Error))
			if err := t.applyAliases(ctx); err != nil {
				t.logger(ctx).Warn("failed domain still on the route", "host", host, "error", flow.ErrorMessage(err))
			}
			return
		}
		next := now.Add(recheckAfter(d.Checks))
		d.NextCheckAt = &next
		return
	}
	next := now.Add(domainRecheckActive)
	d.Status, d.Error, d.NextCheckAt, d.ActiveAt, d.Issuer = DomainActive, "", &next, &now, ans.Issuer
	t.logger(ctx).Info("custom domain answers over HTTPS", "host", host, "issuer", ans.Issuer, "notAfter", ans.NotAfter)
}

// reverifyDomain looks an active domain's record up again: the name
// stays the tenant's only while the customer keeps the record. A record
// missing for domainRecordGrace fails the domain and takes it off the
// route; one back in time clears the warning.
func (t *entity) reverifyDomain(ctx workflow.Context, host string) {
	d := t.domainIn(host, DomainActive)
	var v domains.Verification
	err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, domainCheckOptions), dm.VerifyDomain,
		domains.VerifyInput{Host: host, Name: d.Record.Name, Value: d.Record.Value}).Get(ctx, &v)
	if d = t.domainIn(host, DomainActive); d == nil {
		return
	}
	now := workflow.Now(ctx)
	next := now.Add(domainRecheckActive)
	d.NextCheckAt = &next
	switch {
	case err != nil:
		// The resolver's trouble is not the customer's: look again later.
		d.Error = "the record could not be looked up: " + flow.ErrorMessage(err)
		return
	case v.Verified:
		d.Error, d.RecordMissingSince, d.Found = "", nil, v.Found
		return
	}
	d.Found = v.Found
	if d.RecordMissingSince == nil {
		d.RecordMissingSince = &now
	}
	d.Error = fmt.Sprintf("%s TXT %q is gone since %s: the name leaves the route after %s", d.Record.Name, d.Record.Value,
		d.RecordMissingSince.UTC().Format(time.RFC3339), domainRecordGrace)
	t.logger(ctx).Warn("custom domain record gone", "host", host, "since", d.RecordMissingSince)
	if now.Sub(*d.RecordMissingSince) < domainRecordGrace {
		return
	}
	t.failDomain(ctx, d, fmt.Sprintf("the record was gone for %s: the name no longer proves to be the tenant's", domainRecordGrace))
	if err := t.applyAliases(ctx); err != nil {
		// Still served: removing takes it off once the proxy answers.
		d := t.domainIn(host, DomainFailed)
		d.Status, d.NextCheckAt = DomainRemoving, &now
	}
}

// unrouteDomain takes the alias off the route, then forgets the domain.
func (t *entity) unrouteDomain(ctx workflow.Context, host string) {
	if err := t.applyAliases(ctx); err != nil {
		d := t.domainIn(host, DomainRemoving)
		if d == nil {
			return
		}
		d.Checks++
		d.Error = "the route could not drop it: " + flow.ErrorMessage(err)
		next := workflow.Now(ctx).Add(recheckAfter(d.Checks))
		d.NextCheckAt = &next
		return
	}
	t.state.Domains = slices.DeleteFunc(t.state.Domains, func(d Domain) bool { return d.Host == host && d.Status == DomainRemoving })
	t.logger(ctx).Info("custom domain removed", "host", host)
}

// applyAliases makes the route serve the aliases the state lists.
func (t *entity) applyAliases(ctx workflow.Context) error {
	in, err := t.routeNow(t.state.State == StateSuspended)
	if err != nil {
		return err
	}
	var route proxy.Route
	if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), px.EnsureRoute, in).Get(ctx, &route); err != nil {
		return err
	}
	return nil
}

func (t *entity) failDomain(ctx workflow.Context, d *Domain, why string) {
	d.Status, d.Error, d.NextCheckAt = DomainFailed, why, nil
	t.logger(ctx).Warn("custom domain failed", "host", d.Host, "error", why)
}

// recheckAfter grows from domainFirstRecheck to domainMaxRecheck.
func recheckAfter(checks int) time.Duration {
	d := domainFirstRecheck
	for i := 1; i < checks && d < domainMaxRecheck; i++ {
		d *= 2
	}
	return min(d, domainMaxRecheck)
}
