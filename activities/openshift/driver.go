// Package openshift runs tenant environments on an OpenShift (or plain
// Kubernetes) cluster: one project per tenant holding a Secret, a
// Deployment and a Service per service, PersistentVolumeClaims for its
// volumes and a Route for its public port. Like the Docker driver, every
// object has a deterministic name and tenantflow.io/* labels, so each
// operation finds what an earlier attempt made instead of making it twice,
// and ops find all of a tenant's objects with one selector:
//
//	oc get all,pvc,secret,route,networkpolicy -A -l tenantflow.io/tenant=acme
package openshift

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	projectv1 "github.com/openshift/api/project/v1"
	projectclient "github.com/openshift/client-go/project/clientset/versioned"
	routeclient "github.com/openshift/client-go/route/clientset/versioned"
	"go.temporal.io/sdk/temporal"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/tenantflow/tenantflow/activities/runtimes"
)

// Labels and annotations put on everything Tenantflow creates.
const (
	LabelManaged    = "app.kubernetes.io/managed-by" // = tenantflow
	LabelTenant     = "tenantflow.io/tenant"
	LabelService    = "tenantflow.io/service"
	LabelVolume     = "tenantflow.io/volume"
	LabelOwner      = "tenantflow.io/owner" // the provisioning (workflow run) that made it
	LabelGeneration = "tenantflow.io/generation"
	AnnotationSpec  = "tenantflow.io/spec" // hash of the rendered service
	// AnnotationReplicas remembers a stopped Deployment's replica count.
	AnnotationReplicas = "tenantflow.io/replicas"
	// AnnotationReleased marks a project whose services and network are
	// gone but whose volumes are kept (a decommissioned tenant within its
	// retention): ops see why it is still there.
	AnnotationReleased = "tenantflow.io/released"
	managedBy          = "tenantflow"
)

// ErrRolloutFailed is the failure type of a rollout the cluster gave up on
// (its progress deadline passed), or of a rollback that found no
// ReplicaSet of the generation to go back to. The failure types both
// drivers share are the contract's (runtimes.ErrServiceUnhealthy, …).
const ErrRolloutFailed = "RolloutFailed"

// Driver implements runtimes.Driver on an OpenShift or Kubernetes cluster.
type Driver struct {
	kube     kubernetes.Interface
	routes   routeclient.Interface
	projects projectclient.Interface // nil: the cluster has no project API
	cfg      Config
	size     resource.Quantity
	server   string
	log      *slog.Logger
}

// RESTConfig loads the cluster's client configuration from the settings.
func (c Config) RESTConfig() (*rest.Config, error) {
	if c.InCluster {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvInCluster, err)
		}
		return rc, nil
	}
	rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", EnvKubeconfig, c.Kubeconfig, err)
	}
	return rc, nil
}

// New connects to the cluster and discovers what it serves, so a wrong
// kubeconfig or a cluster without Routes is a start-up error naming the
// setting rather than a failing activity later. A cluster that serves
// project.openshift.io gets a ProjectRequest per tenant (the way OpenShift
// lets a non-admin make projects); any other gets a labelled Namespace.
func New(ctx context.Context, cfg Config, rc *rest.Config, log *slog.Logger) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if rc == nil {
		var err error
		if rc, err = cfg.RESTConfig(); err != nil {
			return nil, err
		}
	}
	rc = rest.CopyConfig(rc)
	if cfg.QPS > 0 {
		// client-go's default (5 per second) would queue twenty tenants
		// provisioned at once (about 20 requests each) for a minute.
		rc.QPS, rc.Burst = float32(cfg.QPS), 2*cfg.QPS
	}
	if rc.UserAgent == "" {
		rc.UserAgent = "tenantflow-worker"
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for %s: %w", rc.Host, err)
	}
	routes, err := routeclient.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("route client for %s: %w", rc.Host, err)
	}
	if cfg.PollInterval <= 0 {
		// Rollouts are followed by watch; polling is the fallback.
		cfg.PollInterval = time.Second
	}
	if cfg.RolloutTimeout == 0 {
		cfg.RolloutTimeout = 5 * time.Minute
	}
	if log == nil {
		log = slog.Default()
	}
	d := &Driver{kube: kube, routes: routes, cfg: cfg, size: resource.MustParse(cfg.VolumeSize), server: rc.Host, log: log}

	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// served asks discovery for an API path: 404 means not served.
	served := func(path string) (bool, error) {
		err := kube.Discovery().RESTClient().Get().AbsPath(path).Do(dctx).Error()
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}
	if _, err := served("/version"); err != nil {
		return nil, fmt.Errorf("cluster %s does not answer (%s): %w", rc.Host, cfg.source(), err)
	}
	routed, err := served("/apis/route.openshift.io/v1")
	if err == nil && !routed {
		return nil, fmt.Errorf("cluster %s serves no route.openshift.io/v1 Routes (%s): use OpenShift, or install the Route CRD from github.com/openshift/api", rc.Host, cfg.source())
	}
	projects, perr := served("/apis/project.openshift.io/v1")
	if err = errors.Join(err, perr); err != nil {
		return nil, fmt.Errorf("cluster %s: discovery (%s): %w", rc.Host, cfg.source(), err)
	}
	if projects {
		if d.projects, err = projectclient.NewForConfig(rc); err != nil {
			return nil, fmt.Errorf("project client for %s: %w", rc.Host, err)
		}
	}
	log.Info("openshift runtime ready", "server", rc.Host, "projects", d.projects != nil)
	return d, nil
}

func (c Config) source() string {
	if c.InCluster {
		return EnvInCluster
	}
	return EnvKubeconfig + "=" + c.Kubeconfig
}

// Server is the cluster's API address.
func (d *Driver) Server() string { return d.server }

// Namespace is the tenant's project.
func (d *Driver) Namespace(tenant string) string { return d.cfg.NamespacePrefix + tenant }

// Selector selects every object of the tenant (of one owner unless "").
func Selector(tenant, owner string) string {
	s := labels.Set{LabelTenant: tenant}
	if owner != "" {
		s[LabelOwner] = owner
	}
	return s.String()
}

func ownedLabels(tenant, owner string) map[string]string {
	l := map[string]string{LabelManaged: managedBy, LabelTenant: tenant}
	if owner != "" {
		l[LabelOwner] = owner
	}
	return l
}

// checkOwner refuses an object of the tenant's name that another
// provisioning (or something else entirely) made.
func checkOwner(kind, name, tenant, owner string, l map[string]string) error {
	if l[LabelTenant] != tenant || (owner != "" && l[LabelOwner] != owner) {
		msg := fmt.Sprintf("%s %s exists but was not made by this provisioning of %s (owner %q): is the tenant already deployed?",
			kind, name, tenant, l[LabelOwner])
		return temporal.NewNonRetryableApplicationError(msg, runtimes.ErrResourceNotOurs, nil)
	}
	return nil
}

func describe(tenant string) string { return "Tenantflow tenant " + tenant }

// objectClient is the part of a typed client an idempotent create needs.
type objectClient[T any] interface {
	Create(context.Context, T, metav1.CreateOptions) (T, error)
	Get(context.Context, string, metav1.GetOptions) (T, error)
}

// createOrAdopt creates want in namespace ns or, when an object of its
// name exists (an earlier attempt made it), gets that one and checks that
// it is the tenant's, of this provisioning: a retry never makes a second
// object, and never takes over someone else's. existed tells which.
func createOrAdopt[T metav1.Object](ctx context.Context, c objectClient[T], want T, kind, ns, tenant, owner string) (obj T, existed bool, err error) {
	ref := ns + "/" + want.GetName()
	obj, err = c.Create(ctx, want, metav1.CreateOptions{})
	switch {
	case err == nil:
		return obj, false, nil
	case !apierrors.IsAlreadyExists(err):
		// Wrapped with %w: apierrors.IsInvalid still sees the cause.
		return obj, false, fmt.Errorf("create %s %s: %w", kind, ref, err)
	}
	if obj, err = c.Get(ctx, want.GetName(), metav1.GetOptions{}); err != nil {
		return obj, true, fmt.Errorf("get %s %s: %w", kind, ref, err)
	}
	return obj, true, checkOwner(kind, ref, tenant, owner, obj.GetLabels())
}

// CreateNetwork makes the tenant's project and its isolation: a
// NetworkPolicy that admits traffic from the project itself and from the
// OpenShift router only.
func (d *Driver) CreateNetwork(ctx context.Context, tenant, owner string) error {
	ns := d.Namespace(tenant)
	cur, err := d.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if cur, err = d.createProject(ctx, tenant, owner); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("get namespace %s: %w", ns, err)
	}
	if cur.DeletionTimestamp != nil {
		// A purged tenant of the same name: retried until it is gone.
		return fmt.Errorf("namespace %s is still being deleted", ns)
	}
	if cur.Labels[LabelTenant] == "" && d.projects != nil && cur.Annotations["openshift.io/description"] == describe(tenant) {
		// Our ProjectRequest went through but the labels did not (a
		// crash in between): adopt it.
		cur, err = d.labelNamespace(ctx, cur, tenant, owner)
		if err != nil {
			return err
		}
	}
	if err := checkOwner("namespace", ns, tenant, owner, cur.Labels); err != nil {
		return err
	}
	if _, released := cur.Annotations[AnnotationReleased]; released {
		// A restore takes the kept project back into use.
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:null}}}`, AnnotationReleased)
		if _, err := d.kube.CoreV1().Namespaces().Patch(ctx, ns, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("take namespace %s back into use: %w", ns, err)
		}
	}
	if err := d.ensureNetworkPolicy(ctx, tenant, owner); err != nil {
		return err
	}
	d.log.InfoContext(ctx, "project ready", "tenant", tenant, "namespace", ns)
	return nil
}

func (d *Driver) createProject(ctx context.Context, tenant, owner string) (*corev1.Namespace, error) {
	ns := d.Namespace(tenant)
	if d.projects == nil {
		created, err := d.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: ns, Labels: ownedLabels(tenant, owner),
			Annotations: map[string]string{"openshift.io/description": describe(tenant)},
		}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return d.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		}
		if err != nil {
			return nil, fmt.Errorf("create namespace %s: %w", ns, err)
		}
		return created, nil
	}
	_, err := d.projects.ProjectV1().ProjectRequests().Create(ctx, &projectv1.ProjectRequest{
		ObjectMeta: metav1.ObjectMeta{Name: ns}, DisplayName: tenant, Description: describe(tenant),
	}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("request project %s: %w", ns, err)
	}
	cur, err := d.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get project %s: %w", ns, err)
	}
	if cur.Labels[LabelTenant] != "" || cur.Annotations["openshift.io/description"] != describe(tenant) {
		return cur, nil // checkOwner decides
	}
	return d.labelNamespace(ctx, cur, tenant, owner)
}

// labelNamespace puts the tenant's labels on a project: a ProjectRequest
// cannot carry them.
func (d *Driver) labelNamespace(ctx context.Context, ns *corev1.Namespace, tenant, owner string) (*corev1.Namespace, error) {
	patch := metav1.ObjectMeta{Labels: ownedLabels(tenant, owner)}
	b, err := jsonMerge(map[string]any{"metadata": patch})
	if err != nil {
		return nil, err
	}
	out, err := d.kube.CoreV1().Namespaces().Patch(ctx, ns.Name, "application/merge-patch+json", b, metav1.PatchOptions{})
	if err != nil {
		return nil, fmt.Errorf("label project %s: %w", ns.Name, err)
	}
	return out, nil
}

const networkPolicyName = "tenantflow-isolation"

func (d *Driver) ensureNetworkPolicy(ctx context.Context, tenant, owner string) error {
	ns := d.Namespace(tenant)
	np := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: networkPolicyName, Labels: ownedLabels(tenant, owner)},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}},
				{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{
					MatchLabels: map[string]string{"network.openshift.io/policy-group": "ingress"}}}}},
			},
		},
	}
	_, err := d.kube.NetworkingV1().NetworkPolicies(ns).Create(ctx, np, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create network policy in %s: %w", ns, err)
	}
	return nil
}

// CreateVolumes makes a PersistentVolumeClaim per volume, named after it.
func (d *Driver) CreateVolumes(ctx context.Context, tenant, owner string, volumes []string) error {
	ns := d.Namespace(tenant)
	for _, v := range volumes {
		l := ownedLabels(tenant, owner)
		l[LabelVolume] = v
		pvc := &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: v, Labels: l},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: d.size}},
			},
		}
		if d.cfg.StorageClass != "" {
			pvc.Spec.StorageClassName = &d.cfg.StorageClass
		}
		if _, _, err := createOrAdopt(ctx, d.kube.CoreV1().PersistentVolumeClaims(ns), pvc, "volume claim", ns, tenant, owner); err != nil {
			return err
		}
	}
	return nil
}

// RemoveNetwork deletes the tenant's project. A project that still holds
// volume claims (a decommissioned tenant within retention) loses only its
// network policy and is marked released: RemoveVolumes deletes it with the
// last claim, so the data never goes with the network.
func (d *Driver) RemoveNetwork(ctx context.Context, tenant, owner string) error {
	ns := d.Namespace(tenant)
	cur, err := d.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get namespace %s: %w", ns, err)
	}
	if cur.DeletionTimestamp != nil {
		return nil
	}
	if err := checkOwner("namespace", ns, tenant, owner, cur.Labels); err != nil {
		return err
	}
	claims, err := d.liveClaims(ctx, tenant, "")
	if err != nil {
		return err
	}
	if len(claims) > 0 {
		if err := d.kube.NetworkingV1().NetworkPolicies(ns).Delete(ctx, networkPolicyName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete network policy of %s: %w", ns, err)
		}
		patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"true"}}}`, AnnotationReleased)
		if _, err := d.kube.CoreV1().Namespaces().Patch(ctx, ns, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("mark namespace %s released: %w", ns, err)
		}
		d.log.InfoContext(ctx, "project kept for its volumes", "tenant", tenant, "namespace", ns, "claims", len(claims))
		return nil
	}
	return d.deleteNamespace(ctx, tenant, ns)
}

func (d *Driver) deleteNamespace(ctx context.Context, tenant, ns string) error {
	policy := metav1.DeletePropagationBackground
	err := d.kube.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{PropagationPolicy: &policy})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete namespace %s: %w", ns, err)
	}
	d.log.InfoContext(ctx, "project deleted", "tenant", tenant, "namespace", ns)
	return nil
}

// liveClaims lists the tenant's claims that are not being deleted.
func (d *Driver) liveClaims(ctx context.Context, tenant, owner string) ([]corev1.PersistentVolumeClaim, error) {
	ns := d.Namespace(tenant)
	list, err := d.kube.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{LabelSelector: Selector(tenant, owner)})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list volume claims of %s: %w", ns, err)
	}
	var out []corev1.PersistentVolumeClaim
	for _, c := range list.Items {
		if c.DeletionTimestamp == nil {
			out = append(out, c)
		}
	}
	return out, nil
}

// RemoveVolumes deletes the tenant's claims and so their data: the volumes
// a decommission kept get their original reclaim policy back first, so the
// storage layer deletes the storage too. Only a tenant that goes away has
// its volumes removed (a failed provisioning, the end of retention), so
// the project goes with them, and with it whatever an incomplete teardown
// left in it.
func (d *Driver) RemoveVolumes(ctx context.Context, tenant, owner string) error {
	ns := d.Namespace(tenant)
	claims, err := d.liveClaims(ctx, tenant, owner)
	if err != nil {
		return err
	}
	if err := d.releaseVolumes(ctx, tenant, claims); err != nil {
		return err
	}
	for _, c := range claims {
		if err := d.kube.CoreV1().PersistentVolumeClaims(ns).Delete(ctx, c.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete volume claim %s/%s: %w", ns, c.Name, err)
		}
	}
	cur, err := d.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get namespace %s: %w", ns, err)
	}
	if cur.DeletionTimestamp != nil || checkOwner("namespace", ns, tenant, owner, cur.Labels) != nil {
		return nil
	}
	return d.deleteNamespace(ctx, tenant, ns)
}

func jsonMerge(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode patch: %w", err)
	}
	return b, nil
}
