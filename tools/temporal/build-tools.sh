#!/usr/bin/env bash
# Builds the full Temporal server (temporal-server) and its schema tool
# (temporal-sql-tool) from the Go module proxy, for the tests that run
# Tenantflow against a production-like cluster with PostgreSQL persistence
# and SQL visibility (testsuite/temporaltest.StartCluster). `go install
# pkg@version` builds each from the server's own go.mod, so the project's
# module gains none of its thousands of packages. A cold build takes ~10
# minutes on two cores: the binaries and the server's PostgreSQL schema
# files are cached outside the repository in a directory keyed by the
# version, and a run that finds them does nothing.
#
# Prints the directory on its last line.
set -euo pipefail
TEMPORAL_SERVER_VERSION=v1.32.1 # the newest known to build with this Go
dir=${TENANTFLOW_TEMPORAL_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/tenantflow/temporal-server-$TEMPORAL_SERVER_VERSION}
mkdir -p "$dir"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -trimpath -buildvcs=false"

install() { # name package
  [ -x "$dir/$1" ] && return
  echo "temporal tools: building $2@$TEMPORAL_SERVER_VERSION" >&2
  local s=$SECONDS tmp
  tmp=$(mktemp -d)
  GOBIN=$tmp go install -ldflags "-s -w" "$2@$TEMPORAL_SERVER_VERSION"
  mv "$tmp/$(basename "$2")" "$dir/$1"
  rm -rf "$tmp"
  echo "temporal tools: $1 built in $((SECONDS - s))s" >&2
}
install temporal-server go.temporal.io/server/cmd/server
install temporal-sql-tool go.temporal.io/server/cmd/tools/sql

if [ ! -d "$dir/schema/postgresql" ]; then
  src=$(go mod download -json "go.temporal.io/server@$TEMPORAL_SERVER_VERSION" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  mkdir -p "$dir/schema"
  cp -r "$src/schema/postgresql" "$dir/schema/"
  chmod -R u+w "$dir/schema"
fi
echo "$dir"
