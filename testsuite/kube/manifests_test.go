package kube_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/tenantflow/tenantflow/testsuite/harness"
	"github.com/tenantflow/tenantflow/testsuite/kube"
)

// prometheusOperator is the release whose ServiceMonitor CRD the
// manifests are checked against (read from the Go module proxy).
const prometheusOperator = "github.com/prometheus-operator/prometheus-operator@v0.85.0"

// What ops apply to run Tenantflow itself on a cluster (deploy/openshift
// and deploy/kubernetes) is accepted by a real API server with strict
// server-side field validation: a misspelt field, a wrong type or an
// object the server does not know fails here, not at an operator's.
func TestDeployManifestsApply(t *testing.T) {
	kube.RequireTools(t)
	cp, err := kube.Start(kube.Options{Logf: t.Logf})
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	t.Cleanup(cp.Stop)
	ctx := context.Background()
	dyn, err := dynamic.NewForConfig(cp.Config)
	require.NoError(t, err)
	disc, err := discovery.NewDiscoveryClientForConfig(cp.Config)
	require.NoError(t, err)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))

	installServiceMonitorCRD(ctx, t, dyn)
	apply := func(file string, docs ...[]byte) {
		t.Helper()
		if file != "" {
			b, err := os.ReadFile(filepath.Join(harness.RepoRoot(), file))
			require.NoError(t, err)
			for _, d := range strings.Split(string(b), "\n---\n") {
				docs = append(docs, []byte(d))
			}
		}
		for _, doc := range docs {
			js, err := yaml.YAMLToJSON(doc)
			require.NoError(t, err)
			var obj unstructured.Unstructured
			require.NoError(t, obj.UnmarshalJSON(js), "%s", file)
			gvk := obj.GroupVersionKind()
			var m *meta.RESTMapping
			require.Eventually(t, func() bool {
				mapper.Reset()
				m, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
				return err == nil
			}, 30*time.Second, 200*time.Millisecond, "%s: the server knows %s (%v)", file, gvk, err)
			var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
			if m.Scope.Name() == meta.RESTScopeNameNamespace {
				ri = dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
			}
			_, err = ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, js, metav1.PatchOptions{
				FieldManager: "tenantflow-test", Force: ptrTo(true), FieldValidation: "Strict"})
			require.NoError(t, err, "%s: %s %s", file, gvk.Kind, obj.GetName())
		}
	}
	apply("deploy/openshift/rbac.yaml")
	// What the manifests reference, as the comments tell ops to create it.
	apply("", []byte(`apiVersion: v1
kind: Secret
metadata: {name: tenantflow-secrets, namespace: tenantflow}
stringData: {TENANTFLOW_CODEC_KEYS: "k1:AAAA", tokens.json: "{}"}`), []byte(`apiVersion: v1
kind: ConfigMap
metadata: {name: tenantflow-templates, namespace: tenantflow}
data: {light.yaml: "name: light"}`))
	apply("deploy/kubernetes/tenantflow.yaml")

	// A misspelt field is refused: the check above can fail.
	bad := []byte(`apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: typo, namespace: tenantflow}
spec: {minAvailabel: 1, selector: {matchLabels: {app: x}}}`)
	js, err := yaml.YAMLToJSON(bad)
	require.NoError(t, err)
	_, err = dyn.Resource(policyPDB).Namespace("tenantflow").Patch(ctx, "typo", types.ApplyPatchType, js,
		metav1.PatchOptions{FieldManager: "tenantflow-test", Force: ptrTo(true), FieldValidation: "Strict"})
	require.ErrorContains(t, err, "minAvailabel")
}

func ptrTo[T any](v T) *T { return &v }

// installServiceMonitorCRD creates the Prometheus Operator's
// ServiceMonitor CRD, read from its module, and waits until it is served.
func installServiceMonitorCRD(ctx context.Context, t *testing.T, dyn dynamic.Interface) {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", prometheusOperator).Output()
	require.NoError(t, err, "go mod download %s", prometheusOperator)
	var mod struct{ Dir string }
	require.NoError(t, json.Unmarshal(out, &mod))
	b, err := os.ReadFile(filepath.Join(mod.Dir, "example", "prometheus-operator-crd", "monitoring.coreos.com_servicemonitors.yaml"))
	require.NoError(t, err)
	js, err := yaml.YAMLToJSON(b)
	require.NoError(t, err)
	var crd unstructured.Unstructured
	require.NoError(t, crd.UnmarshalJSON(js))
	crds := dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	_, err = crds.Create(ctx, &crd, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got, err := crds.Get(ctx, crd.GetName(), metav1.GetOptions{})
		if err != nil {
			return false
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
				return true
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "the ServiceMonitor CRD is established")
}

var policyPDB = schema.GroupVersionResource{Group: "policy", Version: "v1", Resource: "poddisruptionbudgets"}
