package kube

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"
)

// logsKind is kwok's resource mapping a pod's containers to a log file.
const logsKind = "Logs"

//go:embed kwok-logs-crd.yaml
var logsCRD []byte

var logsGVR = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "logs"}

func createLogsCRD(ctx context.Context, crds dynamic.ResourceInterface) error {
	js, err := yaml.YAMLToJSON(logsCRD)
	if err != nil {
		return fmt.Errorf("parse kwok Logs CRD: %w", err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(js); err != nil {
		return fmt.Errorf("decode kwok Logs CRD: %w", err)
	}
	if _, err := crds.Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create kwok Logs CRD: %w", err)
	}
	return nil
}

func servesLogs(disc discovery.DiscoveryInterface) error {
	list, err := disc.ServerResourcesForGroupVersion(logsGVR.GroupVersion().String())
	if err != nil {
		return err
	}
	for _, r := range list.APIResources {
		if r.Name == logsGVR.Resource {
			return nil
		}
	}
	return errors.New("kwok.x-k8s.io/v1alpha1 has no logs resource yet")
}

// ServePodLogs makes the fake node serve a file as the logs of every
// container of the pod (namespace/pod): GET pods/log reads it through the
// apiserver as from a kubelet. It returns the file's path; write lines
// with AppendPodLog. kwok learns of the mapping by watch, a moment later:
// until then pods/log answers 400 "no logs found".
func (c *ControlPlane) ServePodLogs(ctx context.Context, namespace, pod string) (string, error) {
	dir := filepath.Join(c.Dir, "podlogs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create pod logs dir: %w", err)
	}
	path := filepath.Join(dir, namespace+"_"+pod+".log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		return "", fmt.Errorf("create %s: %w", path, err)
	}
	dyn, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return "", fmt.Errorf("dynamic client: %w", err)
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": logsGVR.GroupVersion().String(),
		"kind":       logsKind,
		"metadata":   map[string]any{"name": pod, "namespace": namespace},
		"spec":       map[string]any{"logs": []any{map[string]any{"logsFile": path, "follow": true}}},
	}}
	if _, err := dyn.Resource(logsGVR).Namespace(namespace).Create(ctx, obj, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create kwok Logs %s/%s: %w", namespace, pod, err)
	}
	return path, nil
}

// AppendPodLog appends one line to a file ServePodLogs returned, in the
// CRI log format a kubelet reads ("<RFC 3339 time> <stream> F <line>").
func AppendPodLog(path string, at time.Time, stream, line string) error {
	if strings.ContainsRune(line, '\n') {
		return fmt.Errorf("log line %q holds a newline", line)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := fmt.Fprintf(f, "%s %s F %s\n", at.UTC().Format(time.RFC3339Nano), stream, line)
	return errors.Join(werr, f.Close())
}
