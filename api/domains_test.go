package api

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

func TestAddDomain(t *testing.T) {
	for _, tt := range []struct{ name, body, field, want string }{
		{"no body", "", "body", "empty"},
		{"no host", `{}`, "host", "host is required"},
		{"url", `{"host":"https://crm.customer.com/"}`, "host", "bare name"},
		{"port", `{"host":"crm.customer.com:443"}`, "host", "bare name"},
		{"one label", `{"host":"localhost"}`, "host", "at least two labels"},
		{"bad label", `{"host":"crm_1.customer.com"}`, "host", "at least two labels"},
		{"wildcard", `{"host":"*.customer.com"}`, "host", "wildcards"},
		{"trailing dot", `{"host":"crm.customer.com."}`, "host", "must not end with a dot"},
		{"unknown field", `{"host":"crm.customer.com","tls":"off"}`, "tls", `unknown field "tls"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			rec := e.do(http.MethodPost, "/v1/tenants/acme/domains", opsToken, tt.body)
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			field, msg := fieldErrorBody(t, rec.Body.Bytes())
			assert.Equal(t, tt.field, field)
			assert.Contains(t, msg, tt.want)
			assert.Empty(t, e.temporal.updates, "nothing is sent")
		})
	}

	e := newTestEnv(t)
	rec := e.do(http.MethodPost, "/v1/tenants/acme/domains", developerToken, `{"host":"crm.customer.com"}`)
	require.Equal(t, http.StatusForbidden, rec.Code, "developers do not add domains")

	e.temporal.updateResult = tenant.Domain{Host: "crm.customer.com", Status: tenant.DomainVerifying,
		Record: tenant.DomainRecord{Name: "_tenantflow-challenge.crm.customer.com", Type: "TXT", Value: "tenantflow-verify=abc"}}
	rec = e.do(http.MethodPost, "/v1/tenants/acme/domains", distributorToken, `{"host":"CRM.Customer.com"}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"record":{"name":"_tenantflow-challenge.crm.customer.com","type":"TXT","value":"tenantflow-verify=abc"}`)
	require.Len(t, e.temporal.updates, 1)
	assert.Equal(t, tenant.UpdateAddDomain, e.temporal.updates[0].UpdateName)
	assert.Equal(t, []any{tenant.DomainRequest{Host: "crm.customer.com", By: "distributor"}}, e.temporal.updates[0].Args, "names are lower-cased")

	e.temporal.updateGetErr = temporal.NewApplicationError("host shop.apps.example.com is in the platform's own domain", tenant.ErrDomainRefused)
	rec = e.do(http.MethodPost, "/v1/tenants/acme/domains", opsToken, `{"host":"shop.apps.example.com"}`)
	require.Equal(t, http.StatusConflict, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), "platform's own domain")
}

func TestRemoveDomain(t *testing.T) {
	e := newTestEnv(t)
	rec := e.do(http.MethodDelete, "/v1/tenants/acme/domains/not_a_host", opsToken, "")
	require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
	e.temporal.updateResult = tenant.Domain{Host: "crm.customer.com", Status: tenant.DomainRemoving}
	rec = e.do(http.MethodDelete, "/v1/tenants/acme/domains/crm.customer.com", distributorToken, "")
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	assert.Equal(t, tenant.UpdateRemoveDomain, e.temporal.updates[0].UpdateName)

	e.temporal.updateGetErr = temporal.NewApplicationError("tenant acme has no domain www.customer.com", tenant.ErrDomainNotFound)
	rec = e.do(http.MethodDelete, "/v1/tenants/acme/domains/www.customer.com", opsToken, "")
	require.Equal(t, http.StatusNotFound, rec.Code, rec.Body.String())
	field, _ := fieldErrorBody(t, rec.Body.Bytes())
	assert.Equal(t, "host", field)
}
