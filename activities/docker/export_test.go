package docker

import "net/netip"

// FirstSubnetChoice is the subnet CreateNetwork tries first for the tenant
// when no network holds any of the pool.
func (d *Driver) FirstSubnetChoice(tenant string) netip.Prefix {
	p, _ := d.subnets.free(tenant, make([]bool, d.subnets.size()))
	return p
}
