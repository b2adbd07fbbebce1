//go:build tools

// Package tools pins the etcd server the test control plane stores in (the
// version Kubernetes 1.34 is tested with; kwok's watches need >= 3.5.13).
package tools

import _ "go.etcd.io/etcd/server/v3"
