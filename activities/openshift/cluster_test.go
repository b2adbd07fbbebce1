package openshift_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/tenantflow/tenantflow/activities/openshift"
	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/kube"
)

// One control plane serves every test of the package: it takes ~10 s to
// start, and tests keep apart by tenant name.
var (
	cpOnce sync.Once
	cp     *kube.ControlPlane
	cpErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if cp != nil {
		cp.Stop()
	}
	os.Exit(code)
}

// cluster returns the shared control plane, started on first use.
func cluster(t testing.TB) *kube.ControlPlane {
	t.Helper()
	kube.RequireTools(t)
	cpOnce.Do(func() {
		start := time.Now()
		cp, cpErr = kube.Start(kube.Options{PVs: 300})
		if cpErr == nil {
			cpErr = cp.ApplyRBAC(context.Background(), filepath.Join(harness.RepoRoot(), "deploy", "openshift", "rbac.yaml"))
		}
		fmt.Fprintf(os.Stderr, "control plane started in %s\n", time.Since(start).Round(time.Millisecond))
	})
	if cpErr != nil {
		t.Fatalf("control plane: %v", cpErr)
	}
	return cp
}

// workerConfig authenticates as the tenantflow-worker service account of
// deploy/openshift/rbac.yaml, so the driver has exactly the rights
// shipped there.
func workerConfig(t testing.TB, c *kube.ControlPlane) *rest.Config {
	t.Helper()
	cfg, _, err := c.ServiceAccount(context.Background(), "tenantflow", "tenantflow-worker")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// newDriver is the driver as the worker makes it, with the service
// account's rights.
func newDriver(t testing.TB, c *kube.ControlPlane, mod func(*openshift.Config)) *openshift.Driver {
	t.Helper()
	cfg := openshift.Config{Kubeconfig: c.Kubeconfig, NamespacePrefix: "tf-", RouteDomain: "apps.test", StorageClass: kube.StorageClass,
		VolumeSize: "1Gi", RolloutTimeout: 30 * time.Second, PollInterval: 100 * time.Millisecond, QPS: 100}
	if mod != nil {
		mod(&cfg)
	}
	d, err := openshift.New(context.Background(), cfg, workerConfig(t, c), harness.Logger(t))
	if err != nil {
		t.Fatalf("driver: %v", err)
	}
	return d
}
