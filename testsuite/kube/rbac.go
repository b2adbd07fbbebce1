package kube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"
)

// ApplyRBAC creates the objects of an RBAC manifest (deploy/openshift/
// rbac.yaml: Namespace, ServiceAccount, ClusterRole, ClusterRoleBinding) as
// an admin would; existing objects are left as they are.
func (c *ControlPlane) ApplyRBAC(ctx context.Context, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	kc, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		switch meta.Kind {
		case "Namespace":
			var o corev1.Namespace
			if err = yaml.UnmarshalStrict([]byte(doc), &o); err == nil {
				_, err = kc.CoreV1().Namespaces().Create(ctx, &o, metav1.CreateOptions{})
			}
		case "ServiceAccount":
			var o corev1.ServiceAccount
			if err = yaml.UnmarshalStrict([]byte(doc), &o); err == nil {
				_, err = kc.CoreV1().ServiceAccounts(o.Namespace).Create(ctx, &o, metav1.CreateOptions{})
			}
		case "ClusterRole":
			var o rbacv1.ClusterRole
			if err = yaml.UnmarshalStrict([]byte(doc), &o); err == nil {
				_, err = kc.RbacV1().ClusterRoles().Create(ctx, &o, metav1.CreateOptions{})
			}
		case "ClusterRoleBinding":
			var o rbacv1.ClusterRoleBinding
			if err = yaml.UnmarshalStrict([]byte(doc), &o); err == nil {
				_, err = kc.RbacV1().ClusterRoleBindings().Create(ctx, &o, metav1.CreateOptions{})
			}
		default:
			return fmt.Errorf("%s: unexpected kind %q", path, meta.Kind)
		}
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("%s %s: %w", path, meta.Kind, err)
		}
	}
	return nil
}

// ServiceAccount returns a client configuration that authenticates as the
// service account (a TokenRequest token valid for an hour), and writes it
// as a kubeconfig file into Dir, whose path it also returns: what ops
// hand the worker as TENANTFLOW_OPENSHIFT_KUBECONFIG.
func (c *ControlPlane) ServiceAccount(ctx context.Context, namespace, name string) (*rest.Config, string, error) {
	kc, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return nil, "", err
	}
	tok, err := kc.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name,
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		return nil, "", fmt.Errorf("token for %s/%s: %w", namespace, name, err)
	}
	cfg := &rest.Config{Host: c.Server, BearerToken: tok.Status.Token, TLSClientConfig: rest.TLSClientConfig{CAFile: c.CAFile}}
	kcfg := clientcmdapi.NewConfig()
	kcfg.Clusters["test"] = &clientcmdapi.Cluster{Server: c.Server, CertificateAuthority: c.CAFile}
	kcfg.AuthInfos[name] = &clientcmdapi.AuthInfo{Token: tok.Status.Token}
	kcfg.Contexts["test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: name}
	kcfg.CurrentContext = "test"
	path := filepath.Join(c.Dir, namespace+"-"+name+".kubeconfig")
	if err := clientcmd.WriteToFile(*kcfg, path); err != nil {
		return nil, "", fmt.Errorf("write kubeconfig: %w", err)
	}
	return cfg, path, nil
}
