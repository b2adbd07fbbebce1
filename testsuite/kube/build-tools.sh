#!/usr/bin/env bash
# Builds the test control plane for the OpenShift driver's tests from the Go
# module proxy: kube-apiserver, kube-controller-manager, kube-scheduler
# (Kubernetes $KUBE_VERSION, tools/kube), etcd ($ETCD_VERSION, tools/etcd) and
# kwok ($KWOK_VERSION, the fake node). A cold build takes ~11 minutes on two
# cores, so the binaries are cached outside the repository in a directory
# keyed by the versions, and a run that finds them all does nothing.
#
# Prints the directory on its last line; the tests find it through
# TENANTFLOW_KUBE_BIN (the Makefile sets it) or this same default.
set -euo pipefail
cd "$(dirname "$0")"
KUBE_VERSION=1.34.4 ETCD_VERSION=v3.6.4 KWOK_VERSION=v0.8.0
dir=${TENANTFLOW_KUBE_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/tenantflow/kube-v$KUBE_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION}
mkdir -p "$dir"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath"

minor=$(echo $KUBE_VERSION | cut -d. -f2)
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
for c in kube-apiserver kube-controller-manager kube-scheduler; do
  [ -x "$dir/$c" ] && continue
  echo "kube tools: building $c v$KUBE_VERSION" >&2
  s=$SECONDS
  (cd tools/kube && go build -ldflags "$ldflags" -o "$dir/$c.tmp" k8s.io/kubernetes/cmd/$c)
  mv "$dir/$c.tmp" "$dir/$c"
  echo "kube tools: $c built in $((SECONDS - s))s" >&2
done
if [ ! -x "$dir/etcd" ]; then
  echo "kube tools: building etcd $ETCD_VERSION" >&2
  (cd tools/etcd && go build -ldflags "-s -w" -o "$dir/etcd.tmp" go.etcd.io/etcd/server/v3)
  mv "$dir/etcd.tmp" "$dir/etcd"
fi
if [ ! -x "$dir/kwok" ]; then
  echo "kube tools: building kwok $KWOK_VERSION" >&2
  tmp=$(mktemp -d)
  GOBIN=$tmp go install -ldflags "-s -w" sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION
  mv "$tmp/kwok" "$dir/kwok"
  rmdir "$tmp"
fi
echo "$dir"
