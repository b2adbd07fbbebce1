# Tenantflow. `make run` runs everything locally; `make test` runs every test.
SHELL := /bin/bash
GO ?= go
TEMPORAL_CLI_VERSION := v1.5.1
CADDY_VERSION := v2.11.9
BIN := bin
TEST_FLAGS ?= -count=1 -timeout 30m

.PHONY: temporal-tools test-cluster run test unit bench bench-capacity bench-backups bench-move bench-scale bench-portal fuzz histories build demo-image postgres-image fmt vet lint lint-tools clean kube-tools

build: $(BIN)/tenantflow

$(BIN)/tenantflow: FORCE
	$(GO) build -o $@ ./cmd/tenantflow

# The pinned Temporal CLI serves the dev server and Web UI offline.
$(BIN)/temporal:
	GOBIN=$(CURDIR)/$(BIN) $(GO) install github.com/temporalio/cli/cmd/temporal@$(TEMPORAL_CLI_VERSION)

# The pinned Caddy `make run` serves each tenant at a stable
# http://<tenant>.localhost:8088 with, built from the module proxy once
# (~3 min cold), like the temporal CLI.
$(BIN)/caddy:
	GOBIN=$(CURDIR)/$(BIN) $(GO) install github.com/caddyserver/caddy/v2/cmd/caddy@$(CADDY_VERSION)

# The test control plane of the OpenShift driver's tests (kube-apiserver,
# controller-manager, scheduler, etcd, kwok), built from the module proxy
# once (~8-11 min cold) and cached outside the repository by version.
kube-tools:
	testsuite/kube/build-tools.sh >/dev/null

# The full Temporal server and its schema tool, for the tests against a
# PostgreSQL-backed cluster (testsuite/temporaltest.StartCluster): built from
# the module proxy once (~10 min cold) and cached outside the repository.
temporal-tools:
	tools/temporal/build-tools.sh >/dev/null

# The linters `make lint` runs (golangci-lint, the SDK's workflowcheck),
# built from the module proxy once (~6 min cold) and cached outside the
# repository by version, like kube-tools.
lint-tools:
	tools/lint/build-tools.sh >/dev/null

# The default template's image, built FROM scratch from the demo app.
demo-image: $(BIN)/tenantflow
	$(BIN)/tenantflow demo-image

# The postgres template's image (PostgreSQL 15 on Debian bookworm), made by
# debootstrap from Debian's archive once (~1 min cold, root needed), its
# root filesystem cached outside the repository by version like kube-tools;
# a run that finds the image in the engine does nothing.
postgres-image:
	tools/images/postgres/build.sh >/dev/null

# Dev server (UI http://127.0.0.1:8233) + worker + API (http://127.0.0.1:8080)
# + Caddy (tenants at http://<tenant>.localhost:8088), state under .data/;
# Ctrl-C stops all of it.
run: $(BIN)/temporal $(BIN)/caddy demo-image postgres-image
	$(BIN)/tenantflow dev

# Every test: the linters and the determinism check (lint), unit, workflow
# (SDK test env), integration against the real Docker Engine and a real
# Temporal dev server, replay of committed histories.
# With TENANTFLOW_REQUIRE_INTEGRATION=1 (CI) a missing dependency fails.
test: $(BIN)/temporal $(BIN)/caddy kube-tools temporal-tools vet lint
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) test $(TEST_FLAGS) ./...
	$(MAKE) --no-print-directory test-cluster
	$(MAKE) --no-print-directory fuzz FUZZTIME=500x

# The end-to-end tour (provision, a release under load with promote, the
# CLI's promote, decommission and restore) again, on the full Temporal server
# with PostgreSQL persistence and SQL visibility instead of the dev server:
# the same tests, parameterised by TENANTFLOW_TEMPORAL_SERVER.
CLUSTER_TESTS = TestProvisionTenantThroughAPI|TestReleaseUnderLoadDropsNoRequest|TestPromoteFromTheCLI|TestDecommissionKeepsTheDataAndRestoreBringsItBack
test-cluster: $(BIN)/temporal temporal-tools
	TENANTFLOW_TEMPORAL_SERVER=cluster $(GO) test $(TEST_FLAGS) -run '^($(CLUSTER_TESTS))$$' ./testsuite/e2e/

# Every fuzz target (its committed seeds also run in `go test`), each for
# FUZZTIME; a crasher is written to the package's testdata/fuzz/. FUZZTIME
# is a count of inputs (Nx), not a duration: with a duration, Go's fuzz
# coordinator (go1.26) can fail a target with a bare "context deadline
# exceeded" and no crasher when its workers are starved at the deadline
# (golang/go#75804; seen in make test on 2 cores).
FUZZTIME ?= 20000x
fuzz:
	@set -e; for f in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
	  pkg=$$(dirname $$f); \
	  for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "fuzz $$pkg $$name ($(FUZZTIME))"; \
	    out=$$($(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg 2>&1) || { echo "$$out"; exit 1; }; \
	  done; \
	done

# Every test that needs no server: the harnesses skip in short mode
# (Docker, Temporal, slapd, BIND, Caddy, ...), even in CI. Go's test cache
# is on: a package whose code did not change is not run again.
unit:
	$(GO) test -short ./...

vet:
	$(GO) vet ./...

# golangci-lint (.golangci.yml) over everything, and the Temporal SDK's
# determinism analyzer over the workflows (tools/lint/workflowcheck.config.yaml
# lists its explained exemptions). Both run; either failing fails.
lint: lint-tools
	@bin=$$(tools/lint/build-tools.sh); status=0; \
	  echo "golangci-lint run ./..."; \
	  $$bin/golangci-lint run --allow-serial-runners ./... || status=1; \
	  echo "workflowcheck ./workflows/..."; \
	  $$bin/workflowcheck -config tools/lint/workflowcheck.config.yaml -show-pos ./workflows/... || status=1; \
	  exit $$status

# Benchmarks with figures (orchestration overhead, …); see README.
bench: $(BIN)/temporal kube-tools
	$(GO) test -run '^$$' -bench '^Benchmark(Provision|Image|Release|Decommission|OpenShift|SuspendResume|CustomDomain)' -benchtime 5x -timeout 30m ./testsuite/e2e/
	$(GO) test -run '^$$' -bench '^BenchmarkAudit' -benchtime 2s ./internal/audit/
	$(GO) test -run '^$$' -bench '^BenchmarkCanaryGate$$' -benchtime 2x -timeout 30m ./testsuite/e2e/

# How many tenants one Docker host takes at once (TENANTFLOW_BENCH_TENANTS,
# 200 by default): time until all are active, and idle CPU per tenant; then
# a release to all of them under reads, and a batch decommissioned.
# The portal's customers page with 200 tenants, and `tenantflow tenants
# ls` with 1,000 (testsuite/webui/portal_bench_test.go).
bench-portal: $(BIN)/temporal
	set -o pipefail; $(GO) test -run '^$$' -bench '^BenchmarkPortalCustomers$$' -benchtime 100x -timeout 10m -v ./testsuite/webui/ | grep -v '^\s*harness.go'
	set -o pipefail; $(GO) test -run '^$$' -bench '^BenchmarkCLITenantsList$$' -benchtime 20x -timeout 10m -v ./testsuite/webui/ | grep -v '^\s*harness.go'

bench-capacity: $(BIN)/temporal
	$(GO) test -run '^$$' -bench '^BenchmarkHostCapacity$$' -benchtime 1x -timeout 60m -v ./testsuite/e2e/ | grep -v '^\s*harness.go'

# The fleet benchmarks (testsuite/e2e/move_bench_test.go, fleet_bench_test.go):
# a tenant with TENANTFLOW_BENCH_MOVE_MB (200) of data moved
# TENANTFLOW_BENCH_MOVES (10) times between two Docker hosts under load through
# Caddy (interruption p50/p95, total move time against cp -a of the same data,
# writes lost); a drain of 10 tenants under load; the evacuation of a killed
# host of 10 tenants (time to all serving, recovery points). Needs root,
# iproute2, dockerd, caddy, restic and rclone.
bench-move: $(BIN)/temporal
	set -o pipefail; $(GO) test -run '^$$' -bench 'MoveUnderLoad|DrainUnderLoad|Evacuation' -benchtime 1x -timeout 60m -v ./testsuite/e2e/ | grep -v '^\s*harness.go'

# The scale benchmark (testsuite/e2e/scale_bench_test.go): a fleet of
# TENANTFLOW_BENCH_SCALE_TENANTS (1000) OpenShift tenants on the test control
# plane, TENANTFLOW_BENCH_SCALE_PARALLEL (50) at a time, against the driver
# alone; a release across all of them under reads (GET p50/p99, list p99);
# the server's CPU per cut-over; worker and API memory; a batch
# decommissioned. Once on the dev server, once on the full server on
# PostgreSQL, one after the other.
bench-scale: $(BIN)/temporal kube-tools temporal-tools
	set -o pipefail; for server in dev cluster; do \
	  TENANTFLOW_TEMPORAL_SERVER=$$server $(GO) test -run '^$$' -bench '^BenchmarkScale$$' -benchtime 1x -timeout 120m -v ./testsuite/e2e/ | grep -v '^\s*harness.go' || exit 1; \
	done

# The backup benchmarks (testsuite/e2e/backup_bench_test.go): nightly
# backups of TENANTFLOW_BENCH_TENANTS tenants (20) of TENANTFLOW_BENCH_TENANT_MB
# (200) each through the API against a shell loop of the same restic
# commands, a first backup's throughput and a drill, requests served during
# a backup. Needs root, restic and the docker CLI; several GB under TMPDIR.
bench-backups: $(BIN)/temporal
	set -o pipefail; $(GO) test -run '^$$' -bench 'NightlyBackups|FirstBackupThroughput|RequestsDuringBackup' -benchtime 1x -timeout 60m -v ./testsuite/e2e/ | grep -v '^\s*harness.go'

# Record today's workflow histories from real runs into testsuite/histories
# (older recordings stay: they must still replay; see README).
histories: $(BIN)/temporal
	TENANTFLOW_RECORD_HISTORIES=1 $(GO) test -count=1 -run 'TestProvisionTenantThroughAPI|TestABatchQueuesForItsHost|TestPermanentFailureLeavesNoResidue|TestProvisionWithAllIntegrations|TestPushEventBuildsTheImageOnce|TestBuildRequestsAndFailures|TestBuildFromAGitRepository|TestDecommissionKeepsTheDataAndRestoreBringsItBack|TestRetentionEndDeletesTheKeptData|TestBackupFailingVerificationLeavesTheTenantServing|TestOpenShiftProvisionReleaseDecommission|TestScheduledBackupsWhileServing|TestRestoreActiveTenantToABackup|TestDecommissionThroughTheRepository|TestRollbackWithDataPutsTheRowsBack|TestOffsitePrunerAppliesTheRetentionOffsite|TestTenantsArePlacedAcrossDockerHosts|TestMoveATenantBetweenHosts|TestALostHostIsEvacuatedAndFencedOnReturn|TestDrainAHost|TestDriftIsReconciled|TestSuspendAndResumeWithTheRealServers|TestMaintenanceWindowsHoldAReleaseUntilOverridden|TestDecommissionASuspendedTenant|TestCanaryAnalysisRollsBackAFaultyImage|TestACustomDomainOverHTTPS|TestPlanChangeUnderLoad|TestSettingsChangeUnderLoad' ./testsuite/e2e/

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN)/tenantflow

FORCE:
