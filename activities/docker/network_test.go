package docker_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/docker/docker/api/types/network"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/testsuite"
)

// The engine's default address pools hold about 31 bridge networks: a
// host that let the engine pick each tenant's subnet refused its 32nd
// tenant. Tenant subnets come from Tenantflow's own pool, so 48 tenants
// created at once all get a network, each on a subnet of its own.
func TestTenantNetworksBeyondTheEngineDefaultPools(t *testing.T) {
	d := testsuite.Docker(t)
	ctx := context.Background()
	const n = 48
	tenants := make([]string, n)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("tfnet%02d-%s", i, testsuite.UniqueSuffix())
	}
	t.Cleanup(func() {
		for _, tn := range tenants {
			_ = d.RemoveNetwork(context.Background(), tn, "")
		}
	})
	var g errgroup.Group
	g.SetLimit(16)
	for _, tn := range tenants {
		g.Go(func() error { return d.CreateNetwork(ctx, tn, "run-1") })
	}
	require.NoError(t, g.Wait())

	pool := netip.MustParsePrefix(docker.DefaultSubnetPool)
	seen := map[netip.Prefix]string{}
	for _, tn := range tenants {
		nw, err := d.Client().NetworkInspect(ctx, docker.NetworkName(tn), network.InspectOptions{})
		require.NoError(t, err)
		require.Len(t, nw.IPAM.Config, 1, tn)
		p := netip.MustParsePrefix(nw.IPAM.Config[0].Subnet)
		require.Equal(t, docker.DefaultSubnetBits, p.Bits(), tn)
		require.True(t, pool.Contains(p.Addr()), "%s: %s outside %s", tn, p, pool)
		require.Equal(t, p.String(), nw.Labels[docker.LabelSubnet])
		for q, other := range seen {
			require.False(t, q.Overlaps(p), "%s (%s) overlaps %s (%s)", tn, p, other, q)
		}
		seen[p] = tn
	}
	// A retry finds the network and makes no second one.
	require.NoError(t, d.CreateNetwork(ctx, tenants[0], "run-1"))
	used, capacity, err := d.SubnetUsage(ctx)
	require.NoError(t, err)
	require.GreaterOrEqual(t, used, n)
	require.Equal(t, 1<<(docker.DefaultSubnetBits-pool.Bits()), capacity)
}

// A host whose pool is used up refuses the next tenant at once, with an
// error that says so, instead of failing the same way on every retry.
func TestFullHostRefusesATenantAtOnce(t *testing.T) {
	d := testsuite.DockerWith(t, docker.Config{SubnetPool: "10.251.7.0/28", SubnetBits: 29})
	ctx := context.Background()
	sfx := testsuite.UniqueSuffix()
	a, b, c := "tffull-a-"+sfx, "tffull-b-"+sfx, "tffull-c-"+sfx
	t.Cleanup(func() {
		for _, tn := range []string{a, b, c} {
			_ = d.RemoveNetwork(context.Background(), tn, "")
		}
	})
	require.NoError(t, d.CreateNetwork(ctx, a, "run-a"))
	require.NoError(t, d.CreateNetwork(ctx, b, "run-b"))
	err := d.CreateNetwork(ctx, c, "run-c")
	testsuite.RequireNonRetryable(t, err, docker.ErrHostFull)
	require.ErrorContains(t, err, "10.251.7.0/28")
	require.ErrorContains(t, err, docker.EnvSubnetPool)

	// Room again once a tenant leaves.
	require.NoError(t, d.RemoveNetwork(ctx, a, "run-a"))
	require.NoError(t, d.CreateNetwork(ctx, c, "run-c"))
}

func TestSubnetPoolSettingsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		cfg  docker.Config
		want string
	}{
		{docker.Config{SubnetPool: "10.0.0.0"}, "not a CIDR prefix"},
		{docker.Config{SubnetPool: "10.0.0.1/16"}, "host bits set"},
		{docker.Config{SubnetPool: "fd00::/64"}, "IPv4"},
		{docker.Config{SubnetPool: "10.0.0.0/24", SubnetBits: 20}, "between"},
		{docker.Config{SubnetPool: "10.0.0.0/24", SubnetBits: 30}, "between"},
		{docker.Config{SubnetPool: "0.0.0.0/4", SubnetBits: 29}, "too many"},
	} {
		err := tc.cfg.Validate()
		require.ErrorContains(t, err, tc.want, "%+v", tc.cfg)
		require.ErrorContains(t, err, docker.EnvSubnetPool)
	}
	require.NoError(t, docker.Config{}.Validate())
}
