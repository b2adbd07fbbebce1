package docker

import (
	"net/netip"
	"testing"
)

// A network marks every pool subnet it overlaps: one of the same size, a
// larger one spanning several, one reaching in from outside the pool;
// networks outside the pool mark nothing.
func TestSubnetsTakenByTheEnginesNetworks(t *testing.T) {
	sp, err := parseSubnetPool("10.9.0.0/26", 28) // 4 subnets: .0 .16 .32 .48
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix
	got := sp.taken([]netip.Prefix{p("10.9.0.16/28"), p("172.17.0.0/16"), p("10.9.0.32/27"), p("10.8.255.0/24")})
	want := []bool{false, true, true, true}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("taken %v, want %v", got, want)
		}
	}
	if s, ok := sp.free("acme", got); !ok || s != p("10.9.0.0/28") {
		t.Fatalf("free: %s %v", s, ok)
	}
	if _, ok := sp.free("acme", []bool{true, true, true, true}); ok {
		t.Fatal("a full pool gave a subnet")
	}
	if got := sp.taken([]netip.Prefix{p("10.0.0.0/8")}); !got[0] || !got[3] {
		t.Fatalf("a network covering the pool takes it all: %v", got)
	}
}
