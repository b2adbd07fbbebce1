package release

import (
	"maps"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
)

// A release's course, its phases and each tenant's part: what the tables
// allow and refuse, without the SDK.
func TestReleaseStateMachines(t *testing.T) {
	for _, c := range []struct {
		from, to State
		ok       bool
	}{
		{StateRunning, StatePaused, true},
		{StatePaused, StateRunning, true},
		{StateRunning, StateAwaitingPromotion, true},
		{StateAwaitingPromotion, StateRunning, true}, // promoted
		{StateAwaitingPromotion, StateNotPromoted, true},
		{StatePaused, StateAborted, true},
		{StatePaused, StateCompleted, false}, // a paused release resumes first
		{StateCompleted, StateRunning, false},
		{StateAborted, StatePaused, false},
		{StateRunning, StateRunning, false},
	} {
		_, err := c.from.To(c.to)
		require.Equal(t, c.ok, err == nil, "%s → %s: %v", c.from, c.to, err)
	}
	for _, s := range []State{StateCompleted, StateAborted, StateNotPromoted} {
		require.True(t, s.Final(), s)
	}
	for _, s := range []State{StateRunning, StatePaused, StateAwaitingPromotion} {
		require.False(t, s.Final(), s)
	}

	_, err := PhaseStaging.To(PhaseProd)
	require.NoError(t, err)
	_, err = PhaseProd.To(PhaseStaging)
	require.ErrorContains(t, err, `release phase: "prod" may not move to "staging"`)

	for _, c := range []struct {
		from, to TenantStatus
		ok       bool
	}{
		{tenantNew, TenantPending, true},
		{tenantNew, TenantSkipped, true},
		{TenantPending, TenantUpdating, true},
		{TenantUpdating, TenantRolledBack, true},
		{TenantUpdated, TenantReverted, true},
		{TenantRolledBack, TenantReverted, false}, // only an updated tenant is put back
		{TenantPending, TenantUpdated, false},     // never without a cut-over
		{TenantReverted, TenantUpdating, false},
	} {
		_, err := c.from.To(c.to)
		require.Equal(t, c.ok, err == nil, "%q → %q: %v", c.from, c.to, err)
	}
}

// TenantStatuses (what GET …/tenants?status= accepts) names every status
// a tenant's part can reach, and nothing else.
func TestTenantStatusesListsEveryReachableStatus(t *testing.T) {
	reached := map[TenantStatus]bool{}
	for from, to := range tenantMoves {
		if from != tenantNew {
			reached[from] = true
		}
		for _, s := range to {
			reached[s] = true
		}
	}
	require.ElementsMatch(t, slices.Collect(maps.Keys(reached)), TenantStatuses)
}
