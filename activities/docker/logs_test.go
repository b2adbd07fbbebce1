package docker_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
)

// A tenant's logs are its own containers' lines, in time order, by
// service and generation; a tenant whose name begins with another's sees
// none of the other's. Follow streams what comes until the container
// stops.
func TestLogsAreTheTenantsOwn(t *testing.T) {
	d, tenant := demoTenant(t, "logs")
	other := tenant + "x"
	t.Cleanup(func() { destroy(t, d, other) })
	provision(t, d, defaultEnv(t, tenant))
	provision(t, d, defaultEnv(t, other))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	read := func(in runtimes.LogsInput) []runtimes.LogLine {
		t.Helper()
		var got []runtimes.LogLine
		require.NoError(t, d.Logs(ctx, in, func(l runtimes.LogLine) error { got = append(got, l); return nil }))
		return got
	}
	all := read(runtimes.LogsInput{Tenant: tenant, Owner: "run-1"})
	require.NotEmpty(t, all)
	services := map[string]bool{}
	for i, l := range all {
		services[l.Service] = true
		require.Equal(t, "stderr", l.Stream, "the demo app logs JSON on stderr")
		require.False(t, l.Time.IsZero())
		if i > 0 {
			require.False(t, l.Time.Before(all[i-1].Time), "in time order")
		}
	}
	require.Equal(t, map[string]bool{"app": true, "db": true}, services)
	require.Contains(t, all[0].Line, `"msg":"listening"`)
	listening := 0
	for _, l := range all {
		if strings.Contains(l.Line, `"msg":"listening"`) {
			listening++
		}
	}
	require.Equal(t, 2, listening, "one start per service of this tenant, none of %s's", other)

	require.Len(t, read(runtimes.LogsInput{Tenant: tenant, Owner: "run-1", Tail: 1}), 1)
	for _, l := range read(runtimes.LogsInput{Tenant: tenant, Owner: "run-1", Service: "db"}) {
		require.Equal(t, "db", l.Service)
	}
	require.Empty(t, read(runtimes.LogsInput{Tenant: tenant, Owner: "another-run"}), "another provisioning's containers are not this tenant's")
	require.Empty(t, read(runtimes.LogsInput{Tenant: tenant, Owner: "run-1", Since: time.Now().Add(time.Hour)}))

	// Follow: the app's lines as it writes them, until it stops.
	since := time.Now()
	lines := make(chan runtimes.LogLine, 16)
	done := make(chan error, 1)
	go func() {
		done <- d.Logs(ctx, runtimes.LogsInput{Tenant: tenant, Owner: "run-1", Service: "app", Since: since, Follow: true},
			func(l runtimes.LogLine) error { lines <- l; return nil })
	}()
	time.Sleep(500 * time.Millisecond) // the stream is open
	require.NoError(t, d.StopServices(ctx, runtimes.StopInput{Tenant: tenant, Owner: "run-1", Services: []string{"app"}, StopTimeout: spec.Duration(5 * time.Second)}))
	select {
	case l := <-lines:
		require.True(t, strings.Contains(l.Line, `"msg":"stopping"`), l.Line)
		require.Equal(t, "app", l.Service)
	case <-ctx.Done():
		t.Fatal("no line followed")
	}
	require.NoError(t, <-done, "the stream ends with the container")
}
