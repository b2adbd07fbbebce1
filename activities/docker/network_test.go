package docker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/network"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"

	"github.com/tenantflow/tenantflow/activities/docker"
	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// The engine's default address pools hold about 31 bridge networks: a
// host that let the engine pick each tenant's subnet refused its 32nd
// tenant. Tenant subnets come from Tenantflow's own pool, so 48 tenants
// created at once all get a network, each on a subnet of its own.
func TestTenantNetworksBeyondTheEngineDefaultPools(t *testing.T) {
	d := harness.Docker(t)
	ctx := context.Background()
	const n = 48
	tenants := make([]string, n)
	for i := range tenants {
		tenants[i] = fmt.Sprintf("tfnet%02d-%s", i, harness.UniqueSuffix())
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
	d := harness.DockerWith(t, docker.Config{SubnetPool: "10.251.7.0/28", SubnetBits: 29})
	ctx := context.Background()
	sfx := harness.UniqueSuffix()
	a, b, c := "tffull-a-"+sfx, "tffull-b-"+sfx, "tffull-c-"+sfx
	t.Cleanup(func() {
		for _, tn := range []string{a, b, c} {
			_ = d.RemoveNetwork(context.Background(), tn, "")
		}
	})
	require.NoError(t, d.CreateNetwork(ctx, a, "run-a"))
	require.NoError(t, d.CreateNetwork(ctx, b, "run-b"))
	err := d.CreateNetwork(ctx, c, "run-c")
	harness.RequireNonRetryable(t, err, docker.ErrHostFull)
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

// The engine holds the subnet of a network it is still creating (or
// removing) before its list shows the network. A tenant that picked that
// subnet must take another on the next attempt: picking the same one
// again, five times in a row, failed a tenant while other tenants' networks
// were being set up on a busy engine.
func TestSubnetHeldButNotYetListedIsNotRetried(t *testing.T) {
	base := harness.Docker(t)
	proxy := hidingProxy(t, base.Client().DaemonHost(), "tenantflow.test/hidden")
	d := harness.DockerWith(t, docker.Config{Host: proxy, SubnetPool: "10.252.9.0/27", SubnetBits: 29})
	ctx := context.Background()
	tenant := "tfheld-" + harness.UniqueSuffix()
	t.Cleanup(func() { _ = base.RemoveNetwork(context.Background(), tenant, "") })

	held := d.FirstSubnetChoice(tenant)
	blocker := "tf-test-held-" + harness.UniqueSuffix()
	_, err := base.Client().NetworkCreate(ctx, blocker, network.CreateOptions{
		Driver: "bridge",
		Labels: map[string]string{"tenantflow.test/hidden": "1"},
		IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: held.String()}}},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = base.Client().NetworkRemove(context.Background(), blocker) })

	require.NoError(t, d.CreateNetwork(ctx, tenant, "run-1"))
	nw, err := base.Client().NetworkInspect(ctx, docker.NetworkName(tenant), network.InspectOptions{})
	require.NoError(t, err)
	got := netip.MustParsePrefix(nw.IPAM.Config[0].Subnet)
	require.False(t, got.Overlaps(held), "took the held subnet %s", held)

	// With every other subnet held too, the host is not full: those
	// networks may be going away. The error is a retryable one.
	for _, s := range []string{"10.252.9.0/29", "10.252.9.8/29", "10.252.9.16/29", "10.252.9.24/29"} {
		p := netip.MustParsePrefix(s)
		if p.Overlaps(held) || p.Overlaps(got) {
			continue
		}
		name := "tf-test-held-" + harness.UniqueSuffix()
		_, err := base.Client().NetworkCreate(ctx, name, network.CreateOptions{
			Driver: "bridge",
			Labels: map[string]string{"tenantflow.test/hidden": "1"},
			IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: s}}},
		})
		require.NoError(t, err)
		t.Cleanup(func() { _ = base.Client().NetworkRemove(context.Background(), name) })
	}
	other := "tfheld2-" + harness.UniqueSuffix()
	t.Cleanup(func() { _ = base.RemoveNetwork(context.Background(), other, "") })
	err = d.CreateNetwork(ctx, other, "run-2")
	require.ErrorContains(t, err, "refused every free subnet")
	var appErr *temporal.ApplicationError
	require.False(t, errors.As(err, &appErr), "a held subnet is no full host: %v", err)
}

// hidingProxy serves the engine at daemonHost on a loopback TCP address,
// leaving out of network lists every network carrying label: to the
// driver behind it those networks are not there yet.
func hidingProxy(t *testing.T, daemonHost, label string) string {
	t.Helper()
	sock := strings.TrimPrefix(daemonHost, "unix://")
	if sock == daemonHost {
		t.Skipf("the hiding proxy needs a unix socket engine, not %s", daemonHost)
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker"
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.Method != http.MethodGet || !strings.HasSuffix(resp.Request.URL.Path, "/networks") {
				return nil
			}
			var nets []map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&nets); err != nil {
				return err
			}
			resp.Body.Close()
			shown := nets[:0]
			for _, n := range nets {
				if labels, _ := n["Labels"].(map[string]any); labels[label] == nil {
					shown = append(shown, n)
				}
			}
			body, err := json.Marshal(shown)
			if err != nil {
				return err
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
			resp.ContentLength = int64(len(body))
			resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
			return nil
		},
	}
	srv := httptest.NewServer(rp)
	t.Cleanup(srv.Close)
	return "tcp://" + srv.Listener.Addr().String()
}
