package docker_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/runtimes/runtimetest"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/internal/demoimage"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// The Docker driver keeps the runtime contract: the default template's
// demo app on the local engine.
func TestConformance(t *testing.T) {
	d := harness.Docker(t)
	harness.DemoImage(t, d, demoimage.Tag, "v1")
	runtimetest.Run(t, runtimetest.Runtime{
		Driver:      func(*testing.T) runtimes.Driver { return d },
		Environment: defaultEnv,
		Candidate: func(t *testing.T, svc spec.Service, gen int, healthy bool) spec.Service {
			if healthy {
				svc.Image = harness.DemoImage(t, d, releaseV2Tag, "v2")
			} else {
				svc.Image = harness.DemoImageUnhealthy(t, d, releaseUnhealthyTag, "v2-bad")
			}
			svc.Generation = gen
			return svc
		},
		Inventory: func(ctx context.Context, tenant string) (runtimetest.Inventory, error) {
			return inventory(ctx, d, tenant)
		},
		StoppedState: "exited",
		NoGeneration: docker.ErrNoInstanceToKeep,
		// The app answers on the published port and reaches its db on the
		// tenant network with the generated password.
		Fresh: func(t *testing.T, ep runtimes.Endpoint) {
			require.Equal(t, "1", callOK(t, http.MethodPost, ep.URL+"/hits"))
			require.Equal(t, "v1", callOK(t, http.MethodGet, ep.URL+"/version"))
		},
		Serves: func(t *testing.T, ep runtimes.Endpoint) { callOK(t, http.MethodGet, ep.URL+"/healthz") },
		// The app counts hits in its data volume and mirrors them into the
		// db's volume.
		Data: &runtimetest.Data{
			Put: func(t *testing.T, ep runtimes.Endpoint) string {
				callOK(t, http.MethodPost, ep.URL+"/hits")
				hits, dbHits := appState(t, ep.URL)
				require.Equal(t, strconv.Itoa(hits), dbHits)
				return fmt.Sprintf("hits %d, db %s", hits, dbHits)
			},
			Get: func(t *testing.T, ep runtimes.Endpoint) string {
				hits, dbHits := appState(t, ep.URL)
				return fmt.Sprintf("hits %d, db %s", hits, dbHits)
			},
		},
	})
}

// inventory lists the engine's objects labelled as the tenant's.
func inventory(ctx context.Context, d *docker.Driver, tenant string) (runtimetest.Inventory, error) {
	inv := runtimetest.Inventory{Networks: map[string]string{}, Volumes: map[string]string{}}
	f := filters.NewArgs(filters.Arg("label", docker.LabelTenant+"="+tenant))
	cs, err := d.Client().ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return inv, err
	}
	for _, c := range cs {
		gen := 0
		if g, ok := c.Labels[docker.LabelGeneration]; ok {
			if gen, err = strconv.Atoi(g); err != nil {
				return inv, fmt.Errorf("container %s: generation %q: %w", c.ID, g, err)
			}
		}
		inv.Instances = append(inv.Instances, runtimetest.Instance{Service: c.Labels[docker.LabelService], Generation: gen,
			ID: c.ID, State: c.State, Serving: c.State == container.StateRunning})
	}
	vs, err := d.Client().VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return inv, err
	}
	for _, v := range vs.Volumes {
		name := v.Labels[docker.LabelVolume]
		if name == "" {
			name = v.Name
		}
		// A Docker volume has no id, and its CreatedAt moves when a first
		// mount copies the image's content in: the name is all there is,
		// and the Data probe tells a volume that kept its data.
		inv.Volumes[name] = v.Name
	}
	ns, err := d.Client().NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return inv, err
	}
	for _, n := range ns {
		inv.Networks[n.Name] = n.ID
	}
	return inv, nil
}
