package docker

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
	"go.temporal.io/sdk/temporal"
)

// ErrHostFull is the failure type of a Docker host without room for another
// tenant (its tenant subnet pool is used up). A retry cannot fix it; ops
// must widen the pool or place the tenant elsewhere.
const ErrHostFull = "HostFull"

// Defaults of the tenant subnet pool. The engine's own default pools
// (172.17.0.0/16 … 172.31.0.0/16 and 192.168.0.0/16 in /20s) hold about 31
// bridge networks, so an engine that picks each tenant's subnet itself
// refuses its 32nd tenant. A /28 per tenant (13 addresses for its
// containers and release candidates) from a /16 makes room for 4,096.
const (
	DefaultSubnetPool = "10.200.0.0/16"
	DefaultSubnetBits = 28
	// LabelSubnet records the subnet a tenant network was given.
	LabelSubnet = "tenantflow.subnet"
)

// subnetPool hands out equal, non-overlapping subnets of a prefix.
type subnetPool struct {
	pool netip.Prefix
	bits int
}

func parseSubnetPool(pool string, bits int) (subnetPool, error) {
	p, err := netip.ParsePrefix(pool)
	if err != nil {
		return subnetPool{}, fmt.Errorf("subnet pool %q is not a CIDR prefix: %w", pool, err)
	}
	if !p.Addr().Is4() {
		return subnetPool{}, fmt.Errorf("subnet pool %s must be IPv4", p)
	}
	if p.Masked() != p {
		return subnetPool{}, fmt.Errorf("subnet pool %s has host bits set (did you mean %s?)", p, p.Masked())
	}
	if bits < p.Bits() || bits > 29 {
		return subnetPool{}, fmt.Errorf("subnet size /%d must be between the pool's /%d and /29", bits, p.Bits())
	}
	if bits-p.Bits() > 24 {
		return subnetPool{}, fmt.Errorf("subnet pool %s split into /%d is too many subnets", p, bits)
	}
	return subnetPool{pool: p, bits: bits}, nil
}

// size is the number of tenant subnets in the pool: the host's capacity.
func (sp subnetPool) size() int { return 1 << (sp.bits - sp.pool.Bits()) }

// base is the pool's first address, shift what an address offset is
// shifted by to give its subnet's index.
func (sp subnetPool) base() uint32 { return binary.BigEndian.Uint32(sp.pool.Addr().AsSlice()) }
func (sp subnetPool) shift() int   { return 32 - sp.bits }

// at is the i-th subnet of the pool.
func (sp subnetPool) at(i int) netip.Prefix {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], sp.base()+uint32(i)<<sp.shift())
	return netip.PrefixFrom(netip.AddrFrom4(b), sp.bits)
}

// taken marks the pool's subnets that any of used overlaps, in one pass
// over the engine's networks whatever the pool's size.
func (sp subnetPool) taken(used []netip.Prefix) []bool {
	out := make([]bool, sp.size())
	last := sp.base() + uint32(sp.size())<<sp.shift() - 1
	for _, u := range used {
		if !u.Overlaps(sp.pool) {
			continue
		}
		first := binary.BigEndian.Uint32(u.Addr().AsSlice())
		end := first + (uint32(1)<<(32-u.Bits()) - 1)
		lo, hi := max(first, sp.base()), min(end, last)
		for i := (lo - sp.base()) >> sp.shift(); i <= (hi-sp.base())>>sp.shift(); i++ {
			out[i] = true
		}
	}
	return out
}

// free is the first subnet not taken, from a start derived from the
// tenant's name, so tenants created together rarely race for the same one.
func (sp subnetPool) free(tenant string, taken []bool) (netip.Prefix, bool) {
	h := fnv.New32a()
	h.Write([]byte(tenant))
	n := len(taken)
	start := int(h.Sum32() % uint32(n))
	for k := range n {
		if i := (start + k) % n; !taken[i] {
			return sp.at(i), true
		}
	}
	return netip.Prefix{}, false
}

// gateway is the subnet's first host address.
func gateway(p netip.Prefix) netip.Addr { return p.Addr().Next() }

// CreateNetwork makes the tenant's bridge network unless it exists, on a
// subnet of the tenant pool that no network of the engine overlaps. Two
// tenants created together may pick the same subnet, and the engine also
// holds the subnet of a network still being created or removed, which its
// list does not show yet: the engine refuses it, and the next attempt
// takes another free subnet, never one refused before. A pool with no
// free subnet is a non-retryable ErrHostFull.
func (d *Driver) CreateNetwork(ctx context.Context, tenant, owner string) error {
	d.admit.renew(tenant, admissionLease)
	name := NetworkName(tenant)
	var refused []netip.Prefix
	for attempt := 0; attempt < createNetworkAttempts; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt) * 10 * time.Millisecond):
			}
		}
		// A create an earlier attempt started may still be running in
		// the engine: its network is not listed until it is done.
		if err := d.networkCreated(ctx, name); err != nil {
			return err
		}
		nets, err := d.cli.NetworkList(ctx, network.ListOptions{})
		if err != nil {
			return fmt.Errorf("list networks: %w", err)
		}
		used := slices.Clone(refused)
		var same []network.Summary
		for _, n := range nets {
			if n.Name == name {
				same = append(same, n)
			}
			used = append(used, subnetsOf(n)...)
		}
		if len(same) > 0 {
			return d.keepOneNetwork(ctx, tenant, owner, same)
		}
		subnet, ok := d.subnets.free(tenant, d.subnets.taken(used))
		if !ok && len(refused) > 0 {
			return fmt.Errorf("create network %s: the engine refused every free subnet of %s (%d refused, held by networks being created or removed); retry",
				name, d.subnets.pool, len(refused))
		}
		if !ok {
			msg := fmt.Sprintf("Docker host %s is full: all %d tenant subnets /%d of %s are in use (widen %s or place the tenant on another host)",
				d.cli.DaemonHost(), d.subnets.size(), d.subnets.bits, d.subnets.pool, EnvSubnetPool)
			return temporal.NewNonRetryableApplicationError(msg, ErrHostFull, nil)
		}
		labels := ownedLabels(tenant, owner)
		labels[LabelSubnet] = subnet.String()
		err = d.createNetwork(ctx, name, network.CreateOptions{
			Driver: "bridge",
			Labels: labels,
			IPAM: &network.IPAM{Config: []network.IPAMConfig{{
				Subnet: subnet.String(), Gateway: gateway(subnet).String(),
			}}},
		})
		switch {
		case err == nil:
			d.log.InfoContext(ctx, "network ready", "tenant", tenant, "network", name, "subnet", subnet.String())
			return nil
		case overlaps(err):
			// Another network holds the subnet, listed or not yet.
			refused = append(refused, subnet)
		case cerrdefs.IsConflict(err):
			// A retry of ours made the network meanwhile: look again.
		default:
			return fmt.Errorf("create network %s on %s: %w", name, subnet, err)
		}
	}
	return fmt.Errorf("create network %s: %d subnets were refused while other networks were being created; retry", name, len(refused))
}

// createNetworkAttempts bounds one CreateNetwork's tries; each takes a
// subnet not refused before.
const createNetworkAttempts = 16

// networkCreateTimeout bounds a network create in the engine, whatever
// the attempt that started it: a busy engine queues creates for minutes
// (200 tenants requested at once).
const networkCreateTimeout = 10 * time.Minute

// createNetwork asks the engine for the network, once at a time per name
// in this process, and lets the create run to its end even when ctx (the
// activity attempt) ends first. An engine that takes longer than an
// attempt's timeout still makes the network after the attempt gave up;
// had the retry created its own meanwhile (the list does not show a
// network being created, and the engine's duplicate-name check is not
// atomic), the tenant would hold two networks of one name: 200 tenants
// requested at once left up to six each, and containers could no longer
// join "their" network. The retry waits for it instead (networkCreated).
func (d *Driver) createNetwork(ctx context.Context, name string, opts network.CreateOptions) error {
	d.netMu.Lock()
	if d.netCreates == nil {
		d.netCreates = map[string]chan struct{}{}
	}
	if _, busy := d.netCreates[name]; busy {
		d.netMu.Unlock()
		return errNetworkBeingCreated
	}
	done := make(chan struct{})
	d.netCreates[name] = done
	d.netMu.Unlock()
	result := make(chan error, 1)
	go func() {
		defer func() {
			d.netMu.Lock()
			delete(d.netCreates, name)
			d.netMu.Unlock()
			close(done)
		}()
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), networkCreateTimeout)
		defer cancel()
		_, err := d.cli.NetworkCreate(cctx, name, opts)
		result <- err
	}()
	select {
	case err := <-result:
		return err
	case <-ctx.Done():
		return fmt.Errorf("create network %s: still running in the engine: %w", name, ctx.Err())
	}
}

// errNetworkBeingCreated: another call of this process is creating the
// network; look again once it is done.
var errNetworkBeingCreated = cerrdefs.ErrConflict.WithMessage("network being created by another attempt")

// networkCreated waits until no create of the network runs in this
// process.
func (d *Driver) networkCreated(ctx context.Context, name string) error {
	d.netMu.Lock()
	done, busy := d.netCreates[name]
	d.netMu.Unlock()
	if !busy {
		return nil
	}
	d.log.InfoContext(ctx, "waiting for the engine to finish creating the network", "network", name)
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("network %s: an earlier attempt's create still runs in the engine: %w", name, ctx.Err())
	}
}

// keepOneNetwork settles the networks named for the tenant: one is the
// tenant's network; more are the trace of creates that raced (another
// worker process, or an engine from before createNetwork waited). The
// oldest is kept, every engine and worker agreeing on which, and the
// others, when they are this provisioning's and empty, are removed so
// containers can join the network by name. A network of another owner
// is refused as before.
func (d *Driver) keepOneNetwork(ctx context.Context, tenant, owner string, same []network.Summary) error {
	slices.SortFunc(same, func(a, b network.Summary) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if err := checkOwner("network", same[0].Name, tenant, owner, same[0].Labels); err != nil {
		return err
	}
	for _, n := range same[1:] {
		if checkOwner("network", n.Name, tenant, owner, n.Labels) != nil {
			continue // not ours to remove
		}
		err := d.cli.NetworkRemove(ctx, n.ID)
		if err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("remove duplicate network %s (%s): %w", n.Name, n.ID, err)
		}
		d.log.WarnContext(ctx, "removed a duplicate tenant network", "tenant", tenant, "network", n.Name, "id", n.ID, "kept", same[0].ID)
	}
	return nil
}

// subnetsOf lists the IPv4 subnets a network holds.
func subnetsOf(n network.Summary) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range n.IPAM.Config {
		if p, err := netip.ParsePrefix(c.Subnet); err == nil && p.Addr().Is4() {
			out = append(out, p.Masked())
		}
	}
	return out
}

// overlaps tells the engine's refusal of a subnet that another network
// holds ("Pool overlaps with other one on this address space").
func overlaps(err error) bool {
	return strings.Contains(err.Error(), "overlaps")
}

// SubnetUsage reports how many tenant subnets of the pool are in use and
// how many the pool holds: the host's tenant capacity.
func (d *Driver) SubnetUsage(ctx context.Context) (used, capacity int, err error) {
	nets, err := d.cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		return 0, 0, fmt.Errorf("list networks: %w", err)
	}
	var prefixes []netip.Prefix
	for _, n := range nets {
		prefixes = append(prefixes, subnetsOf(n)...)
	}
	for _, t := range d.subnets.taken(prefixes) {
		if t {
			used++
		}
	}
	return used, d.subnets.size(), nil
}
