package cli

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// crmDomain is a custom domain of acme.
func crmDomain(status tenant.DomainStatus, requested time.Time, errMsg string) tenant.Domain {
	return tenant.Domain{Host: "crm.customer.com", Status: status, RequestedBy: "ops", RequestedAt: requested, Error: errMsg,
		Record: tenant.DomainRecord{Name: "_tenantflow.crm.customer.com", Type: "TXT", Value: "tenantflow-verify=0123abcd"}}
}

// add and rm are Updates; add tells the record the customer adds.
func TestTenantsDomainsAddAndRm(t *testing.T) {
	api := newFakeAPI(t)
	api.on("POST /v1/tenants/acme/domains", answer(202, crmDomain(tenant.DomainVerifying, askedAt, "")))
	api.on("DELETE /v1/tenants/acme/domains/crm.customer.com", answer(202, crmDomain(tenant.DomainRemoving, askedAt, "")))

	r := api.cli(nil, false, "tenants", "domains", "add", "acme", "crm.customer.com")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"domain crm.customer.com of acme: verifying",
		"the customer adds this DNS record; then it is served over HTTPS:",
		`  _tenantflow.crm.customer.com  TXT  "tenantflow-verify=0123abcd"`,
		"follow it: tenantflow tenants domains ls acme",
	}, lines(r.out))
	req := api.requests("POST /v1/tenants/acme/domains")[0]
	require.Equal(t, map[string]any{"host": "crm.customer.com"}, req.body)
	require.NotEmpty(t, req.idempotencyKey)

	r = api.cli(nil, false, "tenants", "domains", "rm", "acme", "crm.customer.com")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "domain crm.customer.com of acme: removing\n", r.out)
	req = api.requests("DELETE /v1/tenants/acme/domains/crm.customer.com")[0]
	require.Nil(t, req.body)
	require.NotEmpty(t, req.idempotencyKey)

	r = api.cli(nil, false, "tenants", "domains", "rm", "acme")
	require.Equal(t, ExitUsage, r.code)
	require.Contains(t, r.err, "error: tenantflow tenants domains rm takes NAME HOST\n")
}

func TestTenantsDomainsRefused(t *testing.T) {
	api := newFakeAPI(t)
	api.on("POST /v1/tenants/acme/domains", answer(400, refusal(`host "crm" is not a domain name of at least two labels (a-z, 0-9 and '-')`, "host")))
	api.on("POST /v1/tenants/ghost/domains", answer(404, refusal("tenant ghost not found", "")))
	api.on("POST /v1/tenants/globex/domains", answer(409, refusal("tenant globex is provisioning: no domain can be added", "")))
	api.on("DELETE /v1/tenants/acme/domains/shop.customer.com", answer(404, refusal("tenant acme has no domain shop.customer.com", "host")))

	r := api.cli(nil, false, "tenants", "domains", "add", "acme", "crm")
	require.Equal(t, ExitUsage, r.code)
	require.Equal(t, "error: host: host \"crm\" is not a domain name of at least two labels (a-z, 0-9 and '-')\n", r.err)

	r = api.cli(nil, false, "tenants", "domains", "add", "ghost", "crm.customer.com")
	require.Equal(t, ExitNotFound, r.code)
	require.Equal(t, "error: tenant ghost not found\n", r.err)

	r = api.cli(nil, false, "tenants", "domains", "add", "globex", "crm.customer.com")
	require.Equal(t, ExitRefused, r.code)
	require.Equal(t, "error: tenant globex is provisioning: no domain can be added\n", r.err)

	r = api.cli(nil, false, "tenants", "domains", "rm", "acme", "shop.customer.com")
	require.Equal(t, ExitNotFound, r.code)
	require.Equal(t, "error: host: tenant acme has no domain shop.customer.com\n", r.err)
}

// ls reads the domains in the tenant's state, waiting for its workflow's
// own answer: a stale summary has none.
func TestTenantsDomainsLs(t *testing.T) {
	api := newFakeAPI(t)
	st := acme()
	now := time.Now()
	st.Domains = []tenant.Domain{crmDomain(tenant.DomainActive, now.Add(-26*time.Hour), ""),
		{Host: "shop.customer.com", Status: tenant.DomainVerifying, RequestedAt: now.Add(-5 * time.Minute),
			Record: tenant.DomainRecord{Name: "_tenantflow.shop.customer.com", Type: "TXT", Value: "tenantflow-verify=4567ef"},
			Error:  `_tenantflow.shop.customer.com TXT "tenantflow-verify=4567ef" is not there yet`}}
	api.on("GET /v1/tenants/acme", answer(200, st))
	r := api.cli(nil, false, "tenants", "domains", "ls", "acme")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"HOST               STATUS     RECORD                         TYPE  VALUE                       AGE  ERROR",
		"crm.customer.com   active     _tenantflow.crm.customer.com   TXT   tenantflow-verify=0123abcd  26h  -",
		`shop.customer.com  verifying  _tenantflow.shop.customer.com  TXT   tenantflow-verify=4567ef    5m   _tenantflow.shop.customer.com TXT "tenantflow-verify=4567ef" is not there yet`,
	}, lines(r.out))
	require.Equal(t, "fresh=true", api.requests("GET /v1/tenants/acme")[0].query)

	api.on("GET /v1/tenants/acme", answer(200, map[string]any{"name": "acme", "state": "active", "stale": true, "staleReason": "no worker answered"}))
	r = api.cli(nil, false, "tenants", "domains", "ls", "acme")
	require.Equal(t, ExitFailure, r.code)
	require.Equal(t, "error: tenant acme: its workflow did not answer (no worker answered): its domains are not known now\n", r.err)
	require.Empty(t, r.out)

	r = api.cli(nil, false, "tenants", "domains", "ls", "ghost")
	require.Equal(t, ExitNotFound, r.code)
}
