package supervision

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
)

// managedBy marks the Icinga objects Tenantflow owns (host vars.managed_by):
// an existing host without it is someone else's and is never overwritten.
const managedBy = "tenantflow"

// OwnerVar is the host's custom variable (vars.tenantflow_owner) that names
// the provisioning run that registered the tenant.
const OwnerVar = "tenantflow_owner"

// Icinga2Driver registers a tenant as a host object tenantflow-<tenant>
// (check "dummy": always up, it only groups) with a service "http" that runs
// check_http against the tenant's URL, so the alert is on the service and
// Icinga's notifications apply as for any other service.
type Icinga2Driver struct {
	base     string // https://host:5665, no trailing slash
	user     string
	password string
	template string
	http     *http.Client
	log      *slog.Logger
}

// NewIcinga2Driver builds the API client (reads the CA file, no network I/O).
func NewIcinga2Driver(cfg Icinga2Config, timeout time.Duration, log *slog.Logger) (*Icinga2Driver, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify}
	if cfg.CA != "" {
		pem, err := os.ReadFile(cfg.CA)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvIcinga2CA, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: %s holds no PEM certificate", EnvIcinga2CA, cfg.CA)
		}
		tlsCfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	if log == nil {
		log = slog.Default()
	}
	return &Icinga2Driver{
		base: strings.TrimSuffix(cfg.URL, "/"), user: cfg.User, password: cfg.Password,
		template: cfg.HostTemplate, http: &http.Client{Transport: tr, Timeout: timeout}, log: log,
	}, nil
}

// HostName is the deterministic host object name of a tenant.
func HostName(tenant string) string { return "tenantflow-" + tenant }

// Watch creates the host and its http service, or updates their attributes
// when they exist, so a second call converges on the input.
func (d *Icinga2Driver) Watch(ctx context.Context, in WatchInput) error {
	u, err := parseProbeURL(in.URL)
	if err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), ErrInvalidInput, nil)
	}
	host := HostName(in.Tenant)
	hostAttrs := map[string]any{
		"display_name":    "Tenant " + in.Tenant,
		"check_command":   "dummy",
		"vars.dummy_text": "Tenantflow tenant " + in.Tenant + ": see service http",
		"vars.tenant":     in.Tenant,
		"vars.stage":      in.Stage,
		"vars.managed_by": managedBy,
	}
	if in.Owner != "" {
		hostAttrs["vars."+OwnerVar] = in.Owner
	}
	var templates []string
	if d.template != "" {
		templates = []string{d.template}
	}
	if err := d.ensure(ctx, in, "hosts", host, templates, hostAttrs); err != nil {
		return err
	}
	svcAttrs := map[string]any{
		"display_name":   "Tenant " + in.Tenant + " URL",
		"check_command":  "http",
		"check_interval": 60,
		"retry_interval": 30,
		"vars.tenant":    in.Tenant,
		"vars.stage":     in.Stage,
		"vars.url":       in.URL,
	}
	for k, v := range checkHTTPVars(u) {
		svcAttrs["vars."+k] = v
	}
	if err := d.ensure(ctx, in, "services", host+"!http", nil, svcAttrs); err != nil {
		return err
	}
	d.log.InfoContext(ctx, "icinga2 host and service ready", "tenant", in.Tenant, "host", host, "url", in.URL)
	return nil
}

// checkHTTPVars are the ITL "http" command's arguments for a URL. All are
// always set, so an update from https to http clears http_ssl.
func checkHTTPVars(u *url.URL) map[string]any {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	portNum, _ := strconv.Atoi(port)
	uri := u.EscapedPath()
	if uri == "" {
		uri = "/"
	}
	if u.RawQuery != "" {
		uri += "?" + u.RawQuery
	}
	ssl := u.Scheme == "https"
	return map[string]any{
		"http_address": u.Hostname(), "http_vhost": u.Hostname(), "http_port": portNum,
		"http_uri": uri, "http_ssl": ssl, "http_sni": ssl,
	}
}

// ensure creates an object (PUT) or, when Icinga says it already exists,
// modifies its attributes (POST). A host must carry our marker and be the
// call's (see mayTouch): the update of a host is filtered on its owner
// variable, so Icinga applies it only to the host that was checked. The
// service belongs to its host.
func (d *Icinga2Driver) ensure(ctx context.Context, in WatchInput, typ, name string, templates []string, attrs map[string]any) error {
	path := "/v1/objects/" + typ + "/" + url.PathEscape(name)
	body := map[string]any{"attrs": attrs}
	if len(templates) > 0 {
		body["templates"] = templates
	}
	op := fmt.Sprintf("create icinga2 %s %s", strings.TrimSuffix(typ, "s"), name)
	status, resp, err := d.do(ctx, http.MethodPut, path, body)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if status == http.StatusOK {
		return nil
	}
	if status != http.StatusInternalServerError || !bytes.Contains(resp, []byte("already exists")) {
		return apiError(op, status, resp)
	}
	if typ == "hosts" {
		stamped, err := d.checkOwner(ctx, in, name)
		if err != nil {
			return err
		}
		path = "/v1/objects/hosts?filter=" + queryEscape(hostFilter(name, in.Tenant, in.Owner, stamped))
	}
	op = fmt.Sprintf("update icinga2 %s %s", strings.TrimSuffix(typ, "s"), name)
	status, resp, err = d.do(ctx, http.MethodPost, path, map[string]any{"attrs": attrs})
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if status == http.StatusNotFound && typ == "hosts" {
		return fmt.Errorf("%s: the host changed since its owner was checked, looking again", op)
	}
	if status != http.StatusOK {
		return apiError(op, status, resp)
	}
	return nil
}

// hostFilter selects the tenant's host only as it was checked: marked by
// Tenantflow for the tenant and naming owner (stamped) or no owner at all.
func hostFilter(host, tenant, owner string, stamped bool) string {
	f := fmt.Sprintf("host.name==%q && host.vars.managed_by==%q && host.vars.tenant==%q", host, managedBy, tenant)
	switch {
	case owner == "":
		return f
	case stamped:
		return f + fmt.Sprintf(" && host.vars.%s==%q", OwnerVar, owner)
	}
	return f + fmt.Sprintf(" && !host.vars.%s", OwnerVar)
}

// checkOwner refuses to take over a host Tenantflow did not create
// (ErrConflict) or another run registered (ResourceNotOurs). stamped tells
// whether the host names an owner.
func (d *Icinga2Driver) checkOwner(ctx context.Context, in WatchInput, host string) (stamped bool, err error) {
	op := "read icinga2 host " + host
	status, resp, err := d.do(ctx, http.MethodGet, "/v1/objects/hosts/"+url.PathEscape(host)+"?attrs=vars", nil)
	if err != nil {
		return false, fmt.Errorf("%s: %w", op, err)
	}
	if status != http.StatusOK {
		return false, apiError(op, status, resp)
	}
	var r struct {
		Results []struct {
			Attrs struct {
				Vars map[string]any `json:"vars"`
			} `json:"attrs"`
		} `json:"results"`
	}
	if err := json.Unmarshal(resp, &r); err != nil || len(r.Results) != 1 {
		return false, fmt.Errorf("%s: unexpected answer %.200s", op, resp)
	}
	vars := r.Results[0].Attrs.Vars
	if vars["managed_by"] != managedBy || vars["tenant"] != in.Tenant {
		return false, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("icinga2 host %s exists but was not created by Tenantflow for tenant %s (vars.managed_by/vars.tenant differ)", host, in.Tenant),
			ErrConflict, nil)
	}
	got, stamped := vars[OwnerVar].(string)
	if !mayTouch(in.Owner, got, stamped, in.Adopt) {
		return false, notOurs("icinga2 host "+host, in.Tenant, in.Owner, got, stamped)
	}
	return stamped, nil
}

// Unwatch deletes the tenant's host with its services. The filter matches
// only a host carrying our marker and naming this run (with Adopt, or
// naming none), so a foreign host of the same name, or another run's, is
// left alone; nothing matching (404) is success.
func (d *Icinga2Driver) Unwatch(ctx context.Context, ref WatchRef) error {
	host := HostName(ref.Tenant)
	op := "delete icinga2 host " + host
	filter := fmt.Sprintf("host.name==%q && host.vars.managed_by==%q", host, managedBy)
	if ref.Owner != "" {
		filter = hostFilter(host, ref.Tenant, ref.Owner, true)
		if ref.Adopt {
			filter = fmt.Sprintf("(%s) || (%s)", filter, hostFilter(host, ref.Tenant, ref.Owner, false))
		}
	}
	status, resp, err := d.do(ctx, http.MethodDelete, "/v1/objects/hosts?cascade=1&filter="+queryEscape(filter), nil)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	switch status {
	case http.StatusOK:
		d.log.InfoContext(ctx, "icinga2 host deleted", "tenant", ref.Tenant, "host", host)
		return nil
	case http.StatusNotFound:
		d.log.InfoContext(ctx, "no icinga2 host of this provisioning to delete", "tenant", ref.Tenant, "host", host, "owner", ref.Owner)
		return nil
	}
	return apiError(op, status, resp)
}

// Check reads the application status: it proves the address, the
// certificate and the credentials in one request.
func (d *Icinga2Driver) Check(ctx context.Context) error {
	status, resp, err := d.do(ctx, http.MethodGet, "/v1/status/IcingaApplication", nil)
	if err != nil {
		return fmt.Errorf("check icinga2 API: %w", err)
	}
	if status != http.StatusOK {
		return apiError("check icinga2 API", status, resp)
	}
	return nil
}

// do sends one API request and returns the status and (bounded) body.
func (d *Icinga2Driver) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, d.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.SetBasicAuth(d.user, d.password)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := d.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode, b, nil
}

// apiError turns an unexpected answer into an error: 401 and other 4xx are
// permanent (credentials, permissions, a request Icinga refuses), 5xx are
// retried (Icinga reloading, a failed config package write).
func apiError(op string, status int, body []byte) error {
	msg := fmt.Sprintf("%s: icinga2 answered %d: %s", op, status, icingaMessage(body))
	switch {
	case status == http.StatusUnauthorized:
		return temporal.NewNonRetryableApplicationError(msg+" (check "+EnvIcinga2User+"/"+EnvIcinga2Password+")", ErrUnauthorized, nil)
	case status >= 400 && status < 500:
		return temporal.NewNonRetryableApplicationError(msg, ErrRejected, nil)
	}
	return errors.New(msg)
}

// queryEscape escapes a URL parameter with %20 for spaces: Icinga does not
// decode '+'.
func queryEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

// icingaMessage extracts Icinga's error texts from an answer, or a bounded
// excerpt of a body that is not Icinga JSON (the 401 page is HTML).
func icingaMessage(body []byte) string {
	var r struct {
		Status  string `json:"status"`
		Results []struct {
			Status string   `json:"status"`
			Errors []string `json:"errors"`
		} `json:"results"`
	}
	if json.Unmarshal(body, &r) == nil {
		var parts []string
		if r.Status != "" {
			parts = append(parts, r.Status)
		}
		for _, res := range r.Results {
			parts = append(parts, res.Status)
			parts = append(parts, res.Errors...)
		}
		if len(parts) > 0 {
			return strings.Join(parts, "; ")
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
