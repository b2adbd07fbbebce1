package hosts

import (
	"strings"
	"testing"
)

func host(name, zone string, cpu, memMi int64, tenants ...string) Host {
	h := Host{HostSpec: HostSpec{Name: name, Address: "10.0.0." + name, Capacity: Resources{MilliCPU: cpu, MemoryBytes: memMi << 20},
		Labels: map[string]string{ZoneLabel: zone}}, State: StateActive, Reservations: map[string]Reservation{}}
	for _, t := range tenants {
		h.Reservations[t] = Reservation{Tenant: t, Owner: "run-" + t, Need: Resources{MilliCPU: 500, MemoryBytes: 256 << 20}}
	}
	return h
}

var need = Resources{MilliCPU: 500, MemoryBytes: 256 << 20}

func TestPlacement(t *testing.T) {
	cordoned := host("c", "z2", 4000, 4096)
	cordoned.State = StateCordoned
	tests := []struct {
		name    string
		hosts   []Host
		in      ReserveInput
		want    string
		wantErr string
	}{
		{name: "spread to the emptier zone", hosts: []Host{host("a", "z1", 4000, 4096, "t1"), host("b", "z2", 4000, 1024)},
			in: ReserveInput{Tenant: "n", Owner: "r", Need: need}, want: "b"},
		{name: "zone first, then free memory", hosts: []Host{host("a", "z1", 4000, 1024), host("b", "z1", 4000, 2048), host("c", "z2", 4000, 1024, "t1")},
			in: ReserveInput{Tenant: "n", Owner: "r", Need: need}, want: "b"},
		{name: "full hosts are passed over", hosts: []Host{host("a", "z1", 4000, 512, "t1", "t2"), host("b", "z1", 600, 4096, "t3")},
			in: ReserveInput{Tenant: "n", Owner: "r", Need: need}, wantErr: "no host has room for n (0.5cpu 256Mi): a: free 3cpu 0Mi; b: free 0.1cpu 3840Mi"},
		{name: "not active is passed over", hosts: []Host{cordoned, host("d", "z1", 4000, 1024, "t1", "t2")},
			in: ReserveInput{Tenant: "n", Owner: "r", Need: need}, want: "d"},
		{name: "only cordoned", hosts: []Host{cordoned},
			in: ReserveInput{Tenant: "n", Owner: "r", Need: need}, wantErr: "c: cordoned"},
		{name: "a retry keeps its host", hosts: []Host{host("a", "z1", 4000, 4096, "n"), host("b", "z2", 4000, 4096)},
			in: ReserveInput{Tenant: "n", Owner: "run-n", Need: need}, want: "a"},
		{name: "a move pins another host for the same run", hosts: []Host{host("a", "z1", 4000, 4096, "n"), host("b", "z2", 4000, 4096)},
			in: ReserveInput{Tenant: "n", Owner: "run-n", Need: need, Pin: "b"}, want: "b"},
		{name: "a move away chooses another host, never its source", hosts: []Host{host("a", "z1", 4000, 8192, "n"), host("b", "z1", 4000, 1024), host("c", "z2", 4000, 1024, "t1")},
			in: ReserveInput{Tenant: "n", Owner: "run-n", Need: need, From: "a"}, want: "b"},
		{name: "a retried move away keeps its target", hosts: []Host{host("a", "z1", 4000, 8192, "n"), host("b", "z1", 4000, 1024), host("c", "z2", 4000, 4096, "n")},
			in: ReserveInput{Tenant: "n", Owner: "run-n", Need: need, From: "a"}, want: "c"},
		{name: "a move away with nowhere to go", hosts: []Host{host("a", "z1", 4000, 8192, "n")},
			in: ReserveInput{Tenant: "n", Owner: "run-n", Need: need, From: "a"}, wantErr: "a: holds n already (for run run-n)"},
		{name: "another run of a placed name", hosts: []Host{host("a", "z1", 4000, 4096, "n"), host("b", "z2", 4000, 4096)},
			in: ReserveInput{Tenant: "n", Owner: "other", Need: need}, want: "b"},
		{name: "pinned", hosts: []Host{host("a", "z1", 4000, 4096), host("b", "z2", 4000, 4096)},
			in: ReserveInput{Tenant: "n", Owner: "r", Need: need, Pin: "a"}, want: "a"},
		{name: "pinned full", hosts: []Host{host("a", "z1", 500, 4096, "t1")},
			in: ReserveInput{Tenant: "n", Owner: "r", Need: need, Pin: "a"}, wantErr: "host a cannot take n: free 0cpu 3840Mi"},
		{name: "pinned unknown", hosts: []Host{host("a", "z1", 4000, 4096)},
			in: ReserveInput{Tenant: "n", Owner: "r", Need: need, Pin: "x"}, wantErr: "host x is not registered"},
		{name: "no hosts", in: ReserveInput{Tenant: "n", Owner: "r", Need: need}, wantErr: "no host is registered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Place(tt.hosts, tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Host != tt.want || p.Queue != TaskQueue(tt.want) || p.Reason == "" {
				t.Fatalf("placed %+v, want %s", p, tt.want)
			}
		})
	}
}

// Placing many tenants one after the other spreads them over the zones
// and never over-commits a host.
func TestPlacementSpreadsAndNeverOvercommits(t *testing.T) {
	hosts := []Host{host("a", "z1", 4000, 2048), host("b", "z1", 4000, 2048), host("c", "z2", 4000, 2048)}
	perZone := map[string]int{}
	for i := 0; ; i++ {
		in := ReserveInput{Tenant: "t" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Owner: "r", Need: need}
		p, err := Place(hosts, in)
		if err != nil {
			if i != 24 {
				t.Fatalf("placement stopped after %d tenants (capacity is 24): %v", i, err)
			}
			break
		}
		for j := range hosts {
			if hosts[j].Name == p.Host {
				hosts[j].Reservations[in.Tenant] = Reservation{Tenant: in.Tenant, Owner: in.Owner, Need: in.Need}
				if !hosts[j].Capacity.Fits(hosts[j].Reserved()) {
					t.Fatalf("host %s over-committed: %s of %s", p.Host, hosts[j].Reserved(), hosts[j].Capacity)
				}
			}
		}
		perZone[p.Zone]++
		if i == 7 && (perZone["z1"] != 4 || perZone["z2"] != 4) {
			t.Fatalf("after 8 tenants: %v, want 4 per zone", perZone)
		}
	}
}

func TestHostStates(t *testing.T) {
	if _, err := StateLost.To(StateActive); err == nil {
		t.Fatal("a lost host must come back cordoned (fenced), not active")
	}
	if s, err := StateLost.To(StateCordoned); err != nil || s != StateCordoned {
		t.Fatal(s, err)
	}
	if _, err := StateActive.To(StateActive); err == nil {
		t.Fatal("no move to itself")
	}
}
