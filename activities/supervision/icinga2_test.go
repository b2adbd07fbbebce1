package supervision_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/supervision"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

func newIcingaActivities(t *testing.T, ic *harness.Icinga2, pw string) *supervision.Activities {
	t.Helper()
	return supervision.NewActivities(newIcingaDriver(t, ic, pw), harness.Logger(t))
}

// newIcingaDriver is newIcingaActivities' driver, for Check.
func newIcingaDriver(t *testing.T, ic *harness.Icinga2, pw string) supervision.Driver {
	t.Helper()
	cfg := supervision.Config{Driver: "icinga2", Timeout: 5 * time.Second, Icinga2: supervision.Icinga2Config{
		URL: ic.URL, User: ic.User, Password: pw, CA: ic.CAFile, HostTemplate: harness.Icinga2HostTemplate}}
	d, err := supervision.NewDriver(cfg, harness.Logger(t))
	require.NoError(t, err)
	return d
}

// icingaObject is what the assertions read back from the API.
type icingaObject struct {
	Name  string `json:"name"`
	Attrs struct {
		CheckCommand    string         `json:"check_command"`
		Templates       []string       `json:"templates"`
		Vars            map[string]any `json:"vars"`
		LastCheckResult *struct {
			ExitStatus float64 `json:"exit_status"`
			Output     string  `json:"output"`
		} `json:"last_check_result"`
	} `json:"attrs"`
}

// objects GETs /v1/objects/<path>; a 404 is no objects.
func objects(t *testing.T, ic *harness.Icinga2, path string) []icingaObject {
	t.Helper()
	status, body, err := ic.Do(http.MethodGet, "/v1/objects/"+path, nil)
	require.NoError(t, err)
	if status == http.StatusNotFound {
		return nil
	}
	require.Equal(t, http.StatusOK, status, "%s", body)
	var r struct {
		Results []icingaObject `json:"results"`
	}
	require.NoError(t, json.Unmarshal(body, &r))
	return r.Results
}

// filter is an Icinga filter URL parameter (Icinga does not decode '+').
func filter(expr string) string {
	return "filter=" + strings.ReplaceAll(url.QueryEscape(expr), "+", "%20")
}

func TestIcinga2Supervision(t *testing.T) {
	ic := harness.StartIcinga2(t)
	d := newIcingaDriver(t, ic, ic.Password)
	a := supervision.NewActivities(d, harness.Logger(t))
	require.NoError(t, d.Check(ctx(t)))
	app := tenantApp(t)
	appPort := app.Listener.Addr().(*net.TCPAddr).Port
	in := supervision.WatchInput{Tenant: "acme", Stage: "prod", URL: app.URL + "/"}

	// Create: host with the tenant's vars, service http probing the URL.
	require.NoError(t, a.StartSupervision(ctx(t), in))
	hosts := objects(t, ic, "hosts/tenantflow-acme?attrs=vars&attrs=check_command&attrs=templates")
	require.Len(t, hosts, 1)
	require.Contains(t, hosts[0].Attrs.Templates, harness.Icinga2HostTemplate)
	require.Equal(t, true, hosts[0].Attrs.Vars["notify"], "imported from the host template")
	require.Equal(t, "acme", hosts[0].Attrs.Vars["tenant"])
	require.Equal(t, "prod", hosts[0].Attrs.Vars["stage"])
	require.Equal(t, "dummy", hosts[0].Attrs.CheckCommand)
	svcs := objects(t, ic, "services/tenantflow-acme!http?attrs=vars&attrs=check_command")
	require.Len(t, svcs, 1)
	require.Equal(t, "http", svcs[0].Attrs.CheckCommand)
	v := svcs[0].Attrs.Vars
	require.Equal(t, "127.0.0.1", v["http_address"])
	require.Equal(t, float64(appPort), v["http_port"])
	require.Equal(t, "/", v["http_uri"])
	require.Equal(t, false, v["http_ssl"])

	// Second call with the same input, then with a changed URL and stage:
	// still one host and one service, with the new values.
	require.NoError(t, a.StartSupervision(ctx(t), in))
	changed := in
	changed.Stage, changed.URL = "staging", app.URL+"/healthz?from=icinga"
	require.NoError(t, a.StartSupervision(ctx(t), changed))
	hosts = objects(t, ic, "hosts?attrs=vars&"+filter(`match("tenantflow-*", host.name)`))
	require.Len(t, hosts, 1)
	require.Equal(t, "staging", hosts[0].Attrs.Vars["stage"])
	svcs = objects(t, ic, "services?attrs=vars&"+filter(`service.host_name=="tenantflow-acme"`))
	require.Len(t, svcs, 1)
	require.Equal(t, "/healthz?from=icinga", svcs[0].Attrs.Vars["http_uri"])
	require.Equal(t, changed.URL, svcs[0].Attrs.Vars["url"])

	// The derived vars work with check_http: OK on /healthz (the old "/"
	// answers 404, a WARNING), CRITICAL once the tenant is down.
	waitServiceState(t, ic, "tenantflow-acme!http", 0)
	app.Close()
	waitServiceState(t, ic, "tenantflow-acme!http", 2)

	// Remove: host and service gone; again is fine.
	require.NoError(t, a.StopSupervision(ctx(t), supervision.WatchRef{Tenant: "acme"}))
	require.Empty(t, objects(t, ic, "hosts/tenantflow-acme"))
	require.Empty(t, objects(t, ic, "services/tenantflow-acme!http"))
	require.NoError(t, a.StopSupervision(ctx(t), supervision.WatchRef{Tenant: "acme"}))
}

// waitServiceState asks Icinga to check the service now until its last
// result has the exit status.
func waitServiceState(t *testing.T, ic *harness.Icinga2, svc string, exit float64) {
	t.Helper()
	eventually(t, fmt.Sprintf("service %s exit status %v", svc, exit), 40*time.Second, func() error {
		status, body, err := ic.Do(http.MethodPost, "/v1/actions/reschedule-check", map[string]any{
			"type": "Service", "filter": fmt.Sprintf("service.__name==%q", svc), "force": true})
		if err != nil {
			return fmt.Errorf("reschedule: %w", err)
		}
		if status != http.StatusOK {
			return fmt.Errorf("reschedule: %d %s", status, body)
		}
		s := objects(t, ic, "services/"+svc+"?attrs=last_check_result")
		if len(s) != 1 || s[0].Attrs.LastCheckResult == nil {
			return fmt.Errorf("no check result yet")
		}
		if r := s[0].Attrs.LastCheckResult; r.ExitStatus != exit {
			return fmt.Errorf("exit status %v: %s", r.ExitStatus, r.Output)
		}
		return nil
	})
}

func TestIcinga2Failures(t *testing.T) {
	ic := harness.StartIcinga2(t)
	d := newIcingaDriver(t, ic, ic.Password)
	a := supervision.NewActivities(d, harness.Logger(t))
	in := supervision.WatchInput{Tenant: "beta", Stage: "test", URL: "https://beta.example.test/healthz"}

	t.Run("wrong password", func(t *testing.T) {
		badDriver := newIcingaDriver(t, ic, "wrong-password")
		bad := supervision.NewActivities(badDriver, harness.Logger(t))
		err := bad.StartSupervision(ctx(t), in)
		requireAppError(t, err, supervision.ErrUnauthorized)
		require.NotContains(t, err.Error(), "wrong-password")
		requireAppError(t, badDriver.Check(ctx(t)), supervision.ErrUnauthorized)
		require.Empty(t, objects(t, ic, "hosts/tenantflow-beta"))
	})

	t.Run("host not ours", func(t *testing.T) {
		status, body, err := ic.Do(http.MethodPut, "/v1/objects/hosts/tenantflow-gamma",
			map[string]any{"attrs": map[string]any{"check_command": "dummy", "vars.owner": "ops"}})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status, "%s", body)
		err = a.StartSupervision(ctx(t), supervision.WatchInput{Tenant: "gamma", URL: "http://gamma.example.test/"})
		requireAppError(t, err, supervision.ErrConflict)
		h := objects(t, ic, "hosts/tenantflow-gamma?attrs=vars")
		require.Len(t, h, 1)
		require.Equal(t, map[string]any{"owner": "ops"}, h[0].Attrs.Vars, "a foreign host must be left alone")
		require.Empty(t, objects(t, ic, "services/tenantflow-gamma!http"))
		// Removing the tenant does not remove someone else's host either.
		require.NoError(t, a.StopSupervision(ctx(t), supervision.WatchRef{Tenant: "gamma"}))
		require.Len(t, objects(t, ic, "hosts/tenantflow-gamma"), 1)
	})

	t.Run("outage", func(t *testing.T) {
		ic.Process.Stop()
		harness.RequireRetryable(t, a.StartSupervision(ctx(t), in))
		harness.RequireRetryable(t, d.Check(ctx(t)))
		ic.Process.Start()
		ic.WaitReady(t)
		require.NoError(t, a.StartSupervision(ctx(t), in))
		hosts := objects(t, ic, "hosts/tenantflow-beta?attrs=vars")
		require.Len(t, hosts, 1)
		require.Equal(t, "beta", hosts[0].Attrs.Vars["tenant"])
		svcs := objects(t, ic, "services/tenantflow-beta!http?attrs=vars")
		require.Len(t, svcs, 1)
		require.Equal(t, true, svcs[0].Attrs.Vars["http_ssl"])
		require.Equal(t, float64(443), svcs[0].Attrs.Vars["http_port"])
		require.Equal(t, "beta.example.test", svcs[0].Attrs.Vars["http_vhost"])
	})
}
