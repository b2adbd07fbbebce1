#!/usr/bin/env bash
# Builds the linters `make lint` runs from the Go module proxy:
# golangci-lint ($GOLANGCI_LINT_VERSION) and the Temporal SDK's workflowcheck
# determinism analyzer ($WORKFLOWCHECK_VERSION). `go install pkg@version`
# builds each from its own module's go.mod, so the project's go.mod gains
# none of their dependencies. A cold build takes a few minutes on two cores,
# so the binaries are cached outside the repository in a directory keyed by
# the versions, and a run that finds them both does nothing.
#
# Prints the directory on its last line (the Makefile runs the tools from it).
set -euo pipefail
GOLANGCI_LINT_VERSION=v2.15.0 WORKFLOWCHECK_VERSION=v0.6.0
dir=${TENANTFLOW_LINT_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/tenantflow/lint-golangci-$GOLANGCI_LINT_VERSION-workflowcheck-$WORKFLOWCHECK_VERSION}
mkdir -p "$dir"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath"

install() { # name package@version
  [ -x "$dir/$1" ] && return
  echo "lint tools: building $2" >&2
  local s=$SECONDS tmp
  tmp=$(mktemp -d)
  GOBIN=$tmp go install -ldflags "-s -w" "$2"
  mv "$tmp/$1" "$dir/$1"
  rmdir "$tmp"
  echo "lint tools: $1 built in $((SECONDS - s))s" >&2
}
install golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION
install workflowcheck go.temporal.io/sdk/contrib/tools/workflowcheck@$WORKFLOWCHECK_VERSION
echo "$dir"
