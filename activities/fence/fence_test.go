package fence

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	dockerclient "github.com/docker/docker/client"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/workflows/hosts"
)

// registry answers the hosts query with one host.
type registry struct {
	client.Client
	host hosts.Host
}

type value struct{ v any }

func (v value) HasValue() bool { return true }
func (v value) Get(p any) error {
	b, err := json.Marshal(v.v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, p)
}

func (r *registry) QueryWorkflow(context.Context, string, string, string, ...any) (converter.EncodedValue, error) {
	return value{[]hosts.Host{r.host}}, nil
}

// engine runs two containers: one of a tenant still placed on the host,
// one of a tenant evacuated since.
type engine struct {
	dockerclient.APIClient
	stopped []string
}

func (e *engine) ContainerList(context.Context, container.ListOptions) ([]container.Summary, error) {
	return []container.Summary{
		{ID: "c-stays", Names: []string{"/stays-app"}, Labels: map[string]string{docker.LabelTenant: "stays", docker.LabelOwner: "run-1"}},
		{ID: "c-gone", Names: []string{"/gone-app"}, Labels: map[string]string{docker.LabelTenant: "gone", docker.LabelOwner: "run-2"}},
		{ID: "c-old", Names: []string{"/stays-old"}, Labels: map[string]string{docker.LabelTenant: "stays", docker.LabelOwner: "run-0"}},
	}, nil
}

func (e *engine) ContainerStop(_ context.Context, id string, _ container.StopOptions) error {
	e.stopped = append(e.stopped, id)
	return nil
}

func (e *engine) Ping(context.Context) (types.Ping, error) { return types.Ping{}, nil }

func guard(state hosts.HostState) (*Guard, *engine) {
	e := &engine{}
	h := hosts.Host{HostSpec: hosts.HostSpec{Name: "host-a"}, State: state,
		Reservations: map[string]hosts.Reservation{"stays": {Tenant: "stays", Owner: "run-1"}}}
	return &Guard{Client: &registry{host: h}, Host: "host-a", Engine: e}, e
}

// A lost host's guard stops the containers of tenants (or runs) no
// longer placed on it and leaves the others; a host not lost is left
// alone entirely.
func TestALostHostStopsWhatWasPlacedElsewhere(t *testing.T) {
	g, e := guard(hosts.StateLost)
	require.NoError(t, g.Check(context.Background()))
	require.True(t, g.Lost())
	require.ElementsMatch(t, []string{"c-gone", "c-old"}, e.stopped)

	g, e = guard(hosts.StateCordoned)
	require.NoError(t, g.Check(context.Background()))
	require.False(t, g.Lost())
	require.Empty(t, e.stopped)
}

// While the host is lost its worker refuses every activity but the
// watch's ping.
func TestALostHostsWorkerRefusesWork(t *testing.T) {
	g, _ := guard(hosts.StateLost)
	require.NoError(t, g.Check(context.Background()))
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.SetWorkerOptions(worker.Options{Interceptors: []interceptor.WorkerInterceptor{g.Interceptor()}})
	env.RegisterActivityWithOptions(func(context.Context) error { return nil }, activity.RegisterOptions{Name: "StartService"})
	env.RegisterActivityWithOptions(g.PingHost, activity.RegisterOptions{Name: hosts.ActivityPingHost})
	_, err := env.ExecuteActivity("StartService")
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, ErrFenced, appErr.Type())
	require.True(t, appErr.NonRetryable())
	v, err := env.ExecuteActivity(hosts.ActivityPingHost)
	require.NoError(t, err)
	var pong hosts.PingResult
	require.NoError(t, v.Get(&pong))
	require.True(t, pong.Engine)
}
