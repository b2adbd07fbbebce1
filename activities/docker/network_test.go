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
	"sync"
	"testing"
	"time"

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

// A busy engine takes longer to create a network than an activity attempt
// lasts, and makes it after the attempt gave up; its list does not show
// the network meanwhile, and its duplicate-name check is not atomic. A
// retry then made a second network of the same name (200 tenants
// requested at once left up to six each). The retry waits for the
// create its attempt started instead: one network.
func TestRetryWaitsForTheEnginesSlowCreate(t *testing.T) {
	base := harness.Docker(t)
	const slow = 2 * time.Second
	proxy := slowCreateProxy(t, base.Client().DaemonHost(), slow)
	d := harness.DockerWith(t, docker.Config{Host: proxy, SubnetPool: "10.252.10.0/26", SubnetBits: 29})
	tenant := "tfslow-" + harness.UniqueSuffix()
	t.Cleanup(func() { _ = base.RemoveNetwork(context.Background(), tenant, "") })

	attempt, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, d.CreateNetwork(attempt, tenant, "run-1"), context.DeadlineExceeded, "the attempt times out")
	require.NoError(t, d.CreateNetwork(context.Background(), tenant, "run-1"), "the retry")
	require.Len(t, tenantNetworks(t, base, tenant), 1)
}

// Networks of one name left by creates that raced (another worker, or a
// driver from before the wait) are settled: the oldest is kept, the
// others removed, so containers can join the network by its name.
func TestDuplicateTenantNetworksAreSettled(t *testing.T) {
	base := harness.Docker(t)
	proxy := slowCreateProxy(t, base.Client().DaemonHost(), 0) // lets duplicates through
	raw := harness.DockerWith(t, docker.Config{Host: proxy})
	tenant := "tfdup-" + harness.UniqueSuffix()
	t.Cleanup(func() { _ = base.RemoveNetwork(context.Background(), tenant, "") })
	ctx := context.Background()
	var ids []string
	for i, subnet := range []string{"10.252.11.0/29", "10.252.11.8/29"} {
		resp, err := raw.Client().NetworkCreate(ctx, docker.NetworkName(tenant), network.CreateOptions{
			Driver: "bridge",
			Labels: map[string]string{docker.LabelManaged: "true", docker.LabelTenant: tenant, docker.LabelOwner: "run-1"},
			IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: subnet}}},
		})
		require.NoError(t, err, "network %d", i)
		ids = append(ids, resp.ID)
		time.Sleep(10 * time.Millisecond) // distinct creation times
	}
	require.Len(t, tenantNetworks(t, base, tenant), 2)

	require.NoError(t, base.CreateNetwork(ctx, tenant, "run-1"))
	left := tenantNetworks(t, base, tenant)
	require.Len(t, left, 1)
	require.Equal(t, ids[0], left[0].ID, "the oldest is kept")

	// Another provisioning's duplicates are not removed: refused.
	_, err := raw.Client().NetworkCreate(ctx, docker.NetworkName(tenant), network.CreateOptions{
		Driver: "bridge",
		Labels: map[string]string{docker.LabelManaged: "true", docker.LabelTenant: tenant, docker.LabelOwner: "run-2"},
		IPAM:   &network.IPAM{Config: []network.IPAMConfig{{Subnet: "10.252.11.16/29"}}},
	})
	require.NoError(t, err)
	require.NoError(t, base.CreateNetwork(ctx, tenant, "run-1"), "the oldest is run-1's")
	require.Len(t, tenantNetworks(t, base, tenant), 2, "run-2's network is not run-1's to remove")
}

// tenantNetworks lists the engine's networks of the tenant's name.
func tenantNetworks(t *testing.T, d *docker.Driver, tenant string) []network.Summary {
	t.Helper()
	nets, err := d.Client().NetworkList(context.Background(), network.ListOptions{})
	require.NoError(t, err)
	var out []network.Summary
	for _, n := range nets {
		if n.Name == docker.NetworkName(tenant) {
			out = append(out, n)
		}
	}
	return out
}

// slowCreateProxy serves the engine at daemonHost on a loopback TCP
// address as a busy engine behaves: a network create is answered only
// after slow, runs to its end even when the client gave up, and its
// network is not listed until then; the duplicate-name check is left to
// chance (CheckDuplicate is dropped, as a create not yet committed does
// not count in it).
func slowCreateProxy(t *testing.T, daemonHost string, slow time.Duration) string {
	t.Helper()
	sock := strings.TrimPrefix(daemonHost, "unix://")
	if sock == daemonHost {
		t.Skipf("the slow proxy needs a unix socket engine, not %s", daemonHost)
	}
	engine := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	var mu sync.Mutex
	creating := map[string]time.Time{} // network name → when its create answers
	forward := func(w http.ResponseWriter, r *http.Request, body []byte) (*http.Response, error) {
		req, err := http.NewRequestWithContext(context.WithoutCancel(r.Context()), r.Method, "http://docker"+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header = r.Header.Clone()
		req.ContentLength = int64(len(body))
		return engine.Do(req)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		create := r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/networks/create")
		until, name := time.Now().Add(slow), ""
		if create {
			var req map[string]any
			if err := json.Unmarshal(body, &req); err == nil {
				delete(req, "CheckDuplicate")
				body, _ = json.Marshal(req)
				name = fmt.Sprint(req["Name"])
			}
		}
		resp, err := forward(w, r, body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if create && resp.StatusCode == http.StatusCreated {
			// Made, but not listed or answered until the create ends;
			// a refused create is answered at once.
			mu.Lock()
			creating[name] = until
			mu.Unlock()
			time.Sleep(time.Until(until))
		}
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/networks") {
			var nets []map[string]any
			if err := json.Unmarshal(out, &nets); err == nil {
				shown := nets[:0]
				mu.Lock()
				for _, n := range nets {
					if time.Now().Before(creating[fmt.Sprint(n["Name"])]) {
						continue
					}
					shown = append(shown, n)
				}
				mu.Unlock()
				out, _ = json.Marshal(shown)
			}
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(out)))
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return "tcp://" + srv.Listener.Addr().String()
}
