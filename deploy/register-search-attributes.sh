#!/usr/bin/env bash
# Registers the search attributes Tenantflow's workflows keep current, on a
# real cluster (the dev server gets them from `tenantflow dev`). The worker
# refuses to start without them and prints this same command.
# Usage: deploy/register-search-attributes.sh <namespace> [temporal CLI flags…]
set -euo pipefail
ns=${1:?namespace}; shift
temporal operator search-attribute create --namespace "$ns" "$@" \
  --type Keyword --name TenantId --name TenantState --name Stage --name Release --name Image
