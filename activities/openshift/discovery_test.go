package openshift

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/client-go/rest"
)

// New discovers what the cluster serves, as an API server answers
// discovery: a group version it serves is a resource list, one it does not
// is 404. A real OpenShift serves both groups; the integration tests'
// kube-apiserver serves routes (the CRD) only.
func TestNewDiscoversTheCluster(t *testing.T) {
	serve := func(groups ...string) *rest.Config {
		mux := http.NewServeMux()
		mux.HandleFunc("/version", func(w http.ResponseWriter, _ *http.Request) {
			w.Write([]byte(`{"major":"1","minor":"34","gitVersion":"v1.34.4"}`))
		})
		for _, g := range groups {
			mux.HandleFunc("/apis/"+g+"/v1", func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"` + g + `/v1","resources":[]}`))
			})
		}
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return &rest.Config{Host: srv.URL}
	}
	cfg := Config{Kubeconfig: "unused", NamespacePrefix: "tf-", VolumeSize: "1Gi"}
	log := slog.New(slog.DiscardHandler)
	ctx := context.Background()

	d, err := New(ctx, cfg, serve("route.openshift.io", "project.openshift.io"), log)
	require.NoError(t, err)
	require.NotNil(t, d.projects, "OpenShift: ProjectRequests")

	d, err = New(ctx, cfg, serve("route.openshift.io"), log)
	require.NoError(t, err)
	require.Nil(t, d.projects, "Kubernetes with the Route CRD: labelled Namespaces")

	_, err = New(ctx, cfg, serve(), log)
	require.ErrorContains(t, err, "serves no route.openshift.io/v1 Routes (TENANTFLOW_OPENSHIFT_KUBECONFIG=unused)")

	down := serve()
	down.Host = "http://127.0.0.1:1"
	_, err = New(ctx, cfg, down, log)
	require.ErrorContains(t, err, "does not answer (TENANTFLOW_OPENSHIFT_KUBECONFIG=unused)")
}
