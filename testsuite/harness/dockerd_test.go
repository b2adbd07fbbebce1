package harness

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"
	"github.com/stretchr/testify/require"
)

const dockerdDemoVersion = "dockerd-harness"

// Two hosts: one beside the machine's engine, one in a namespace of its
// own. Each serves the demo app on its address over a user-defined network;
// a lost host stops serving while the other goes on; back again, it answers
// and restarts the app; and once the test is over neither leaves a
// process, mount, namespace, link or directory behind, nor takes one of
// the machine's interfaces (docker0) away.
func TestDockerdHostsServeStopStartAndLeaveNothing(t *testing.T) {
	img := DemoImage(t, Docker(t), "tenantflow/demo-app:dockerd-harness", dockerdDemoVersion)
	machine := machineInterfaces(t)
	var left []dockerdTraces
	t.Run("hosts", func(t *testing.T) {
		a := StartDockerd(t, DockerdOptions{Name: "host-a"})
		b := StartDockerd(t, DockerdOptions{Name: "host-b", Netns: true})
		require.Equal(t, "127.0.0.1", a.Addr)
		require.NotEqual(t, a.Addr, b.Addr)
		require.False(t, net.ParseIP(b.Addr).IsLoopback(), "a namespace's address: %s", b.Addr)

		urls := map[*Dockerd]string{}
		for _, d := range []*Dockerd{a, b} {
			d.LoadImage(t, img)
			urls[d] = runDemo(t, d, img)
			requireServes(t, urls[d])
			left = append(left, traceDockerd(t, d))
		}

		b.Stop()
		requireDead(t, left[1])
		requireUnreachable(t, urls[b])
		requireServes(t, urls[a])

		b.Start()
		urls[b] = demoURL(t, b) // the engine may publish on another port
		requireServes(t, urls[b])
		left = append(left, traceDockerd(t, b))
	})
	for _, tr := range left {
		requireDead(t, tr)
		requireGone(t, tr)
	}
	for _, name := range machine {
		_, err := net.InterfaceByName(name)
		require.NoError(t, err, "the machine lost its interface %s", name)
	}
}

// machineInterfaces are the machine's own interfaces (docker0, eth0, lo),
// which the extra engines must leave alone; the bridges and veths of the
// machine's engine come and go with other tests, and those of extra engines
// (tfd-*) with theirs or with the sweep of a crashed run's.
func machineInterfaces(t *testing.T) []string {
	t.Helper()
	ifaces, err := net.Interfaces()
	require.NoError(t, err)
	var out []string
	for _, ifc := range ifaces {
		if !strings.HasPrefix(ifc.Name, "br-") && !strings.HasPrefix(ifc.Name, "veth") && !strings.HasPrefix(ifc.Name, "tfd-") {
			out = append(out, ifc.Name)
		}
	}
	return out
}

// runDemo runs the demo app on d in a user-defined network, published on
// d.Addr, restarted by the engine, and returns its URL.
func runDemo(t *testing.T, d *Dockerd, img string) string {
	t.Helper()
	cli := d.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := cli.NetworkCreate(ctx, "tenants", network.CreateOptions{Driver: "bridge"})
	require.NoError(t, err)
	created, err := cli.ContainerCreate(ctx,
		&container.Config{Image: img, ExposedPorts: nat.PortSet{"8080/tcp": {}}},
		&container.HostConfig{
			PortBindings:  nat.PortMap{"8080/tcp": {{HostIP: d.Addr}}},
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyAlways},
		},
		&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"tenants": {}}},
		nil, "demo")
	require.NoError(t, err)
	require.NoError(t, cli.ContainerStart(ctx, created.ID, container.StartOptions{}))
	return demoURL(t, d)
}

// demoURL is where d publishes the demo container's port, once it runs.
func demoURL(t *testing.T, d *Dockerd) string {
	t.Helper()
	cli := d.Client(t)
	var url string
	WaitFor(t, "demo container on "+d.Name, time.Minute, func() error {
		info, err := cli.ContainerInspect(context.Background(), "demo")
		if err != nil {
			return err
		}
		if !info.State.Running {
			return fmt.Errorf("state %s", info.State.Status)
		}
		for _, b := range info.NetworkSettings.Ports["8080/tcp"] {
			if b.HostIP == d.Addr && b.HostPort != "" {
				url = "http://" + net.JoinHostPort(b.HostIP, b.HostPort)
				return nil
			}
		}
		return fmt.Errorf("not published on %s: %v", d.Addr, info.NetworkSettings.Ports)
	})
	return url
}

var shortHTTP = &http.Client{Timeout: 2 * time.Second}

func getVersion(url string) (string, error) {
	resp, err := shortHTTP.Get(url + "/version")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s", resp.Status, b)
	}
	return strings.TrimSpace(string(b)), err
}

func requireServes(t *testing.T, url string) {
	t.Helper()
	WaitFor(t, url, 30*time.Second, func() error {
		v, err := getVersion(url)
		if err == nil && v != dockerdDemoVersion {
			err = fmt.Errorf("version %q, want %q", v, dockerdDemoVersion)
		}
		return err
	})
}

func requireUnreachable(t *testing.T, url string) {
	t.Helper()
	if v, err := getVersion(url); err == nil {
		t.Fatalf("%s still serves (version %s) after its host was lost", url, v)
	}
}

// dockerdTraces is what a running engine has on the machine, to check it
// is gone later.
type dockerdTraces struct {
	name, dir, netns, link string
	procs                  []procInfo
	bridges                []string
}

// traceDockerd records d's processes, checking that the search finds what
// an engine runs (so an empty search cannot pass the leak checks): the
// daemon of its pidfile, containerd, a shim, the container, docker-proxy;
// and that the engine has mounts and (beside the machine's) bridges.
func traceDockerd(t *testing.T, d *Dockerd) dockerdTraces {
	t.Helper()
	pidText, err := os.ReadFile(d.pidfile())
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	require.NoError(t, err)
	info, err := d.Client(t).ContainerInspect(context.Background(), "demo")
	require.NoError(t, err)
	tr := dockerdTraces{name: d.Name, dir: d.Dir, netns: d.Netns, link: d.slot.linkHost(), procs: d.processes(pid)}
	for _, want := range []string{"dockerd ", "containerd --config " + d.Dir, "containerd-shim", "docker-proxy", "/demo-app serve"} {
		require.True(t, hasProcess(tr.procs, want), "dockerd %s: no process %q among %v", d.Name, want, tr.procs)
	}
	require.True(t, hasPid(tr.procs, pid) && hasPid(tr.procs, info.State.Pid), "dockerd %s: pids %d, %d not among %v", d.Name, pid, info.State.Pid, tr.procs)

	mounts, err := mountsUnder("self", d.Dir)
	require.NoError(t, err)
	require.NotEmpty(t, mounts, "dockerd %s mounts nothing under its directory", d.Name)
	if d.Netns == "" {
		d.noteBridges()
		require.NotEmpty(t, d.bridges, "dockerd %s has no bridge in the machine's namespace", d.Name)
		for b := range d.bridges {
			_, err := net.InterfaceByName(b)
			require.NoError(t, err, "bridge %s of dockerd %s", b, d.Name)
			tr.bridges = append(tr.bridges, b)
		}
	}
	return tr
}

func hasProcess(procs []procInfo, cmdline string) bool {
	for _, p := range procs {
		if strings.Contains(p.cmdline, cmdline) {
			return true
		}
	}
	return false
}

func hasPid(procs []procInfo, pid int) bool {
	for _, p := range procs {
		if p.pid == pid {
			return true
		}
	}
	return false
}

func requireDead(t *testing.T, tr dockerdTraces) {
	t.Helper()
	for _, p := range tr.procs {
		require.False(t, p.alive(), "dockerd %s: process %v still alive", tr.name, p)
	}
}

// requireGone checks nothing of a removed engine is left on the machine.
func requireGone(t *testing.T, tr dockerdTraces) {
	t.Helper()
	mounts, err := mountsUnder("self", tr.dir)
	require.NoError(t, err)
	require.Empty(t, mounts, "dockerd %s left mounts", tr.name)
	_, err = os.Stat(tr.dir)
	require.True(t, os.IsNotExist(err), "dockerd %s left %s: %v", tr.name, tr.dir, err)
	if tr.netns != "" {
		_, err = os.Stat(filepath.Join("/run/netns", tr.netns))
		require.True(t, os.IsNotExist(err), "dockerd %s left namespace %s", tr.name, tr.netns)
	}
	for _, link := range append(tr.bridges, tr.link) {
		_, err := net.InterfaceByName(link)
		require.Error(t, err, "dockerd %s left link %s", tr.name, link)
	}
}
