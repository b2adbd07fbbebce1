package release

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fleetOf is n tenants as a release records them mid-way, with every
// field a cut-over fills.
func fleetOf(n int) []Tenant {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	out := make([]Tenant, n)
	for i := range out {
		started, done := at.Add(time.Duration(i)*time.Second), at.Add(time.Duration(i)*time.Second+3*time.Second)
		out[i] = Tenant{Name: fmt.Sprintf("customer-%05d", i), Stage: PhaseProd, Wave: i/50 + 1, Status: TenantUpdated,
			From:      "registry.example.com/app@sha256:1111111111111111111111111111111111111111111111111111111111111111",
			To:        "registry.example.com/app@sha256:2222222222222222222222222222222222222222222222222222222222222222",
			StartedAt: &started, FinishedAt: &done, Host: fmt.Sprintf("host-%02d", i%40), CutoverMillis: 2900 + int64(i%300),
			Backup: fmt.Sprintf("20261206t1000%02dz-%d", i%60, i)}
	}
	return out
}

// A release of 10,000 tenants continues as new with an input well under
// Temporal's 2 MB payload limit (unpacked, its tenants alone are several
// megabytes), and the tenants come back as they were.
func TestTheContinueAsNewInputStaysSmallAtTenThousandTenants(t *testing.T) {
	ts := fleetOf(10000)
	raw, err := json.Marshal(ts)
	require.NoError(t, err)
	r := &rollout{in: Input{ID: "r1", Image: "img"}, state: Release{ID: "r1", Tenants: ts}}
	next, err := r.next()
	require.NoError(t, err)
	payload, err := json.Marshal(next)
	require.NoError(t, err)
	t.Logf("10,000 tenants: %d bytes as JSON, continue-as-new input %d bytes", len(raw), len(payload))
	require.Greater(t, len(raw), 2<<20, "unpacked, they would not fit")
	require.Less(t, len(payload), 1<<20)
	require.Nil(t, next.State.Tenants)
	back, err := unpackTenants(next.PackedTenants)
	require.NoError(t, err)
	require.Equal(t, ts, back)
	require.Len(t, r.state.Tenants, 10000, "the running state keeps them")
}

// Pages of tenants: in order, filtered by status, bounded.
func TestTenantPages(t *testing.T) {
	ts := fleetOf(250)
	ts[7].Status, ts[200].Status = TenantRolledBack, TenantRolledBack
	r := &rollout{state: Release{Tenants: ts}}
	p, err := r.page(TenantsPage{})
	require.NoError(t, err)
	require.Equal(t, 250, p.Total)
	require.Len(t, p.Tenants, 100)
	p, err = r.page(TenantsPage{Offset: 200, Limit: 100})
	require.NoError(t, err)
	require.Len(t, p.Tenants, 50)
	require.Equal(t, "customer-00200", p.Tenants[0].Name)
	p, err = r.page(TenantsPage{Status: TenantRolledBack})
	require.NoError(t, err)
	require.Equal(t, 2, p.Total)
	require.Equal(t, []string{"customer-00007", "customer-00200"}, []string{p.Tenants[0].Name, p.Tenants[1].Name})
	p, err = r.page(TenantsPage{Offset: 300})
	require.NoError(t, err)
	require.Empty(t, p.Tenants)
	_, err = r.page(TenantsPage{Limit: MaxTenantsPage + 1})
	require.Error(t, err)
}
