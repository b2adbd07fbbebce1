package harness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// The addresses of the extra Docker Engines. Slot n (0–255) owns
// 10.231.n.0/30 for the veth link of its network namespace (.1 outside, .2
// inside), 10.231.n.16/28 for the default bridge of an engine beside the
// machine's, and 10.232.n.0/24 as the engine's default address pool, so two
// engines never give their networks the same subnet: engines beside the
// machine's own share its routing table, and a second 172.17.0.0/16 there
// (which an engine left to its defaults takes) breaks both.
const (
	slotCount   = 256
	slotLockDir = "/run/tenantflow-dockerd"
	netnsPrefix = "tfdockerd-"
)

// slot is one of the address ranges above, held by this test process
// through an flock on its lock file: the lock dies with the process, so a
// crashed run's slot is free again, and its leftovers are removed by the
// next process that takes it (or by sweepStaleSlots).
type slot struct {
	n    int
	lock *os.File
}

func (s slot) linkHost() string  { return fmt.Sprintf("tfd-%d-h", s.n) } // veth end in the root namespace
func (s slot) linkPeer() string  { return fmt.Sprintf("tfd-%d-n", s.n) } // veth end in the daemon's
func (s slot) netns() string     { return netnsPrefix + strconv.Itoa(s.n) }
func (s slot) hostAddr() string  { return fmt.Sprintf("10.231.%d.1", s.n) }
func (s slot) innerAddr() string { return fmt.Sprintf("10.231.%d.2", s.n) }
func (s slot) pool() string      { return fmt.Sprintf("10.232.%d.0/24", s.n) }
func (s slot) bridge() string    { return fmt.Sprintf("tfd-%d-b", s.n) }

// owns reports whether ip is one of the slot's addresses.
func (s slot) owns(ip net.IP) bool {
	ip4 := ip.To4()
	return ip4 != nil && ip4[0] == 10 && (ip4[1] == 231 || ip4[1] == 232) && int(ip4[2]) == s.n
}

var (
	slotNext  atomic.Int64
	sweepOnce sync.Once
)

// claimSlot takes a free slot for the rest of the test, starting at a
// place that depends on the process id so parallel test processes seldom
// try the same slots. It removes what a crashed run left in it, and what
// the test leaves in it when the test ends.
func claimSlot(t testing.TB) slot {
	t.Helper()
	sweepOnce.Do(func() { sweepStaleSlots(t) })
	start := os.Getpid()*7 + int(slotNext.Add(1))
	for i := range slotCount {
		n := (start + i) % slotCount
		s, ok, err := lockSlot(n)
		if err != nil {
			Unavailable(t, "lock a dockerd address slot: %v", err)
		}
		if ok {
			s.clean(t)
			t.Cleanup(func() {
				s.clean(t)
				s.release()
			})
			return s
		}
	}
	t.Fatalf("all %d dockerd address slots are taken", slotCount)
	return slot{}
}

// lockSlot takes slot n's lock without waiting; ok is false when another
// daemon (of this process or another) holds it.
func lockSlot(n int) (s slot, ok bool, err error) {
	if err := os.MkdirAll(slotLockDir, 0o755); err != nil {
		return s, false, err
	}
	f, err := os.OpenFile(filepath.Join(slotLockDir, fmt.Sprintf("slot-%d.lock", n)), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return s, false, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return s, false, nil
		}
		return s, false, err
	}
	return slot{n: n, lock: f}, true, nil
}

func (s slot) release() { s.lock.Close() }

// sweepStaleSlots removes the namespaces, links and bridges of slots no
// live process holds: what crashed runs left behind, which would otherwise
// sit on the machine until a test happens to take the same slot.
func sweepStaleSlots(t testing.TB) {
	t.Helper()
	for _, n := range usedSlots() {
		if s, ok, err := lockSlot(n); err == nil && ok {
			s.clean(t)
			s.release()
		}
	}
}

// usedSlots are the slots with a namespace or an address on the machine.
func usedSlots() []int {
	seen := map[int]bool{}
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			n, err := strconv.Atoi(strings.TrimPrefix(e.Name(), netnsPrefix))
			if err == nil && strings.HasPrefix(e.Name(), netnsPrefix) && n >= 0 && n < slotCount {
				seen[n] = true
			}
		}
	}
	for _, ip := range rootAddrs() {
		if ip4 := ip.To4(); ip4 != nil && ip4[0] == 10 && (ip4[1] == 231 || ip4[1] == 232) {
			seen[int(ip4[2])] = true
		}
	}
	var out []int
	for n := range seen {
		out = append(out, n)
	}
	return out
}

// clean deletes the slot's namespace and every root-namespace link with
// one of its addresses (its veth end, bridges of an engine beside the
// machine's). Deleting the namespace also ends the veth pair and whatever
// bridges the engine made inside it.
func (s slot) clean(t testing.TB) {
	t.Helper()
	for _, name := range append(s.links(), s.linkHost()) {
		deleteLink(t, name)
	}
	if _, err := os.Stat(filepath.Join("/run/netns", s.netns())); err == nil {
		if out, err := exec.Command("ip", "netns", "delete", s.netns()).CombinedOutput(); err != nil {
			t.Errorf("delete network namespace %s: %v: %s", s.netns(), err, out)
		}
	}
}

// links are the root-namespace interfaces holding one of the slot's
// addresses: its veth end and bridges, and an engine's bridges (br-<id>).
// The names narrow what is deleted should the machine itself use one of
// the addresses.
func (s slot) links() []string {
	var out []string
	forEachRootAddr(func(ifc string, ip net.IP) {
		if s.owns(ip) && (strings.HasPrefix(ifc, "tfd-") || strings.HasPrefix(ifc, "br-")) {
			out = append(out, ifc)
		}
	})
	return out
}

// rootAddrs are the addresses of the root namespace's interfaces.
func rootAddrs() []net.IP {
	var out []net.IP
	forEachRootAddr(func(_ string, ip net.IP) { out = append(out, ip) })
	return out
}

func forEachRootAddr(f func(ifc string, ip net.IP)) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return
	}
	for _, ifc := range ifaces {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				f(ifc.Name, ipn.IP)
			}
		}
	}
}

// deleteLink deletes a root-namespace interface if it exists. Deleting
// one end of a veth pair deletes the other: the link may be gone by the
// time ip runs, which is no error.
func deleteLink(t testing.TB, name string) {
	t.Helper()
	if _, err := net.InterfaceByName(name); err != nil {
		return
	}
	out, err := exec.Command("ip", "link", "delete", name).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Cannot find device") {
		t.Errorf("delete link %s: %v: %s", name, err, out)
	}
}

// makeNetns creates the slot's network namespace with loopback up and a
// veth link to the root namespace (deleted with the slot when the test
// ends). A machine where that is not allowed (no CAP_NET_ADMIN, no veth)
// makes the test unavailable.
func (s slot) makeNetns(t testing.TB) {
	t.Helper()
	ns := s.netns()
	steps := [][]string{
		{"netns", "add", ns},
		{"link", "add", s.linkHost(), "type", "veth", "peer", "name", s.linkPeer(), "netns", ns},
		{"addr", "add", s.hostAddr() + "/30", "dev", s.linkHost()},
		{"link", "set", s.linkHost(), "up"},
		{"-n", ns, "addr", "add", s.innerAddr() + "/30", "dev", s.linkPeer()},
		{"-n", ns, "link", "set", s.linkPeer(), "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	}
	for _, args := range steps {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			Unavailable(t, "network namespace for dockerd: ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
}

// makeBridge creates the default bridge of an engine beside the machine's
// (see StartDockerd), unless it exists.
func (s slot) makeBridge(t testing.TB) {
	t.Helper()
	if _, err := net.InterfaceByName(s.bridge()); err == nil {
		return
	}
	for _, args := range [][]string{
		{"link", "add", s.bridge(), "type", "bridge"},
		{"addr", "add", fmt.Sprintf("10.231.%d.17/28", s.n), "dev", s.bridge()},
		{"link", "set", s.bridge(), "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("bridge for dockerd: ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
}
