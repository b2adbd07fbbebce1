package cli

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/workflows/hosts"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// hostA is host-a as GET /v1/hosts shows it.
func hostA(now time.Time) map[string]any {
	return map[string]any{
		"name": "host-a", "docker": "tcp://10.0.0.1:2376", "address": "10.0.0.1", "state": hosts.StateCordoned, "reason": "cordoned by ops: disk",
		"capacity": hosts.Resources{MilliCPU: 4000, MemoryBytes: 8 << 30}, "labels": map[string]string{"zone": "z1", "rack": "r2"},
		"reservations": map[string]hosts.Reservation{
			"acme":   {Tenant: "acme", Owner: "run-1", Need: hosts.Resources{MilliCPU: 1000, MemoryBytes: 512 << 20}, At: now.Add(-2 * time.Hour)},
			"globex": {Tenant: "globex", Owner: "run-2", Need: hosts.Resources{MilliCPU: 500, MemoryBytes: 128 << 20}, At: now.Add(-3 * time.Minute)},
		},
		"reserved": map[string]any{"cpus": 1.5, "memory": "640Mi"}, "free": map[string]any{"cpus": 2.5, "memory": "7552Mi"},
		"tenants": []string{"acme", "globex"}, "worker": map[string]any{"queue": "tenantflow-host-host-a", "polling": true},
		"registeredAt": now.Add(-48 * time.Hour), "updatedAt": now,
	}
}

func TestHostsLsAndGet(t *testing.T) {
	api := newFakeAPI(t)
	now := time.Now()
	api.on("GET /v1/hosts", answer(200, map[string]any{"hosts": []any{hostA(now)}}))
	api.on("GET /v1/hosts/host-a", answer(200, hostA(now)))

	r := api.cli(nil, false, "hosts", "ls")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"NAME    STATE     ZONE  TENANTS  FREE           CAPACITY     WORKER   REASON",
		"host-a  cordoned  z1    2        2.5cpu 7552Mi  4cpu 8192Mi  polling  cordoned by ops: disk",
	}, lines(r.out))

	r = api.cli(nil, false, "hosts", "get", "host-a")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Contains(t, r.out, "labels:    rack=r2, zone=z1\n")
	require.Contains(t, r.out, "reserved:  1.5cpu 640Mi\n")
	require.Equal(t, []string{
		"TENANT  RESERVED      SINCE",
		"acme    1cpu 512Mi    2h",
		"globex  0.5cpu 128Mi  3m",
	}, lines(r.out)[len(lines(r.out))-3:])

	r = api.cli(nil, false, "hosts", "get", "host-b")
	require.Equal(t, ExitNotFound, r.code, r.err)
}

// Cordon is an Update (an Idempotency-Key); drain and evacuate start
// workflows and say how to follow them; moves shows each tenant's.
func TestHostsActions(t *testing.T) {
	api := newFakeAPI(t)
	now := time.Now()
	api.on("POST /v1/hosts/host-a/cordon", answer(200, hostA(now)))
	api.on("POST /v1/hosts/host-a/drain", answer(202, map[string]any{"host": "host-a", "workflowId": "drain:host-a", "maxParallel": 3}))
	api.on("POST /v1/hosts/host-b/evacuate", answer(409, map[string]any{"error": "host host-b is active: drain it"}))
	ms := int64(840)
	api.on("GET /v1/hosts/host-a/drain", answer(200, hosts.Drain{Host: "host-a", By: "ops", Reason: "kernel", MaxParallel: 3, Phase: "running", StartedAt: now,
		Tenants: []hosts.DrainTenant{{Tenant: "acme", Outcome: "moved", To: "host-b", InterruptionMs: &ms}, {Tenant: "globex", Outcome: "pending"}}}))

	r := api.cli(nil, false, "hosts", "cordon", "host-a", "--reason", "disk")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "host host-a: cordoned\n", r.out)
	req := api.requests("POST /v1/hosts/host-a/cordon")[0]
	require.Equal(t, map[string]any{"reason": "disk"}, req.body)
	require.NotEmpty(t, req.idempotencyKey)

	r = api.cli(nil, false, "hosts", "drain", "host-a", "--max-parallel", "3", "--reason", "kernel")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Contains(t, r.out, "follow it: tenantflow hosts moves host-a\n")
	require.Equal(t, map[string]any{"reason": "kernel", "maxParallel": float64(3)}, api.requests("POST /v1/hosts/host-a/drain")[0].body)

	r = api.cli(nil, false, "hosts", "evacuate", "host-b")
	require.Equal(t, ExitRefused, r.code, r.err)
	require.Contains(t, r.err, "drain it")

	r = api.cli(nil, false, "hosts", "moves", "host-a")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"TENANT  OUTCOME  TO      INTERRUPTION  ERROR",
		"acme    moved    host-b  840ms         -",
		"globex  pending  -       -             -",
	}, lines(r.out)[len(lines(r.out))-3:])
}

func TestTenantBackups(t *testing.T) {
	api := newFakeAPI(t)
	now := time.Now()
	off := now.Add(-90 * time.Minute)
	api.on("POST /v1/tenants/acme/backups", answer(202, map[string]any{"tenant": "acme", "id": "b-7", "queued": true, "waitingFor": "a cut-over", "status": "queued"}))
	api.on("GET /v1/tenants/acme/backups", answer(200, tenant.Backups{Running: "b-7", List: []tenant.BackupRecord{
		{ID: "b-5", Reason: "scheduled", CreatedAt: now.Add(-26 * time.Hour), Bytes: 3 << 20, Added: 1536, OffsiteAt: &off,
			Drill: &tenant.DrillRecord{Outcome: "passed"}},
		{ID: "b-6", Reason: "on-demand", CreatedAt: now.Add(-2 * time.Hour), Bytes: 3 << 20, Added: 12, OffsiteError: "rclone: connection refused"},
	}}))

	r := api.cli(nil, false, "tenants", "backup", "acme", "--reason", "before the migration")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "backup b-7 of acme: queued (waits for a cut-over)\nsee it: tenantflow tenants backups acme\n", r.out)
	require.Equal(t, map[string]any{"reason": "before the migration"}, api.requests("POST /v1/tenants/acme/backups")[0].body)

	r = api.cli(nil, false, "tenants", "backups", "acme")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"ID   REASON     AGE  SIZE     ADDED    OFF-SITE                    DRILL",
		"b-5  scheduled  26h  3.0 MiB  1.5 KiB  1h ago                      passed",
		"b-6  on-demand  2h   3.0 MiB  12 B     rclone: connection refused  -",
		"",
		"running:  b-7",
	}, lines(r.out))
}
