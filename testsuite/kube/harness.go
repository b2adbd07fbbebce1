// Package kube starts a real Kubernetes control plane on loopback for the
// OpenShift driver's integration tests: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler built from source by
// build-tools.sh, with kwok standing in for the kubelet of fake nodes
// (pods/log reads files kwok serves, ServePodLogs), the OpenShift Route
// CRD installed and a pool of PersistentVolumes to bind.
// Nothing is shared between tests: each Start is a fresh cluster in its
// own temporary directory.
package kube

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// ToolsVersion names the component versions; build-tools.sh caches the
// binaries in a directory of this name.
const ToolsVersion = "kube-v1.34.4-etcd-v3.6.4-kwok-v0.8.0"

// BinEnv overrides where the binaries are (the Makefile sets it).
const BinEnv = "TENANTFLOW_KUBE_BIN"

// Images the fake nodes treat specially (kwok-stages.yaml): a pod whose
// first container runs UnreadyImage stays Pending and never becomes Ready;
// one running PullFailImage reports ImagePullBackOff. Any other image
// becomes Running and Ready at once.
const (
	UnreadyImage  = "registry.invalid/tenantflow/never-ready:1"
	PullFailImage = "registry.invalid/tenantflow/missing:1"
	// The same, pinned by digest as a release pins its image.
	UnreadyDigestImage  = "registry.invalid/tenantflow/never-ready@sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
	PullFailDigestImage = "registry.invalid/tenantflow/missing@sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
)

// StorageClass is the class of the pre-created PersistentVolumes: PVCs of
// this class are bound by the controller-manager's PV binder.
const StorageClass = "tenantflow-test"

const (
	// startTimeout bounds each wait of Start (a component becoming ready).
	startTimeout = 60 * time.Second
	// stopGrace is how long a component gets to exit after SIGTERM.
	stopGrace = 5 * time.Second
	// fakeNodeAnnotation marks the nodes kwok manages.
	fakeNodeAnnotation = "kwok.x-k8s.io/node"
	logTailLines       = 60
)

//go:embed kwok-stages.yaml
var kwokStages []byte

var tools = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// BinDir is where the control plane's binaries are: $TENANTFLOW_KUBE_BIN,
// else the cache directory build-tools.sh uses by default.
func BinDir() string {
	if d := os.Getenv(BinEnv); d != "" {
		return d
	}
	// UserCacheDir is $XDG_CACHE_HOME or $HOME/.cache, as in build-tools.sh.
	cache, _ := os.UserCacheDir()
	return filepath.Join(cache, "tenantflow", ToolsVersion)
}

// Missing reports the first binary that is not built yet, and how to
// build it; nil when all are there.
func Missing() error {
	dir := BinDir()
	for _, name := range tools {
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("test control plane binary %s is missing: build it with `make kube-tools` "+
				"(testsuite/kube/build-tools.sh; a cold build takes minutes) or point %s at a directory holding %s",
				p, BinEnv, strings.Join(tools, ", "))
		}
	}
	return nil
}

// RequireTools skips the test (fails it in CI) when a binary is missing,
// and in short mode.
func RequireTools(t testing.TB) {
	t.Helper()
	harness.SkipShort(t, "the test control plane")
	if err := Missing(); err != nil {
		harness.Unavailable(t, "%v", err)
	}
}

// Options tune Start; the zero value is a usable cluster.
type Options struct {
	// Nodes is the number of fake nodes kwok-node-0…; default 1.
	Nodes int
	// PVs is the number of PersistentVolumes tf-test-pv-0… of
	// StorageClass (10Gi, ReadWriteOnce); default 40. A bound PV is
	// deleted when its claim is, so the pool shrinks as tests use it.
	PVs int
	// Logf, if set, receives the start-up phases with their timings
	// (pass t.Logf).
	Logf func(format string, args ...any)
}

// ControlPlane is a running cluster. Stop it when done.
type ControlPlane struct {
	// Config authenticates as an admin in system:masters (bearer token).
	// Its rate limit is raised for tests.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file with the same admin.
	Kubeconfig string
	// Server is https://127.0.0.1:<port>.
	Server string
	// CAFile verifies Server's certificate.
	CAFile string
	// Dir holds certificates, etcd's data, the PVs' host paths and
	// logs/<component>.log. Stop removes it.
	Dir string

	bin      string
	procs    []*proc // in start order
	stopOnce sync.Once
}

// proc is one component, run in its own process group so Stop also gets
// whatever it forks.
type proc struct {
	name, log string
	cmd       *exec.Cmd
	done      chan struct{} // closed when the process has exited
	err       error         // Wait's result, set before done is closed
}

// Start runs a fresh control plane and returns once a workload could run
// on it: nodes Ready, Routes accepted without delay, PVs created. On error
// nothing is left running and the error carries the relevant components'
// log tails.
func Start(opts Options) (_ *ControlPlane, err error) {
	if err := Missing(); err != nil {
		return nil, err
	}
	if opts.Nodes <= 0 {
		opts.Nodes = 1
	}
	if opts.PVs <= 0 {
		opts.PVs = 40
	}
	t0 := time.Now()
	progress := func(what string) {
		if opts.Logf != nil {
			opts.Logf("kube: %s after %s", what, time.Since(t0).Round(time.Millisecond))
		}
	}
	// Looking the CRD up runs `go list`; overlap it with the start-up.
	type crdResult struct {
		obj *unstructured.Unstructured
		err error
	}
	crdCh := make(chan crdResult, 1)
	go func() {
		obj, err := routeCRD()
		crdCh <- crdResult{obj, err}
	}()

	dir, err := os.MkdirTemp("", "tenantflow-kube-")
	if err != nil {
		return nil, fmt.Errorf("create control plane dir: %w", err)
	}
	c := &ControlPlane{Dir: dir, bin: BinDir()}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	pki, err := writePKI(filepath.Join(dir, "pki"))
	if err != nil {
		return nil, fmt.Errorf("generate certificates: %w", err)
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	etcdPort, peerPort, apiPort, kwokPort := ports[0], ports[1], ports[2], ports[3]
	c.Server = "https://" + harness.Addr(apiPort)
	c.CAFile = pki.caCert
	if err := c.writeKubeconfig(pki.adminToken); err != nil {
		return nil, err
	}
	stages := filepath.Join(dir, "kwok-stages.yaml")
	if err := os.WriteFile(stages, kwokStages, 0o644); err != nil {
		return nil, fmt.Errorf("write kwok stages: %w", err)
	}

	etcdURL := "http://" + harness.Addr(etcdPort)
	peerURL := "http://" + harness.Addr(peerPort)
	if err := c.start("etcd",
		"--name=default", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		"--unsafe-no-fsync", // test data: durability only costs time
	); err != nil {
		return nil, err
	}
	if err := c.waitFor("etcd health", []string{"etcd"}, func(ctx context.Context) error {
		return etcdHealthy(etcdURL)
	}); err != nil {
		return nil, err
	}
	progress("etcd healthy")
	// Only now: started together with etcd, the apiserver would log a
	// screenful of refused connections and be no faster.
	if err := c.start("kube-apiserver",
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", apiPort),
		"--tls-cert-file="+pki.servingCert, "--tls-private-key-file="+pki.servKey,
		"--client-ca-file="+pki.caCert, "--token-auth-file="+pki.tokens,
		"--authorization-mode=RBAC",
		// Signing keys make TokenRequest work: the KCM's per-controller
		// credentials and the driver's service-account tokens need it.
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pki.saPub, "--service-account-signing-key-file="+pki.saKey,
		// Two Services per tenant: room for thousands of tenants.
		"--service-cluster-ip-range=10.0.0.0/16", "--allow-privileged=true",
		// The "kubernetes" Service cannot point at a loopback address and
		// nothing in a kwok pod would call it: do not retry that forever.
		"--endpoint-reconciler-type=none",
		"--cert-dir="+filepath.Join(dir, "pki", "generated"),
		// pods/log is proxied to the node's kubelet endpoint: kwok's
		// server, on loopback (the fake nodes' names resolve nowhere).
		"--kubelet-preferred-address-types=InternalIP",
	); err != nil {
		return nil, err
	}
	kc, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if err := c.waitFor("kube-apiserver /readyz", []string{"kube-apiserver"}, func(ctx context.Context) error {
		_, err := kc.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	progress("kube-apiserver ready")
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return nil, fmt.Errorf("dynamic client: %w", err)
	}
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	// Before kwok starts, so its watch of Logs finds them served sooner.
	if err := createLogsCRD(context.Background(), crds); err != nil {
		return nil, err
	}

	if err := c.start("kube-controller-manager",
		"--kubeconfig="+c.Kubeconfig, "--leader-elect=false", "--secure-port=0",
		// All default controllers: node-lifecycle removes the not-ready
		// taint new Nodes get, the PV binder binds claims, the
		// serviceaccount controllers make namespaces usable.
		"--controllers=*",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+pki.saKey, "--root-ca-file="+pki.caCert,
		"--cluster-signing-cert-file="+pki.caCert, "--cluster-signing-key-file="+pki.caKey,
		"--kube-api-qps=100", "--kube-api-burst=200",
		// Twenty tenants at once are forty Deployments: the default five
		// workers per controller would queue them.
		"--concurrent-deployment-syncs=20", "--concurrent-replicaset-syncs=20",
		"--concurrent-namespace-syncs=20",
	); err != nil {
		return nil, err
	}
	if err := c.start("kube-scheduler",
		"--kubeconfig="+c.Kubeconfig, "--leader-elect=false", "--secure-port=0",
	); err != nil {
		return nil, err
	}
	if err := c.start("kwok",
		"--kubeconfig="+c.Kubeconfig, "--config="+stages,
		"--manage-all-nodes=false", "--manage-nodes-with-annotation-selector="+fakeNodeAnnotation+"=fake",
		"--manage-nodes-with-label-selector=", "--manage-single-node=",
		"--cidr=10.244.0.0/16", "--node-lease-duration-seconds=40",
		// The nodes' kubelet endpoint is kwok's own server, over HTTPS
		// (the apiserver's certificate; it verifies no kubelet's): it
		// serves the files of Logs objects as the pods' logs.
		"--node-ip=127.0.0.1", fmt.Sprintf("--node-port=%d", kwokPort),
		"--server-address="+harness.Addr(kwokPort),
		"--tls-cert-file="+pki.servingCert, "--tls-private-key-file="+pki.servKey,
		"--enable-crds="+logsKind,
	); err != nil {
		return nil, err
	}

	// API objects are created while the controllers start up; the CRD
	// first, as it has a wait of its own (routeCRDSettled).
	ctx := context.Background()
	crd := <-crdCh
	if crd.err != nil {
		return nil, crd.err
	}
	if _, err := crds.Create(ctx, crd.obj, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create Route CRD: %w", err)
	}
	if err := createNodes(ctx, kc, opts.Nodes); err != nil {
		return nil, err
	}
	if err := c.createVolumes(ctx, kc, opts.PVs); err != nil {
		return nil, err
	}
	progress("Route CRD, nodes, StorageClass and PVs created")

	disc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		return nil, fmt.Errorf("discovery client: %w", err)
	}
	if err := c.waitFor("route.openshift.io/v1 routes in discovery", []string{"kube-apiserver"}, func(ctx context.Context) error {
		return servesRoutes(disc)
	}); err != nil {
		return nil, err
	}
	progress("Route CRD served")
	if err := c.waitFor("kwok.x-k8s.io/v1alpha1 logs in discovery", []string{"kube-apiserver"}, func(ctx context.Context) error {
		return servesLogs(disc)
	}); err != nil {
		return nil, err
	}
	if err := c.waitFor("fake nodes Ready and schedulable", []string{"kwok", "kube-controller-manager"}, func(ctx context.Context) error {
		return nodesReady(ctx, kc, opts.Nodes)
	}); err != nil {
		return nil, err
	}
	progress("fake nodes ready")
	if err := c.waitFor("Route CRD settled", []string{"kube-apiserver"}, func(ctx context.Context) error {
		return routeCRDSettled(ctx, crds, crd.obj.GetName())
	}); err != nil {
		return nil, err
	}
	if err := c.dead(); err != nil {
		return nil, err
	}
	progress("control plane up")
	return c, nil
}

// Stop kills the components in reverse start order (the controllers and
// kwok before the apiserver, so it has no watchers to drain; etcd last),
// then removes Dir. It may be called more than once.
func (c *ControlPlane) Stop() {
	c.stopOnce.Do(func() {
		for i := len(c.procs) - 1; i >= 0; i-- {
			c.procs[i].stop()
		}
		_ = os.RemoveAll(c.Dir)
	})
}

// Logs returns the last lines of each component's log, for a failure
// message. Call it before Stop, which removes the logs.
func (c *ControlPlane) Logs() string {
	var b strings.Builder
	for _, p := range c.procs {
		b.WriteString(p.tail())
	}
	return b.String()
}

func (c *ControlPlane) writeKubeconfig(token string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["tenantflow-test"] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthority: c.CAFile}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: token}
	kc.Contexts["tenantflow-test"] = &clientcmdapi.Context{Cluster: "tenantflow-test", AuthInfo: "admin"}
	kc.CurrentContext = "tenantflow-test"
	c.Kubeconfig = filepath.Join(c.Dir, "admin.kubeconfig")
	if err := clientcmd.WriteToFile(*kc, c.Kubeconfig); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	// Load it back, so the file the components get is the one tested.
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	// client-go's default of 5 requests/s would make tests that poll
	// wait on their own client rather than on the cluster.
	cfg.QPS, cfg.Burst = 200, 400
	c.Config = cfg
	return nil
}

// start runs bin/name with its output in logs/name.log.
func (c *ControlPlane) start(name string, args ...string) error {
	logPath := filepath.Join(c.Dir, "logs", name+".log")
	logf, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("create %s log: %w", name, err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(filepath.Join(c.bin, name), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group for Stop; SIGKILL if the test binary dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return nil
}

// dead reports a component that has exited, with its log tail.
func (c *ControlPlane) dead() error {
	for _, p := range c.procs {
		select {
		case <-p.done:
			err := p.err
			if err == nil {
				err = errors.New("status 0")
			}
			return fmt.Errorf("%s exited (%w)\n%s", p.name, err, p.tail())
		default:
		}
	}
	return nil
}

// waitFor polls cond until it returns nil; it gives up after startTimeout
// with the log tails of the components named in logs, or as soon as any
// component dies.
func (c *ControlPlane) waitFor(what string, logs []string, cond func(ctx context.Context) error) error {
	deadline := time.Now().Add(startTimeout)
	for {
		if err := c.dead(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := cond(ctx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			var tails strings.Builder
			for _, p := range c.procs {
				for _, name := range logs {
					if p.name == name {
						tails.WriteString(p.tail())
					}
				}
			}
			return fmt.Errorf("%s not ready after %s: %w\n%s", what, startTimeout, err, tails.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM to the process group, and SIGKILL if it lingers.
func (p *proc) stop() {
	pid := p.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(stopGrace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-p.done
	}
}

// tail returns the last logTailLines lines of the log, with a heading.
func (p *proc) tail() string {
	const maxBytes = 64 << 10 // apiserver lines can be long; enough for 60 of them
	head := fmt.Sprintf("--- %s (last %d lines of %s) ---\n", p.name, logTailLines, p.log)
	f, err := os.Open(p.log)
	if err != nil {
		return head + err.Error() + "\n"
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxBytes {
		_, _ = f.Seek(fi.Size()-maxBytes, io.SeekStart)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return head + err.Error() + "\n"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return head + strings.Join(lines, "\n") + "\n"
}

// freePorts returns n distinct loopback ports that nothing listens on;
// the listeners are held until all are picked so none repeats.
// (harness.FreePort needs a testing.TB, which Start does not have.)
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func etcdHealthy(url string) error {
	code, body, err := harness.DoJSON(http.DefaultClient, http.MethodGet, url+"/health", nil, 5*time.Second, nil)
	if err != nil {
		return err
	}
	if code != http.StatusOK || !bytes.Contains(body, []byte(`"health":"true"`)) {
		return fmt.Errorf("etcd /health: %d %s", code, body)
	}
	return nil
}

// createNodes registers the fake nodes kwok manages, as start-kwok.sh does.
// Their CPU and memory are fake too, and large: only the pod count (110,
// as a kubelet's default) limits what one node takes, so a test sizes its
// fleet with Options.Nodes alone (the scale benchmark's 2,000 pods).
func createNodes(ctx context.Context, kc kubernetes.Interface, n int) error {
	res := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("1000"),
		corev1.ResourceMemory: resource.MustParse("8Ti"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	for i := range n {
		name := fmt.Sprintf("kwok-node-%d", i)
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{fakeNodeAnnotation: "fake", "node.alpha.kubernetes.io/ttl": "0"},
				Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
					"kubernetes.io/arch": "amd64", "type": "kwok"},
			},
			// Nodes, unlike most objects, take their status on create.
			Status: corev1.NodeStatus{Allocatable: res, Capacity: res},
		}
		if _, err := kc.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %s: %w", name, err)
		}
	}
	return nil
}

// nodesReady is nil once every node is Ready and the node-lifecycle
// controller has lifted the taints that would keep pods off it.
func nodesReady(ctx context.Context, kc kubernetes.Interface, n int) error {
	nodes, err := kc.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	if len(nodes.Items) < n {
		return fmt.Errorf("%d of %d nodes registered", len(nodes.Items), n)
	}
	for _, node := range nodes.Items {
		ready := false
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			return fmt.Errorf("node %s not Ready", node.Name)
		}
		for _, taint := range node.Spec.Taints {
			if taint.Key == corev1.TaintNodeNotReady || taint.Key == corev1.TaintNodeUnreachable {
				return fmt.Errorf("node %s still has taint %s", node.Name, taint.Key)
			}
		}
	}
	return nil
}

// routeCRD reads the Route CRD from the github.com/openshift/api module the
// project builds against, so the tests see the same schema as the driver.
func routeCRD() (*unstructured.Unstructured, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/openshift/api")
	cmd.Dir = harness.RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			err = fmt.Errorf("%w: %s", err, exitErr.Stderr)
		}
		return nil, fmt.Errorf("find github.com/openshift/api module: %w", err)
	}
	modDir := strings.TrimSpace(string(out))
	if modDir == "" {
		return nil, errors.New("github.com/openshift/api is not downloaded: run `go mod download github.com/openshift/api`")
	}
	path := filepath.Join(modDir, "route", "v1", "zz_generated.crd-manifests", "routes.crd.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read Route CRD: %w", err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(js); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return obj, nil
}

func servesRoutes(disc discovery.DiscoveryInterface) error {
	list, err := disc.ServerResourcesForGroupVersion("route.openshift.io/v1")
	if err != nil {
		return err
	}
	for _, r := range list.APIResources {
		if r.Name == "routes" {
			return nil
		}
	}
	return errors.New("route.openshift.io/v1 has no routes resource yet")
}

// crdCreateDelay is how long kube-apiserver holds back creates of a CRD's
// objects after the CRD became Established (an HA guard in
// apiextensions-apiserver's customresource_handler.go: it sleeps 2 s).
const crdCreateDelay = 2 * time.Second

// routeCRDSettled is nil once the CRD has been Established long enough
// that creating Routes is no longer delayed, so the delay is paid once
// here rather than by a test's first Route. The condition's time has
// whole seconds, as the apiserver sees it too.
func routeCRDSettled(ctx context.Context, crds dynamic.ResourceInterface, name string) error {
	obj, err := crds.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	conds, _, err := unstructured.NestedSlice(obj.Object, "status", "conditions")
	if err != nil {
		return fmt.Errorf("CRD %s conditions: %w", name, err)
	}
	for _, c := range conds {
		cond, _ := c.(map[string]any)
		if cond["type"] != "Established" || cond["status"] != "True" {
			continue
		}
		ts, _ := cond["lastTransitionTime"].(string)
		at, err := time.Parse(time.RFC3339, ts)
		if err != nil {
			return fmt.Errorf("CRD %s Established time %q: %w", name, ts, err)
		}
		if wait := crdCreateDelay + 100*time.Millisecond - time.Since(at); wait > 0 {
			return fmt.Errorf("CRD %s Established at %s, %s ago", name, ts, time.Since(at))
		}
		return nil
	}
	return fmt.Errorf("CRD %s not Established", name)
}

// createVolumes creates StorageClass and the PV pool. The PVs are hostPath
// volumes under Dir: kwok never mounts them, and the controller-manager's
// hostPath deleter honours the Delete reclaim policy when a claim goes
// away. That deleter refuses paths that do not match "/tmp/.+", hence the
// "tmp" directory, which satisfies it wherever $TMPDIR points.
func (c *ControlPlane) createVolumes(ctx context.Context, kc kubernetes.Interface, n int) error {
	sc := &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: StorageClass},
		Provisioner:       "kubernetes.io/no-provisioner",
		ReclaimPolicy:     ptr.To(corev1.PersistentVolumeReclaimDelete),
		VolumeBindingMode: ptr.To(storagev1.VolumeBindingImmediate),
	}
	if _, err := kc.StorageV1().StorageClasses().Create(ctx, sc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create StorageClass %s: %w", StorageClass, err)
	}
	for i := range n {
		name := fmt.Sprintf("tf-test-pv-%d", i)
		path := filepath.Join(c.Dir, "tmp", name)
		if err := os.Mkdir(path, 0o755); err != nil {
			return fmt.Errorf("create PV dir: %w", err)
		}
		pv := &corev1.PersistentVolume{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeSpec{
				Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("10Gi")},
				AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
				StorageClassName:              StorageClass,
				PersistentVolumeSource: corev1.PersistentVolumeSource{
					HostPath: &corev1.HostPathVolumeSource{Path: path},
				},
			},
		}
		if _, err := kc.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create PV %s: %w", name, err)
		}
	}
	return nil
}
