package openshift

// Internal unit tests for what the kube-apiserver of the integration tests
// cannot serve: OpenShift's ProjectRequest path (played by fake clients
// that behave like OpenShift), the config validation and the Deployment
// rendering.

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	projectv1 "github.com/openshift/api/project/v1"
	projectfake "github.com/openshift/client-go/project/clientset/versioned/fake"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
)

const (
	testTenant = "acme"
	testNS     = "tf-acme"
	testOwner  = "0b0e2a3c-run-1"
	// requester is who OpenShift records as having asked for a project:
	// the worker's service account.
	requester = "system:serviceaccount:tenantflow:tenantflow-worker"
)

var namespacesGVR = corev1.SchemeGroupVersion.WithResource("namespaces")

func testConfig() Config {
	return Config{NamespacePrefix: "tf-", PollInterval: 10 * time.Millisecond, RolloutTimeout: time.Minute, VolumeSize: "1Gi"}
}

// newTestDriver returns a driver on fake clients; withProjects gives it a
// project API that acts like OpenShift's.
func newTestDriver(t *testing.T, withProjects bool) (*Driver, *kubefake.Clientset, *projectfake.Clientset) {
	t.Helper()
	kube := kubefake.NewClientset()
	d := &Driver{kube: kube, cfg: testConfig(), size: resource.MustParse("1Gi"), log: slog.New(slog.DiscardHandler)}
	if !withProjects {
		return d, kube, nil
	}
	projects := projectfake.NewClientset()
	projects.PrependReactor("create", "projectrequests", openshiftProjectRequests(kube))
	d.projects = projects
	return d, kube, projects
}

// openshiftProjectRequests answers a ProjectRequest the way OpenShift
// does: it makes the Namespace with the request's display name and
// description as annotations and no labels (a request cannot carry any),
// or refuses a name that is taken. The Namespace goes straight into the
// tracker so that kube's recorded actions stay the driver's own.
func openshiftProjectRequests(kube *kubefake.Clientset) k8stesting.ReactionFunc {
	return func(a k8stesting.Action) (bool, k8sruntime.Object, error) {
		req, ok := a.(k8stesting.CreateAction).GetObject().(*projectv1.ProjectRequest)
		if !ok {
			return true, nil, errors.New("projectrequests create without a ProjectRequest")
		}
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: req.Name, Annotations: map[string]string{
			"openshift.io/description":  req.Description,
			"openshift.io/display-name": req.DisplayName,
			"openshift.io/requester":    requester,
		}}}
		if err := kube.Tracker().Create(namespacesGVR, ns, ""); err != nil {
			if apierrors.IsAlreadyExists(err) {
				return true, nil, apierrors.NewAlreadyExists(projectv1.Resource("projectrequests"), req.Name)
			}
			return true, nil, err
		}
		return true, &projectv1.Project{ObjectMeta: *ns.ObjectMeta.DeepCopy()}, nil
	}
}

// actions lists the recorded actions of one verb on one resource.
func actions(all []k8stesting.Action, verb, res string) []k8stesting.Action {
	var out []k8stesting.Action
	for _, a := range all {
		if a.GetVerb() == verb && a.GetResource().Resource == res {
			out = append(out, a)
		}
	}
	return out
}

func projectRequests(t *testing.T, p *projectfake.Clientset) []*projectv1.ProjectRequest {
	t.Helper()
	var out []*projectv1.ProjectRequest
	for _, a := range actions(p.Actions(), "create", "projectrequests") {
		out = append(out, a.(k8stesting.CreateAction).GetObject().(*projectv1.ProjectRequest))
	}
	return out
}

func getNamespace(t *testing.T, kube *kubefake.Clientset) *corev1.Namespace {
	t.Helper()
	ns, err := kube.CoreV1().Namespaces().Get(context.Background(), testNS, metav1.GetOptions{})
	require.NoError(t, err)
	return ns
}

func requireOwned(t *testing.T, kube *kubefake.Clientset, owner string) {
	t.Helper()
	require.Equal(t, map[string]string{
		LabelManaged: managedBy, LabelTenant: testTenant, LabelOwner: owner,
	}, getNamespace(t, kube).Labels)
}

func requireNetworkPolicy(t *testing.T, kube *kubefake.Clientset) {
	t.Helper()
	np, err := kube.NetworkingV1().NetworkPolicies(testNS).Get(context.Background(), networkPolicyName, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, testTenant, np.Labels[LabelTenant])
}

func requireNotOurs(t *testing.T, err error) {
	t.Helper()
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app)
	require.Equal(t, runtimes.ErrResourceNotOurs, app.Type())
	require.True(t, app.NonRetryable(), "a namespace that is not ours must not be retried")
}

func TestProjectRequestCreatesLabelledProject(t *testing.T) {
	ctx := context.Background()
	d, kube, projects := newTestDriver(t, true)

	require.NoError(t, d.CreateNetwork(ctx, testTenant, testOwner))

	reqs := projectRequests(t, projects)
	require.Len(t, reqs, 1)
	require.Equal(t, testNS, reqs[0].Name)
	require.Equal(t, testTenant, reqs[0].DisplayName)
	require.Equal(t, describe(testTenant), reqs[0].Description)

	requireOwned(t, kube, testOwner)
	ns := getNamespace(t, kube)
	require.Equal(t, requester, ns.Annotations["openshift.io/requester"], "the project is OpenShift's, only labelled by the driver")
	requireNetworkPolicy(t, kube)

	// The project API made the namespace: kube was only asked to read and
	// label it.
	require.Empty(t, actions(kube.Actions(), "create", "namespaces"))
	require.Len(t, actions(kube.Actions(), "patch", "namespaces"), 1)

	// Idempotent: the project is found, not requested again.
	require.NoError(t, d.CreateNetwork(ctx, testTenant, testOwner))
	require.Len(t, projectRequests(t, projects), 1)
	require.Empty(t, actions(kube.Actions(), "create", "namespaces"))
	requireOwned(t, kube, testOwner)
	requireNetworkPolicy(t, kube)
}

func TestProjectAdoptedAfterCrashBeforeLabels(t *testing.T) {
	ctx := context.Background()
	d, kube, projects := newTestDriver(t, true)
	// An earlier attempt's request went through; it died before labelling.
	_, err := projects.ProjectV1().ProjectRequests().Create(ctx, &projectv1.ProjectRequest{
		ObjectMeta: metav1.ObjectMeta{Name: testNS}, DisplayName: testTenant, Description: describe(testTenant),
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Empty(t, getNamespace(t, kube).Labels)

	require.NoError(t, d.CreateNetwork(ctx, testTenant, testOwner))
	require.Len(t, projectRequests(t, projects), 1, "the existing project is adopted, not requested again")
	requireOwned(t, kube, testOwner)
	requireNetworkPolicy(t, kube)
}

func TestProjectOfSomeoneElseRefused(t *testing.T) {
	ctx := context.Background()
	d, kube, projects := newTestDriver(t, true)
	// Someone's own project that happens to have the tenant's name.
	require.NoError(t, kube.Tracker().Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS, Annotations: map[string]string{
		"openshift.io/description":  "Alice's sandbox",
		"openshift.io/display-name": "tf-acme",
		"openshift.io/requester":    "alice",
	}}}))

	requireNotOurs(t, d.CreateNetwork(ctx, testTenant, testOwner))
	require.Empty(t, projectRequests(t, projects))
	require.Empty(t, getNamespace(t, kube).Labels, "a foreign project must not be labelled")
	require.Empty(t, actions(kube.Actions(), "patch", "namespaces"))
	require.Empty(t, actions(kube.Actions(), "create", "networkpolicies"))
}

func TestProjectTakenBetweenGetAndRequest(t *testing.T) {
	ctx := context.Background()
	d, kube, projects := newTestDriver(t, true)
	// The first look finds nothing; by the time the request arrives,
	// someone else's project has the name and OpenShift answers
	// AlreadyExists.
	missedOnce := false
	kube.PrependReactor("get", "namespaces", func(k8stesting.Action) (bool, k8sruntime.Object, error) {
		if missedOnce {
			return false, nil, nil
		}
		missedOnce = true
		require.NoError(t, kube.Tracker().Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: testNS,
			Annotations: map[string]string{"openshift.io/description": "Alice's sandbox", "openshift.io/requester": "alice"}}}))
		return true, nil, apierrors.NewNotFound(corev1.Resource("namespaces"), testNS)
	})

	requireNotOurs(t, d.CreateNetwork(ctx, testTenant, testOwner))
	require.Len(t, projectRequests(t, projects), 1)
	require.Empty(t, getNamespace(t, kube).Labels)
}

func TestProjectOfAnotherOwnerRefused(t *testing.T) {
	ctx := context.Background()
	d, kube, projects := newTestDriver(t, true)
	require.NoError(t, d.CreateNetwork(ctx, testTenant, "run-a"))

	requireNotOurs(t, d.CreateNetwork(ctx, testTenant, "run-b"))
	require.Len(t, projectRequests(t, projects), 1)
	requireOwned(t, kube, "run-a")
}

func TestProjectWithoutProjectAPI(t *testing.T) {
	ctx := context.Background()
	d, kube, _ := newTestDriver(t, false)

	require.NoError(t, d.CreateNetwork(ctx, testTenant, testOwner))
	creates := actions(kube.Actions(), "create", "namespaces")
	require.Len(t, creates, 1)
	requireOwned(t, kube, testOwner)
	require.Equal(t, describe(testTenant), getNamespace(t, kube).Annotations["openshift.io/description"])
	requireNetworkPolicy(t, kube)

	require.NoError(t, d.CreateNetwork(ctx, testTenant, testOwner))
	require.Len(t, actions(kube.Actions(), "create", "namespaces"), 1, "an existing namespace is not created again")
	requireNotOurs(t, d.CreateNetwork(ctx, testTenant, "run-b"))
}

var allEnv = []string{EnvKubeconfig, EnvInCluster, EnvNamespacePrefix, EnvRouteDomain, EnvStorageClass, EnvVolumeSize, EnvRolloutTimeout}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		c := testConfig()
		c.Kubeconfig = "/etc/tenantflow/kubeconfig"
		c.RouteDomain = "apps.example.com."
		return c
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []string // variables the error names; none: valid
	}{
		{"valid", func(*Config) {}, nil},
		{"in cluster", func(c *Config) { c.Kubeconfig, c.InCluster = "", true }, nil},
		{"no prefix", func(c *Config) { c.NamespacePrefix = "" }, nil},
		{"both sources", func(c *Config) { c.InCluster = true }, []string{EnvKubeconfig, EnvInCluster}},
		{"bad volume size", func(c *Config) { c.VolumeSize = "lots" }, []string{EnvVolumeSize}},
		{"zero volume size", func(c *Config) { c.VolumeSize = "0" }, []string{EnvVolumeSize}},
		{"bad route domain", func(c *Config) { c.RouteDomain = "Not_A.domain" }, []string{EnvRouteDomain}},
		{"long prefix", func(c *Config) { c.NamespacePrefix = "This-Is-Way-Too-Long-" }, []string{EnvNamespacePrefix}},
		{"negative timeout", func(c *Config) { c.RolloutTimeout = -time.Second }, []string{EnvRolloutTimeout}},
		{"every fault at once", func(c *Config) {
			c.InCluster, c.VolumeSize, c.RouteDomain, c.NamespacePrefix = true, "lots", "Not_A.domain", "This-Is-Way-Too-Long-"
		}, []string{EnvKubeconfig, EnvInCluster, EnvVolumeSize, EnvRouteDomain, EnvNamespacePrefix}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			err := c.Validate()
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, env := range allEnv {
				if slices.Contains(tc.want, env) {
					require.ErrorContains(t, err, env)
				} else {
					require.NotContains(t, err.Error(), env, "only the bad settings are named")
				}
			}
		})
	}

	t.Run("disabled", func(t *testing.T) {
		c := Config{NamespacePrefix: "This-Is-Way-Too-Long-", RouteDomain: "Not_A.domain", VolumeSize: "lots", RolloutTimeout: -time.Second}
		require.False(t, c.Enabled())
		require.NoError(t, c.Validate(), "a disabled driver is not checked")
	})
}

func TestRenderDeployment(t *testing.T) {
	d, _, _ := newTestDriver(t, false)
	svc := spec.Service{
		Name: "app", Image: "registry.test/demo-app:3", Generation: 3,
		Command: []string{"serve", "--port=8080"},
		Env:     map[string]string{"DB_PASSWORD": "s3cret-pw"},
		Ports:   []spec.Port{{Name: "http", Container: 8080, Public: true}},
		HealthCheck: &spec.HealthCheck{HTTP: &spec.HTTPCheck{Path: "/healthz", Port: 8080},
			StartPeriod: spec.Duration(30 * time.Second), Interval: spec.Duration(2 * time.Second)},
		Resources: spec.Resources{Memory: "64Mi", CPUs: 0.5},
	}
	dep := d.deployment(testTenant, testOwner, svc, 0)

	require.Equal(t, "3", dep.Spec.Template.Labels[LabelGeneration])
	require.Equal(t, testTenant, dep.Labels[LabelTenant])
	require.Equal(t, testOwner, dep.Labels[LabelOwner])
	require.Equal(t, appsv1.RollingUpdateDeploymentStrategyType, dep.Spec.Strategy.Type)
	ru := dep.Spec.Strategy.RollingUpdate
	require.NotNil(t, ru)
	require.Equal(t, 0, ru.MaxUnavailable.IntValue(), "the old pod serves until the new one is ready")
	require.Equal(t, 1, ru.MaxSurge.IntValue())

	require.Len(t, dep.Spec.Template.Spec.Containers, 1)
	c := dep.Spec.Template.Spec.Containers[0]
	require.Equal(t, svc.Command, c.Args, "a template command replaces the image's CMD, keeping its ENTRYPOINT")
	require.Empty(t, c.Command)
	require.Empty(t, c.Env, "env values are secrets: they come from the Secret")
	require.Len(t, c.EnvFrom, 1)
	require.NotNil(t, c.EnvFrom[0].SecretRef)
	require.Equal(t, "app-env", c.EnvFrom[0].SecretRef.Name)

	mem, cpu := c.Resources.Limits[corev1.ResourceMemory], c.Resources.Limits[corev1.ResourceCPU]
	require.Zero(t, mem.Cmp(resource.MustParse("64Mi")), "memory limit %s", mem.String())
	require.Zero(t, cpu.Cmp(resource.MustParse("500m")), "cpu limit %s", cpu.String())

	require.NotNil(t, c.ReadinessProbe)
	require.NotNil(t, c.ReadinessProbe.HTTPGet)
	require.Equal(t, "/healthz", c.ReadinessProbe.HTTPGet.Path)
	require.EqualValues(t, 2, c.ReadinessProbe.PeriodSeconds)
	require.NotNil(t, c.StartupProbe)
	require.EqualValues(t, 2, c.StartupProbe.PeriodSeconds)
	require.GreaterOrEqual(t, c.StartupProbe.FailureThreshold, int32(15), "30s start period at 2s intervals")

	// A new generation is a new pod template.
	svc.Generation = 4
	next := d.deployment(testTenant, testOwner, svc, 0)
	require.NotEqual(t, dep.Spec.Template.Annotations[AnnotationSpec], next.Spec.Template.Annotations[AnnotationSpec])
}

// The startup probe must be patient for the whole start period, whatever
// the interval (rounded up to whole seconds by the probe).
func TestRenderStartupProbeCoversStartPeriod(t *testing.T) {
	d, _, _ := newTestDriver(t, false)
	for _, tc := range []struct{ start, interval time.Duration }{
		{30 * time.Second, 2 * time.Second},
		{31 * time.Second, 2 * time.Second},
		{10 * time.Second, 3 * time.Second},
		{90 * time.Second, 0}, // default interval, 1s
		{5 * time.Second, 500 * time.Millisecond},
		{7 * time.Second, 2500 * time.Millisecond},
	} {
		svc := spec.Service{Name: "app", Image: "registry.test/app:1", HealthCheck: &spec.HealthCheck{
			Command: []string{"check"}, StartPeriod: spec.Duration(tc.start), Interval: spec.Duration(tc.interval)}}
		dep := d.deployment(testTenant, testOwner, svc, 0)
		p := dep.Spec.Template.Spec.Containers[0].StartupProbe
		require.NotNil(t, p, "start %s interval %s", tc.start, tc.interval)
		patience := time.Duration(p.FailureThreshold) * time.Duration(p.PeriodSeconds) * time.Second
		require.GreaterOrEqual(t, patience, tc.start, "start %s interval %s: %d x %ds", tc.start, tc.interval, p.FailureThreshold, p.PeriodSeconds)
	}
}
