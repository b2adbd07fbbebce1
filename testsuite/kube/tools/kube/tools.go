//go:build tools

// Package tools pins the Kubernetes control plane the OpenShift driver's
// tests run against. It is its own module: k8s.io/kubernetes needs the
// staging replaces, which must never reach Tenantflow's go.mod.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
