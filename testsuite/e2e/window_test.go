package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// TestMaintenanceWindowsHoldAReleaseUntilOverridden: two prod tenants,
// one whose window is open now and one whose window is days away. The
// release cuts the first over and shows the second waiting, with when
// its window opens, serving its old version; ops override its window for
// an emergency fix and it is cut over too, the override recorded.
func TestMaintenanceWindowsHoldAReleaseUntilOverridden(t *testing.T) {
	b := startReleaseBench(t)
	image := b.pushDemo("v4", false)
	open, closed := tenantName("wo"), tenantName("wc")
	b.provision("prod", open, closed)

	now := time.Now().UTC()
	openWindow := fmt.Sprintf("daily %s-%s UTC", now.Add(-time.Hour).Format("15:04"), now.Add(2*time.Hour).Format("15:04"))
	day := now.AddDate(0, 0, 3).Weekday().String()[:3]
	closedWindow := day + " 03:00-04:00 UTC"
	code, body, _ := b.p.do(http.MethodPatch, "/v1/tenants/"+closed, map[string]any{"maintenanceWindow": "Sunday 03:00-04:00 UTC"})
	require.Equal(t, http.StatusBadRequest, code, body)
	require.Equal(t, "maintenanceWindow", body["field"])
	for name, w := range map[string]string{open: openWindow, closed: closedWindow} {
		code, body, _ := b.p.do(http.MethodPatch, "/v1/tenants/"+name, map[string]any{"maintenanceWindow": w})
		require.Equal(t, http.StatusOK, code, body)
		require.Equal(t, w, body["maintenanceWindow"])
	}
	parsed, err := spec.ParseWindow(closedWindow)
	require.NoError(t, err)
	_, want, _ := parsed.At(time.Now())

	id := b.startRelease(map[string]any{"image": image, "tenants": map[string]any{"names": []string{open, closed}}, "drain": "0s"})
	b.waitRelease(id, time.Minute, release.StateAwaitingPromotion)
	code, body, _ = b.p.doAs("developer-"+b.p.token, http.MethodPost, "/v1/releases/"+id+"/promote", nil)
	require.Equal(t, http.StatusOK, code, body)

	var st release.Release
	require.Eventually(t, func() bool {
		_, st = b.release(id)
		s := statuses(st)
		return s[open] == release.TenantUpdated && s[closed] == release.TenantWaitingWindow && st.NextWindowAt != nil
	}, 2*time.Minute, 100*time.Millisecond, "one cut over, one waiting for its window")
	require.Equal(t, release.StateRunning, st.State)
	require.True(t, want.Equal(*st.NextWindowAt), "the release says when the window opens: %s, want %s", st.NextWindowAt, want)
	for _, tn := range st.Tenants {
		if tn.Name == closed {
			require.True(t, want.Equal(*tn.WindowOpensAt))
			require.Contains(t, tn.Error, "outside its maintenance window ("+closedWindow+")")
		}
	}
	require.Equal(t, "v4", b.version(open))
	require.Equal(t, "v1", b.version(closed), "nothing changed outside the window")

	// Developers cannot override; ops can, and must say why.
	code, body, _ = b.p.doAs("developer-"+b.p.token, http.MethodPost, "/v1/releases/"+id+"/override-window", map[string]any{"reason": "hurry"})
	require.Equal(t, http.StatusForbidden, code, body)
	code, body, _ = b.p.do(http.MethodPost, "/v1/releases/"+id+"/override-window", map[string]any{"tenants": []string{open}, "reason": "CVE-2026-1234"})
	require.Equal(t, http.StatusConflict, code, body)
	require.Contains(t, body["error"], "is updated in release")
	code, body, _ = b.p.do(http.MethodPost, "/v1/releases/"+id+"/override-window", map[string]any{"tenants": []string{closed}, "reason": "CVE-2026-1234"})
	require.Equal(t, http.StatusOK, code, body)

	st = b.waitRelease(id, 2*time.Minute, release.StateCompleted, release.StatePaused)
	require.Equal(t, release.StateCompleted, st.State, st)
	require.Equal(t, release.TenantUpdated, statuses(st)[closed])
	require.Len(t, st.Overrides, 1)
	require.Equal(t, "CVE-2026-1234", st.Overrides[0].Reason)
	require.Equal(t, "v4", b.version(closed))

	// The audit trail has who set the windows and who overrode, and why.
	code, body, _ = b.p.do(http.MethodGet, "/v1/audit?tenant="+closed, nil)
	require.Equal(t, http.StatusOK, code, body)
	entries := body["entries"].([]any)
	require.Len(t, entries, 4, "the create, the refused PATCH, the PATCH and the override: %v", entries)
	require.Equal(t, "release.override-window", entries[3].(map[string]any)["action"], "an override names its tenant")
	configured := entries[2].(map[string]any)
	require.Equal(t, "tenant.configure", configured["action"])
	require.Equal(t, "maintenanceWindow "+strconv.Quote(closedWindow), configured["detail"])
	require.Equal(t, "refused", entries[1].(map[string]any)["outcome"])
	code, body, _ = b.p.do(http.MethodGet, "/v1/audit?action=release.override-window", nil)
	require.Equal(t, http.StatusOK, code, body)
	var overrides []map[string]any
	for _, e := range body["entries"].([]any) {
		if e := e.(map[string]any); e["release"] == id {
			overrides = append(overrides, e)
		}
	}
	require.Len(t, overrides, 3, "developer forbidden, refused for the updated tenant, accepted")
	require.Equal(t, "developer", overrides[0]["role"])
	require.Equal(t, "accepted", overrides[2]["outcome"])
	require.Equal(t, "CVE-2026-1234", overrides[2]["reason"])

	b.p.checkHistory(release.WorkflowID(id), "release-window-override")
	b.p.checkHistory(tenant.WorkflowID(closed), "tenant-window-override")
}
