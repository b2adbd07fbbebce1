package docker_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// With shipping on, every tenant container's output reaches a real syslog
// receiver (rsyslog) tagged with its tenant, service and generation, and
// two tenants' lines never carry each other's tag; the engine still keeps
// the lines the logs route reads.
func TestLogsAreShippedTaggedByTenant(t *testing.T) {
	rs := harness.StartRsyslog(t)
	d := harness.DockerWith(t, docker.Config{Ship: docker.Shipping{Address: "udp://" + rs.Addr}})
	_, tenant := demoTenant(t, "ship")
	other := tenant + "x"
	t.Cleanup(func() { destroy(t, d, other) })
	provision(t, d, defaultEnv(t, tenant))
	provision(t, d, defaultEnv(t, other))

	for _, tc := range []struct{ tenant, service string }{{tenant, "app"}, {tenant, "db"}, {other, "app"}} {
		tag := tc.tenant + "/" + tc.service + "/0"
		harness.WaitFor(t, "shipped lines of "+tag, 30*time.Second, func() error {
			for _, l := range rs.Lines(tag) {
				if strings.Contains(l, `"msg":"listening"`) {
					return nil
				}
			}
			return fmt.Errorf("none yet; received:\n%s", rs.Received())
		})
	}
	for _, l := range rs.Lines(tenant + "/app/0") {
		require.NotContains(t, l, other, "another tenant's line under this tag")
	}
	var local []runtimes.LogLine
	require.NoError(t, d.Logs(context.Background(), runtimes.LogsInput{Tenant: tenant, Owner: "run-1", Service: "app"},
		func(l runtimes.LogLine) error { local = append(local, l); return nil }))
	require.NotEmpty(t, local, "the engine keeps its copy: the logs route still reads them")
}

func TestShippingSettingsAreChecked(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:514":        "udp://host:port",
		"udp://127.0.0.1":      "udp://host:port",
		"tcp://:514":           "tcp://host:port",
		"http://127.0.0.1:514": "scheme",
		"unix://":              "unix:///path",
	} {
		err := docker.Config{Ship: docker.Shipping{Address: addr}}.Validate()
		require.ErrorContains(t, err, want, addr)
		require.ErrorContains(t, err, docker.EnvShipAddress)
	}
	require.ErrorContains(t, docker.Config{Ship: docker.Shipping{Address: "udp://127.0.0.1:514", Format: "json"}}.Validate(), docker.EnvShipFormat)
	require.ErrorContains(t, docker.Config{Ship: docker.Shipping{Address: "udp://127.0.0.1:514", Facility: "local9"}}.Validate(), docker.EnvShipFacility)
	require.NoError(t, docker.Config{Ship: docker.Shipping{Address: "tcp+tls://logs.example.com:6514", Format: "rfc3164", Facility: "local0"}}.Validate())
}
