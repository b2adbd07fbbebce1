package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// DockerdOptions choose how an extra Docker Engine is run.
type DockerdOptions struct {
	// Name tells a test's engines apart in logs and temp dir names
	// ("dockerd" when empty).
	Name string
	// Netns runs the engine in a network namespace of its own, linked to
	// the machine's by a veth pair: a host with an address of its own, as
	// another machine would be. Without it the engine shares the machine's
	// network: its ports are published on 127.0.0.1 and its bridges sit in
	// the machine's routing table.
	Netns bool
}

// Dockerd is a Docker Engine beside the machine's own, run for one test as
// another host of a fleet (/work/shared/recipes/8-second-dockerd.sh): its
// own data root, exec root, socket, managed containerd and address pool,
// and no iptables rules (published ports go through docker-proxy).
// It starts with no images and cannot pull: LoadImage copies them from the
// machine's engine. Stop loses the host, Start brings it back on the same
// data.
type Dockerd struct {
	Name  string
	Dir   string // everything of the engine: config, data root, exec root, socket
	Host  string // unix://<Dir>/docker.sock
	Addr  string // where its published ports are reached: 127.0.0.1, or its namespace's address
	Netns string // its network namespace, "" without DockerdOptions.Netns

	t             testing.TB
	slot          slot
	defaultBridge string // "none" in a namespace of its own, else one made for it
	proc          *Process
	bridges       map[string]bool // root-namespace bridges its networks made (without Netns)
}

// StartDockerd starts an extra engine, waits until it answers `info`, and
// when the test ends kills it with everything it started (containerd,
// shims, containers, fuse-overlayfs), unmounts what it left mounted and
// removes its directory, namespace and bridges. It needs root, dockerd, ip
// (and nsenter with Netns) and the machine's engine (for its storage driver
// and images); without them the test is unavailable.
func StartDockerd(t testing.TB, o DockerdOptions) *Dockerd {
	t.Helper()
	SkipShort(t, "an extra Docker Engine")
	RequireBinary(t, "dockerd", "docker.io")
	RequireBinary(t, "ip", "iproute2")
	if os.Geteuid() != 0 {
		Unavailable(t, "an extra dockerd needs root (running as uid %d)", os.Geteuid())
	}
	driver := machineStorageDriver(t)
	if o.Name == "" {
		o.Name = "dockerd"
	}
	// A short path of its own, not t.TempDir(): unix socket paths are
	// limited to 108 bytes and containerd's lives under the exec root.
	dir, err := os.MkdirTemp("", "tfd-"+o.Name+"-")
	if err != nil {
		t.Fatal(err)
	}
	d := &Dockerd{Name: o.Name, Dir: dir, Host: "unix://" + filepath.Join(dir, "docker.sock"), Addr: "127.0.0.1", t: t, bridges: map[string]bool{}}
	t.Cleanup(func() { removeAll(t, dir) })
	d.slot = claimSlot(t)
	if err := d.writeConfig(driver); err != nil {
		t.Fatal(err)
	}
	name, args := d.command(o.Netns)
	d.proc = NewProcess(t, dir, nil, name, args...)
	t.Cleanup(d.Stop)
	d.Start()
	return d
}

// command is how the engine is run, in its namespace (made here) with
// Netns.
func (d *Dockerd) command(netns bool) (name string, args []string) {
	d.t.Helper()
	if !netns {
		// With --bridge=none dockerd deletes any interface named docker0
		// in its network namespace: beside the machine's engine that is
		// the machine's docker0, whose containers then fail to start
		// ("could not find bridge docker0"). So it gets a bridge of its own.
		d.defaultBridge = d.slot.bridge()
		return "dockerd", d.args()
	}
	// nsenter, not `ip netns exec`: that also remounts /sys in a mount
	// namespace of its own, which hides the cgroup mounts from dockerd
	// ("Devices cgroup isn't mounted").
	RequireBinary(d.t, "nsenter", "util-linux")
	d.slot.makeNetns(d.t)
	d.Netns, d.Addr, d.defaultBridge = d.slot.netns(), d.slot.innerAddr(), "none"
	return "nsenter", append([]string{"--net=" + filepath.Join("/run/netns", d.Netns), "dockerd"}, d.args()...)
}

// machineStorageDriver is the machine's engine's storage driver, which the
// extra engines use too: the one that works on this machine's file system
// (fuse-overlayfs where the root is itself an overlay).
func machineStorageDriver(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := Docker(t).Client().Info(ctx)
	if err != nil {
		Unavailable(t, "Docker Engine info: %v", err)
	}
	return info.Driver
}

// writeConfig gives the engine a config file of its own: the machine's
// /etc/docker/daemon.json, read by default, sets data-root, which the
// --data-root flag conflicts with.
func (d *Dockerd) writeConfig(storageDriver string) error {
	cfg := map[string]any{
		"storage-driver":        storageDriver,
		"default-address-pools": []map[string]any{{"base": d.slot.pool(), "size": 28}},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(d.Dir, "daemon.json"), b, 0o644)
}

func (d *Dockerd) args() []string {
	return []string{
		"--config-file", filepath.Join(d.Dir, "daemon.json"),
		"--data-root", filepath.Join(d.Dir, "data"),
		"--exec-root", filepath.Join(d.Dir, "exec"),
		"--pidfile", d.pidfile(),
		"-H", d.Host,
		"--bridge=" + d.defaultBridge, "--iptables=false", "--ip-masq=false",
	}
}

func (d *Dockerd) pidfile() string { return filepath.Join(d.Dir, "docker.pid") }

// Start runs the engine (again, after Stop, on the same data root: a host
// that comes back, whose containers with a restart policy the engine
// restarts) and waits until it answers `info`.
func (d *Dockerd) Start() {
	d.t.Helper()
	began := time.Now()
	if d.defaultBridge != "none" {
		d.slot.makeBridge(d.t) // Stop deletes it with the engine's others
	}
	d.proc.Start()
	cli := d.newClient()
	defer cli.Close()
	WaitFor(d.t, "dockerd "+d.Name, 2*time.Minute, func() error {
		if !d.running() {
			d.t.Fatalf("dockerd %s exited while starting:\n%s", d.Name, d.proc.Output())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := cli.Info(ctx)
		return err
	})
	d.t.Logf("dockerd %s ready in %s at %s (published on %s)", d.Name, time.Since(began).Round(time.Millisecond), d.Host, d.Addr)
}

// running reports whether the daemon this test started is alive.
func (d *Dockerd) running() bool {
	d.proc.mu.Lock()
	defer d.proc.mu.Unlock()
	if d.proc.cmd == nil {
		return false
	}
	p, ok := readProc(d.proc.cmd.Process.Pid)
	return ok && !p.zombie
}

// Stop loses the host: SIGKILL to the engine, its containerd and shims,
// its containers and fuse-overlayfs, with no chance to shut down, then
// what a reboot clears gone: its mounts, bridges and run state (exec root,
// pidfile). Its containers stop serving. Stopping a stopped engine does
// nothing.
func (d *Dockerd) Stop() {
	d.t.Helper()
	if d.Netns == "" {
		d.noteBridges()
	}
	d.killAll()
	d.unmountAll()
	// Without this the next dockerd can take a killed containerd, not yet
	// reaped by init, for a live one (its pid file names a zombie) and
	// wait for it until "timeout waiting for containerd to start".
	removeAll(d.t, filepath.Join(d.Dir, "exec"))
	if err := os.Remove(d.pidfile()); err != nil && !errors.Is(err, os.ErrNotExist) {
		d.t.Errorf("dockerd %s: %v", d.Name, err)
	}
	if d.Netns == "" {
		// Dead engines do not delete their bridges; a reboot would.
		for name := range d.bridges {
			deleteLink(d.t, name)
		}
		for _, name := range d.slot.links() {
			deleteLink(d.t, name)
		}
	}
}

// noteBridges records the root-namespace bridges of the engine's networks
// while it still answers, so they can be deleted once it is gone: a
// network created with a subnet of its own is outside the slot's pool.
func (d *Dockerd) noteBridges() {
	if !d.running() {
		return
	}
	cli := d.newClient()
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	nets, err := cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		d.t.Logf("dockerd %s: list networks before the kill: %v", d.Name, err)
		return
	}
	for _, n := range nets {
		if n.Driver != "bridge" {
			continue
		}
		name := n.Options["com.docker.network.bridge.name"]
		if name == "" {
			name = "br-" + n.ID[:12]
		}
		d.bridges[name] = true
	}
}

// killAll SIGKILLs the engine's processes: the daemon this test started,
// every process whose command line names the engine's directory
// (containerd, shims, fuse-overlayfs) and all their descendants
// (docker-proxy, the containers). Shims outlive containerd and containers
// outlive their shim, so all are found first and killed together.
func (d *Dockerd) killAll() {
	d.t.Helper()
	var roots []int
	d.proc.mu.Lock()
	if d.proc.cmd != nil {
		roots = append(roots, d.proc.cmd.Process.Pid)
	}
	d.proc.mu.Unlock()
	deadline := time.Now().Add(15 * time.Second)
	for {
		procs := d.processes(roots...)
		if len(procs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			d.t.Errorf("dockerd %s: processes still alive after SIGKILL: %v", d.Name, procs)
			break
		}
		for _, p := range procs {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.proc.Kill() // reaps the daemon
}

// processes are the live processes of the engine (see killAll).
func (d *Dockerd) processes(roots ...int) []procInfo {
	return processTree(func(p procInfo) bool {
		for _, r := range roots {
			if p.pid == r {
				return true
			}
		}
		return strings.Contains(p.cmdline, d.Dir+"/")
	})
}

// unmountAll detaches every mount under the engine's directory, deepest
// first: a killed engine leaves its data root, fuse-overlayfs rootfs and
// network namespace files mounted (in the machine's mount namespace, also
// for an engine in a network namespace of its own).
func (d *Dockerd) unmountAll() {
	d.t.Helper()
	mounts, err := mountsUnder("self", d.Dir)
	if err != nil {
		d.t.Errorf("dockerd %s: %v", d.Name, err)
		return
	}
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			d.t.Errorf("dockerd %s: unmount %s: %v", d.Name, m, err)
		}
	}
}

// removeAll deletes an engine's directory (or part) once it is stopped, unless
// something is still mounted in it: deleting through a mount (a volume
// bound to a directory of the machine) would delete what it shows.
func removeAll(t testing.TB, dir string) {
	if mounts, err := mountsUnder("self", dir); err != nil || len(mounts) > 0 {
		t.Errorf("keep %s: still mounted: %v %v", dir, mounts, err)
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("remove %s: %v", dir, err)
	}
}

// Client is a Docker SDK client of the engine, closed when the test ends.
func (d *Dockerd) Client(t testing.TB) *client.Client {
	t.Helper()
	cli := d.newClient()
	t.Cleanup(func() { cli.Close() })
	return cli
}

func (d *Dockerd) newClient() *client.Client {
	// Negotiation: the engine may speak an older API than the SDK.
	cli, err := client.NewClientWithOpts(client.WithHost(d.Host), client.WithAPIVersionNegotiation())
	if err != nil {
		d.t.Fatalf("docker client for %s: %v", d.Host, err)
	}
	return cli
}

// LoadImage copies image ref from the machine's engine into this one
// (`docker save | docker load`), since the extra engines cannot pull.
func (d *Dockerd) LoadImage(t testing.TB, ref string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	saved, err := Docker(t).Client().ImageSave(ctx, []string{ref})
	if err != nil {
		t.Fatalf("save %s from the machine's engine: %v", ref, err)
	}
	defer saved.Close()
	cli := d.Client(t)
	resp, err := cli.ImageLoad(ctx, saved, client.ImageLoadWithQuiet(true))
	if err != nil {
		t.Fatalf("load %s into dockerd %s: %v", ref, d.Name, err)
	}
	defer resp.Body.Close()
	if err := loadError(resp.Body); err != nil {
		t.Fatalf("load %s into dockerd %s: %v", ref, d.Name, err)
	}
	if _, err := cli.ImageInspect(ctx, ref); err != nil {
		t.Fatalf("dockerd %s after loading %s: %v", d.Name, ref, err)
	}
}

// loadError reads the engine's JSON message stream to its end and returns
// the error it reported, if any.
func loadError(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var msg struct {
			Error       string `json:"error"`
			ErrorDetail *struct {
				Message string `json:"message"`
			} `json:"errorDetail"`
		}
		switch err := dec.Decode(&msg); {
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		case msg.ErrorDetail != nil:
			return errors.New(msg.ErrorDetail.Message)
		case msg.Error != "":
			return errors.New(msg.Error)
		}
	}
}

// procInfo is what /proc says of a process.
type procInfo struct {
	pid, ppid int
	start     uint64 // clock ticks after boot: tells a reused pid apart
	zombie    bool
	cmdline   string
}

func (p procInfo) String() string { return fmt.Sprintf("%d %q", p.pid, p.cmdline) }

// readProc reads /proc/<pid>; ok is false when there is no such process.
func readProc(pid int) (procInfo, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procInfo{}, false
	}
	// The command name in parentheses may hold spaces and parentheses:
	// the fields that follow start after the last ')'.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return procInfo{}, false
	}
	f := strings.Fields(string(stat[i+1:])) // f[0] is field 3, the state
	if len(f) < 20 {
		return procInfo{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	start, _ := strconv.ParseUint(f[19], 10, 64)
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return procInfo{pid: pid, ppid: ppid, start: start, zombie: f[0] == "Z",
		cmdline: strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))}, true
}

// alive reports whether the very process p (same pid, same start) still
// runs.
func (p procInfo) alive() bool {
	now, ok := readProc(p.pid)
	return ok && !now.zombie && now.start == p.start
}

// processTree is every live process that match selects, and their
// descendants.
func processTree(match func(procInfo) bool) []procInfo {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var all []procInfo
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			if p, ok := readProc(pid); ok && !p.zombie {
				all = append(all, p)
			}
		}
	}
	in := map[int]bool{}
	for _, p := range all {
		if match(p) {
			in[p.pid] = true
		}
	}
	for grew := true; grew; {
		grew = false
		for _, p := range all {
			if !in[p.pid] && in[p.ppid] {
				in[p.pid], grew = true, true
			}
		}
	}
	var out []procInfo
	for _, p := range all {
		if in[p.pid] {
			out = append(out, p)
		}
	}
	return out
}

// mountsUnder lists the mount points at or under dir in the mount namespace
// of process pid ("self" for the test's), deepest first.
func mountsUnder(pid, dir string) ([]string, error) {
	f, err := os.Open(filepath.Join("/proc", pid, "mountinfo"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		// mountinfo escapes space, tab, newline and backslash in octal.
		mp := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`).Replace(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, sc.Err()
}
