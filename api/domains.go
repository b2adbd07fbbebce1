package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// addDomainRequest is the body of POST /v1/tenants/{name}/domains.
type addDomainRequest struct {
	Host string `json:"host"`
}

// checkHost reads a custom domain: a lower-case name of two labels or
// more, without a port, a scheme or a trailing dot.
func checkHost(field, v string) (string, *fieldError) {
	h := strings.ToLower(strings.TrimSpace(v))
	switch {
	case h == "":
		return "", badField(field, "%s is required: the customer's domain name (e.g. crm.customer.com)", field)
	case strings.Contains(h, "://") || strings.ContainsAny(h, ":/"):
		return "", badField(field, "%s %q must be a bare name, without scheme, port or path", field, v)
	case strings.HasSuffix(h, "."):
		return "", badField(field, "%s %q must not end with a dot", field, v)
	case strings.HasPrefix(h, "*."):
		return "", badField(field, "%s %q: wildcards are not served", field, v)
	case !spec.IsDomainName(h):
		return "", badField(field, "%s %q is not a domain name of at least two labels (a-z, 0-9 and '-')", field, v)
	}
	return h, nil
}

// addDomain asks for a custom domain (ops, distributor): 202 with the
// domain and the TXT record the customer adds; the tenant's state shows
// it verified, then active once it answers over HTTPS.
//
//	POST /v1/tenants/{name}/domains {"host": "crm.customer.com"}
func (s *server) addDomain(c *gin.Context) {
	name := c.Param("name")
	if ferr := validateName(name); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	var body addDomainRequest
	if ferr := decodeJSONBody(c, s.cfg.MaxBodyBytes, &body); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	host, ferr := checkHost("host", body.Host)
	if ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	noteDetail(c, "host "+host, &host)
	var out tenant.Domain
	if !s.sendUpdate(c, tenant.WorkflowID(name), updateTarget{kind: "tenant", id: name,
		ended: "has ended: no domain can be added", refusals: []string{tenant.ErrDomainRefused}},
		tenant.UpdateAddDomain, tenant.DomainRequest{Host: host, By: c.GetString(ctxCaller)}, &out) {
		return
	}
	s.log.InfoContext(c.Request.Context(), "custom domain requested", "tenant", name, "host", host, "caller", c.GetString(ctxCaller))
	c.JSON(http.StatusAccepted, out)
}

// removeDomain takes a custom domain off the tenant (ops, distributor).
//
//	DELETE /v1/tenants/{name}/domains/{host}
func (s *server) removeDomain(c *gin.Context) {
	name := c.Param("name")
	if ferr := validateName(name); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	host, ferr := checkHost("host", c.Param("host"))
	if ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	noteDetail(c, "host "+host, &host)
	var out tenant.Domain
	if !s.sendUpdate(c, tenant.WorkflowID(name), updateTarget{kind: "tenant", id: name,
		ended: "has ended: its domains were released", refusals: []string{tenant.ErrDomainRefused},
		notFoundType: tenant.ErrDomainNotFound, notFound: "host"},
		tenant.UpdateRemoveDomain, tenant.DomainRequest{Host: host, By: c.GetString(ctxCaller)}, &out) {
		return
	}
	s.log.InfoContext(c.Request.Context(), "custom domain removal requested", "tenant", name, "host", host, "caller", c.GetString(ctxCaller))
	c.JSON(http.StatusAccepted, out)
}
