package openshift_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/tenantflow/tenantflow/activities/openshift"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/runtimes/runtimetest"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/testsuite/kube"
)

// The OpenShift driver keeps the runtime contract, on the test cluster
// (kwok nodes: pods become ready without running anything, so the suite
// checks the volumes' identities, not their data).
func TestConformance(t *testing.T) {
	_, d, kc := setup(t)
	runtimetest.Run(t, runtimetest.Runtime{
		Driver:      func(*testing.T) runtimes.Driver { return d },
		Environment: func(_ *testing.T, tenant string) spec.Environment { return environment(tenant) },
		Candidate: func(_ *testing.T, svc spec.Service, gen int, healthy bool) spec.Service {
			svc.Image, svc.Generation = "registry.test/demo-app:"+strconv.Itoa(gen+1), gen
			if !healthy {
				svc.Image = kube.UnreadyImage
			}
			return svc
		},
		Inventory: func(ctx context.Context, tenant string) (runtimetest.Inventory, error) {
			return inventory(ctx, kc, d.Namespace(tenant), tenant)
		},
		NoGeneration:     openshift.ErrRolloutFailed,
		RefusedForOthers: []string{"RemoveNetwork", "RetireService"},
	})
}

// inventory lists the tenant's objects in its project: its isolation
// policy (the network), its claims (the volumes) and its Deployments'
// pods (the instances, each named by Deployment and pod, so that a
// Deployment deleted under its pods shows). A project being deleted holds
// nothing any more.
func inventory(ctx context.Context, kc kubernetes.Interface, ns, tenant string) (runtimetest.Inventory, error) {
	inv := runtimetest.Inventory{Networks: map[string]string{}, Volumes: map[string]string{}}
	nsObj, err := kc.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) || err == nil && nsObj.DeletionTimestamp != nil {
		return inv, nil
	}
	if err != nil {
		return inv, err
	}
	sel := metav1.ListOptions{LabelSelector: openshift.LabelTenant + "=" + tenant}
	policies, err := kc.NetworkingV1().NetworkPolicies(ns).List(ctx, sel)
	if err != nil {
		return inv, err
	}
	for _, p := range policies.Items {
		if p.DeletionTimestamp == nil {
			inv.Networks[p.Name] = string(p.UID)
		}
	}
	claims, err := kc.CoreV1().PersistentVolumeClaims(ns).List(ctx, sel)
	if err != nil {
		return inv, err
	}
	for _, c := range claims.Items {
		if c.DeletionTimestamp == nil {
			inv.Volumes[c.Labels[openshift.LabelVolume]] = string(c.UID)
		}
	}
	deps, err := kc.AppsV1().Deployments(ns).List(ctx, sel)
	if err != nil {
		return inv, err
	}
	depUID := map[string]string{}
	for _, dep := range deps.Items {
		if dep.DeletionTimestamp == nil {
			depUID[dep.Name] = string(dep.UID)
		}
	}
	pods, err := kc.CoreV1().Pods(ns).List(ctx, sel)
	if err != nil {
		return inv, err
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		svc := p.Labels[openshift.LabelService]
		gen, err := strconv.Atoi(p.Labels[openshift.LabelGeneration])
		if err != nil {
			return inv, fmt.Errorf("pod %s/%s: generation %q: %w", ns, p.Name, p.Labels[openshift.LabelGeneration], err)
		}
		ready := false
		for _, c := range p.Status.Conditions {
			ready = ready || c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
		}
		inv.Instances = append(inv.Instances, runtimetest.Instance{Service: svc, Generation: gen,
			ID: "deployment " + depUID[svc] + " pod " + string(p.UID), State: string(p.Status.Phase), Serving: ready})
	}
	return inv, nil
}
