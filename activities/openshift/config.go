package openshift

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/internal/config"
)

// Environment variables, named in every validation error so the operator
// sees the setting to fix.
const (
	EnvKubeconfig      = "TENANTFLOW_OPENSHIFT_KUBECONFIG"
	EnvInCluster       = "TENANTFLOW_OPENSHIFT_IN_CLUSTER"
	EnvNamespacePrefix = "TENANTFLOW_OPENSHIFT_NAMESPACE_PREFIX"
	EnvRouteDomain     = "TENANTFLOW_OPENSHIFT_ROUTE_DOMAIN"
	EnvStorageClass    = "TENANTFLOW_OPENSHIFT_STORAGE_CLASS"
	EnvVolumeSize      = "TENANTFLOW_OPENSHIFT_VOLUME_SIZE"
	EnvRolloutTimeout  = "TENANTFLOW_OPENSHIFT_ROLLOUT_TIMEOUT"
	EnvQPS             = "TENANTFLOW_OPENSHIFT_QPS"
)

// Config says which cluster runs OpenShift tenants and how their objects
// are named. Set Kubeconfig or InCluster to enable the driver.
type Config struct {
	// Kubeconfig is the path of a kubeconfig file (its current context is
	// used); InCluster uses the pod's service account instead.
	Kubeconfig string
	InCluster  bool
	// NamespacePrefix makes a tenant's project name: <prefix><tenant>.
	NamespacePrefix string
	// RouteDomain, when set, makes each tenant's Route host
	// <tenant>.<RouteDomain>; empty lets OpenShift generate the host.
	RouteDomain string
	// StorageClass of the tenants' PersistentVolumeClaims (empty: the
	// cluster's default class) and their size.
	StorageClass string
	VolumeSize   string
	// RolloutTimeout bounds a Deployment rollout whose services carry no
	// health check (a health check gives its own budget).
	RolloutTimeout time.Duration
	// PollInterval is how often a rollout is checked while waiting, when
	// its watch does not report first.
	PollInterval time.Duration
	// QPS limits the worker's requests to the API server (bursts of twice
	// as many); 0 keeps the client's own limit.
	QPS int
}

// Register binds the settings to flags and TENANTFLOW_OPENSHIFT_* variables.
func (c *Config) Register(s *config.Set) {
	s.String(&c.Kubeconfig, "openshift-kubeconfig", EnvKubeconfig, "", "kubeconfig of the OpenShift (or Kubernetes) cluster for tenants whose runtime is openshift")
	s.Bool(&c.InCluster, "openshift-in-cluster", EnvInCluster, false, "use the service account of the pod the worker runs in instead of a kubeconfig")
	s.String(&c.NamespacePrefix, "openshift-namespace-prefix", EnvNamespacePrefix, "tf-", "prefix of each tenant's project: <prefix><tenant>")
	s.String(&c.RouteDomain, "openshift-route-domain", EnvRouteDomain, "", "tenant Route hosts are <tenant>.<domain> (empty: OpenShift generates them)")
	s.String(&c.StorageClass, "openshift-storage-class", EnvStorageClass, "", "StorageClass of tenant volumes (empty: the cluster default)")
	s.String(&c.VolumeSize, "openshift-volume-size", EnvVolumeSize, "1Gi", "size requested for each tenant volume")
	s.Int(&c.QPS, "openshift-qps", EnvQPS, 100, "requests per second the worker sends the API server at most (bursts of twice as many)")
	s.Duration(&c.RolloutTimeout, "openshift-rollout-timeout", EnvRolloutTimeout, 5*time.Minute, "longest a rollout of services without a health check may take")
}

// Enabled reports whether the driver is configured.
func (c Config) Enabled() bool { return c.Kubeconfig != "" || c.InCluster }

// Validate reports every bad setting by its variable name; a disabled
// driver is not checked.
func (c Config) Validate() error {
	if !c.Enabled() {
		return nil
	}
	var errs []error
	if c.Kubeconfig != "" && c.InCluster {
		errs = append(errs, fmt.Errorf("set %s or %s, not both", EnvKubeconfig, EnvInCluster))
	}
	// A namespace name is a DNS label of at most 63 characters: the
	// prefix and the longest tenant name (40, see api) must fit in it.
	if p := c.NamespacePrefix; p != "" && (!spec.IsDNSLabel(strings.TrimSuffix(p, "-")+"x", 63) || len(p) > 10) {
		errs = append(errs, fmt.Errorf("%s %q must be at most 10 characters that start a DNS label (e.g. tf-)", EnvNamespacePrefix, p))
	}
	if d := strings.TrimSuffix(c.RouteDomain, "."); d != "" {
		for _, l := range strings.Split(d, ".") {
			if !spec.IsDNSLabel(l, 63) {
				errs = append(errs, fmt.Errorf("%s %q is not a DNS name", EnvRouteDomain, c.RouteDomain))
				break
			}
		}
	}
	if q, err := resource.ParseQuantity(c.VolumeSize); err != nil || q.Sign() <= 0 {
		errs = append(errs, fmt.Errorf("%s %q is not a positive quantity (e.g. 1Gi)", EnvVolumeSize, c.VolumeSize))
	}
	if c.QPS < 0 {
		errs = append(errs, fmt.Errorf("%s %d is negative", EnvQPS, c.QPS))
	}
	if c.RolloutTimeout < 0 {
		errs = append(errs, fmt.Errorf("%s %s is negative", EnvRolloutTimeout, c.RolloutTimeout))
	}
	return errors.Join(errs...)
}
