package docker

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/network"
	"go.temporal.io/sdk/temporal"
)

// ErrHostFull: the Docker host has no room for another tenant (its tenant
// subnet pool is used up). A retry cannot fix it; ops must widen the pool
// or place the tenant elsewhere.
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

// at is the i-th subnet of the pool.
func (sp subnetPool) at(i int) netip.Prefix {
	base := binary.BigEndian.Uint32(sp.pool.Addr().AsSlice())
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], base+uint32(i)<<(32-sp.bits))
	return netip.PrefixFrom(netip.AddrFrom4(b), sp.bits)
}

// candidates lists the pool's subnets in the order a tenant tries them:
// from a start derived from its name, so tenants created together rarely
// race for the same subnet.
func (sp subnetPool) candidates(tenant string) []netip.Prefix {
	h := fnv.New32a()
	h.Write([]byte(tenant))
	n := sp.size()
	start := int(h.Sum32() % uint32(n))
	out := make([]netip.Prefix, 0, n)
	for i := range n {
		out = append(out, sp.at((start+i)%n))
	}
	return out
}

// gateway is the subnet's first host address.
func gateway(p netip.Prefix) netip.Addr { return p.Addr().Next() }

// CreateNetwork makes the tenant's bridge network unless it exists, on a
// subnet of the tenant pool that no network of the engine overlaps. Two
// tenants created together may pick the same subnet: the engine refuses
// the second, which then tries the next free one. A pool with no free
// subnet is a non-retryable ErrHostFull.
func (d *Driver) CreateNetwork(ctx context.Context, tenant, owner string) error {
	name := NetworkName(tenant)
	for attempt := 0; attempt < 5; attempt++ {
		nets, err := d.cli.NetworkList(ctx, network.ListOptions{})
		if err != nil {
			return fmt.Errorf("list networks: %w", err)
		}
		used := make([]netip.Prefix, 0, len(nets))
		for _, n := range nets {
			if n.Name == name {
				return checkOwner("network", name, tenant, owner, n.Labels)
			}
			used = append(used, subnetsOf(n)...)
		}
		subnet, ok := d.freeSubnet(tenant, used)
		if !ok {
			msg := fmt.Sprintf("Docker host %s is full: all %d tenant subnets /%d of %s are in use (widen %s or place the tenant on another host)",
				d.cli.DaemonHost(), d.subnets.size(), d.subnets.bits, d.subnets.pool, EnvSubnetPool)
			return temporal.NewNonRetryableApplicationError(msg, ErrHostFull, nil)
		}
		labels := ownedLabels(tenant, owner)
		labels[LabelSubnet] = subnet.String()
		_, err = d.cli.NetworkCreate(ctx, name, network.CreateOptions{
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
		case cerrdefs.IsConflict(err) || overlaps(err):
			// Another tenant took the subnet (or a retry of ours made
			// the network) meanwhile: look again.
			continue
		default:
			return fmt.Errorf("create network %s on %s: %w", name, subnet, err)
		}
	}
	return fmt.Errorf("create network %s: the chosen subnets kept being taken by concurrent creations", name)
}

// freeSubnet is the first subnet of the tenant's candidates that overlaps
// none of used.
func (d *Driver) freeSubnet(tenant string, used []netip.Prefix) (netip.Prefix, bool) {
	for _, c := range d.subnets.candidates(tenant) {
		free := true
		for _, u := range used {
			if u.Overlaps(c) {
				free = false
				break
			}
		}
		if free {
			return c, true
		}
	}
	return netip.Prefix{}, false
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
	for _, n := range nets {
		for _, p := range subnetsOf(n) {
			if d.subnets.pool.Overlaps(p) {
				used++
			}
		}
	}
	return used, d.subnets.size(), nil
}
