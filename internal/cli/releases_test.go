package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

const newImage = "registry.test/tenantflow/demo-app@sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

// rel is release r1 as its workflow reports it, its progress counted from
// its tenants.
func rel(state release.State, phase release.Phase, wave int, ts ...release.Tenant) release.Release {
	r := release.Release{ID: "r1", Image: newImage, State: state, Phase: phase, Wave: wave, Tenants: ts,
		StartedAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Progress: flow.Progress{Total: len(ts)}}
	for _, t := range ts {
		switch t.Status {
		case release.TenantPending, release.TenantUpdating, release.TenantWaitingWindow:
		default:
			r.Progress.Done++
		}
		if t.Status == release.TenantFailed || t.Status == release.TenantRolledBack {
			r.Failures++
		}
	}
	return r
}

func part(name string, stage release.Phase, wave int, status release.TenantStatus) release.Tenant {
	t := release.Tenant{Name: name, Stage: stage, Wave: wave, Status: status, From: demoImage, To: newImage}
	if status == release.TenantUpdated {
		t.CutoverMillis = 812
	}
	return t
}

// updating is a tenant in the middle of its cut-over, as GET
// /v1/tenants/{name} shows it.
func updating(name string, done int, step string) tenant.Tenant {
	st := acme()
	st.Name, st.State, st.Progress = name, tenant.StateUpdating, flow.Progress{Done: done, Total: 5, Step: step}
	return st
}

// stagingThenPromotion is a release up to its promotion: it lists its
// staging tenant (prod's are listed once promoted) and cuts it over.
func stagingThenPromotion() []any {
	return []any{
		rel(release.StateRunning, release.PhaseStaging, 1, part("acme-test", "staging", 1, "pending")),
		rel(release.StateRunning, release.PhaseStaging, 1, part("acme-test", "staging", 1, "updating")),
		rel(release.StateRunning, release.PhaseStaging, 1, part("acme-test", "staging", 1, "updating")),
		rel(release.StateAwaitingPromotion, release.PhaseStaging, 1, part("acme-test", "staging", 1, "updated")),
	}
}

// In a script, watch prints a line per change and stops, exit 0, once
// staging is done and the release awaits promotion.
func TestReleaseWatchPlainLines(t *testing.T) {
	api := newFakeAPI(t)
	api.on("GET /v1/releases/r1", sequence(stagingThenPromotion()...))
	api.on("GET /v1/tenants/acme-test", sequence(updating("acme-test", 1, "StartService"), updating("acme-test", 3, "SwitchRoute")))
	r := api.cli(nil, false, "releases", "watch", "r1")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"release r1: running · phase staging · wave 1 [0/1]",
		"acme-test  staging  wave 1   pending",
		"acme-test  staging  wave 1   updating        step 1/5 StartService",
		"acme-test  staging  wave 1   updating        step 3/5 SwitchRoute",
		"release r1: awaiting-promotion · phase staging · wave 1 [1/1]",
		"acme-test  staging  wave 1   updated         cut over in 812ms",
		"tenants: updated 1",
		"release r1: staging done (updated 1), awaiting promotion: tenantflow releases promote r1 --reason …",
	}, lines(r.out))
	require.Empty(t, r.err)
}

// --until-end watches on through the promotion, to the end: exit 0 when
// it completed, 6 when tenants failed or it was aborted or paused.
func TestReleaseWatchEndings(t *testing.T) {
	done := rel(release.StateCompleted, release.PhaseProd, 3, part("acme-test", "staging", 1, "updated"), part("acme", "prod", 2, "updated"), part("globex", "prod", 3, "unchanged"))
	failed := part("globex", "prod", 3, "rolled-back")
	failed.Error = "new instance never became healthy within 2m0s"
	withFailure := rel(release.StateCompleted, release.PhaseProd, 3, part("acme-test", "staging", 1, "updated"), part("acme", "prod", 2, "updated"), failed)
	paused := rel(release.StatePaused, release.PhaseProd, 3, part("acme-test", "staging", 1, "updated"), part("acme", "prod", 2, "updated"), failed)
	paused.PauseReason = "1 tenant(s) failed, over the threshold of 0 (last: globex: new instance never became healthy within 2m0s)"
	aborted := rel(release.StateAborted, release.PhaseProd, 2, part("acme-test", "staging", 1, "updated"), part("acme", "prod", 2, "reverted"), part("globex", "prod", 3, "skipped"))
	stagingFailed := rel(release.StateAwaitingPromotion, release.PhaseStaging, 1, part("acme-test", "staging", 1, "rolled-back"))
	stagingFailed.StagingFailed = true
	for _, tc := range []struct {
		name     string
		answers  []any
		untilEnd bool
		code     int
		last     string
	}{
		{"completed", append(stagingThenPromotion(), done), true, ExitOK,
			"release r1 completed: updated 2 · unchanged 1"},
		{"completed with a failure", append(stagingThenPromotion(), withFailure), true, ExitUnsuccessful,
			"release r1 completed with 1 failure(s): updated 2 · rolled-back 1"},
		{"paused", []any{paused}, false, ExitUnsuccessful,
			"release r1 paused: " + paused.PauseReason + "; then: tenantflow releases resume|abort r1 --reason …"},
		{"paused, until the end", []any{paused, paused, aborted}, true, ExitUnsuccessful,
			"release r1 was aborted: updated 1 · skipped 1 · reverted 1"},
		{"prod only: nothing to stage", []any{rel(release.StateAwaitingPromotion, release.PhaseStaging, 0)}, false, ExitOK,
			"release r1: staging done (no staging tenants), awaiting promotion: tenantflow releases promote r1 --reason …"},
		{"staging failed", []any{stagingFailed}, false, ExitUnsuccessful,
			"release r1: staging failed (rolled-back 1); abort it: tenantflow releases abort r1 --reason …"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t)
			api.on("GET /v1/releases/r1", sequence(tc.answers...))
			args := []string{"releases", "watch", "r1"}
			if tc.untilEnd {
				args = append(args, "--until-end")
			}
			r := api.cli(nil, false, args...)
			require.Equal(t, tc.code, r.code, r.out+r.err)
			out := lines(r.out)
			require.Equal(t, tc.last, out[len(out)-1])
			require.Empty(t, r.err, "the watch says how it ended on stdout, nothing more on stderr")
		})
	}
}

// On a terminal the display is redrawn in place: a progress bar, the
// counts, a line per tenant, each cut to the terminal's width.
func TestReleaseWatchRedrawsOnATerminal(t *testing.T) {
	api := newFakeAPI(t)
	api.on("GET /v1/releases/r1", sequence(stagingThenPromotion()...))
	api.on("GET /v1/tenants/acme-test", answer(200, updating("acme-test", 2, "StartService")))
	r := api.cli(nil, true, "releases", "watch", "r1")
	require.Equal(t, ExitOK, r.code, r.err)
	require.True(t, strings.HasPrefix(r.out, hideCursor), "the cursor is hidden while drawing")
	require.True(t, strings.HasSuffix(r.out, showCursor), "and shown again at the end")
	draws := strings.Split(strings.TrimPrefix(r.out, hideCursor), "\x1b[4A\r\x1b[J")
	require.Len(t, draws, 4, "one drawing per answer, each over the last (4 lines)")
	require.Equal(t, "release r1: running · phase staging · wave 1\n"+
		"░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░ 0/1   0%\n"+
		"tenants: pending 1\n"+
		"acme-test  staging  wave 1   pending\n", draws[0])
	require.Contains(t, draws[1], "acme-test  staging  wave 1   updating        step 2/5 StartService\n")
	require.Equal(t, "release r1: awaiting-promotion · phase staging · wave 1\n"+
		"██████████████████████████████ 1/1 100%\n"+
		"tenants: updated 1\n"+
		"acme-test  staging  wave 1   updated         cut over in 812ms\n"+
		"release r1: staging done (updated 1), awaiting promotion: tenantflow releases promote r1 --reason …\n"+
		showCursor, draws[3])
}

// A terminal too small for every tenant shows those under way and those
// that went wrong first, and says how many it left out; lines never wrap.
func TestDisplayFitsTheTerminal(t *testing.T) {
	var ts []release.Tenant
	for _, n := range []string{"t01", "t02", "t03", "t04", "t05", "t06", "t07", "t08"} {
		ts = append(ts, part(n, "prod", 1, "updated"))
	}
	ts[6].Status = release.TenantUpdating
	ts[7].Status, ts[7].Error = release.TenantFailed, strings.Repeat("a very long error ", 10)
	var r releaseView
	b, _ := json.Marshal(rel(release.StateRunning, release.PhaseProd, 1, ts...))
	require.NoError(t, json.Unmarshal(b, &r))
	var out strings.Builder
	d := &display{w: &out, size: func() (int, int) { return 60, 8 }}
	d.draw(releaseFrame("r1", r, nil, untilStop))
	got := lines(strings.TrimPrefix(out.String(), hideCursor))
	require.Len(t, got, 7, "height 8: seven lines and the cursor's")
	require.Equal(t, []string{
		"release r1: running · phase prod · wave 1",
		"██████████████████████████░░░░ 7/8  87%",
		"tenants: updating 1 · updated 6 · failed 1 · 1 failure(s)",
		"t01  prod     wave 1   updated         cut over in 812ms",
		"t07  prod     wave 1   updating",
		"t08  prod     wave 1   failed          a very long error a…",
		"… and 5 more",
	}, got)
	for _, l := range got {
		require.LessOrEqual(t, len([]rune(l)), 59)
	}
}

// With -o json, watch prints each new answer of the API on a line (and
// nothing for an answer that did not change).
func TestReleaseWatchJSONLines(t *testing.T) {
	api := newFakeAPI(t)
	answers := stagingThenPromotion()
	api.on("GET /v1/releases/r1", sequence(answers...))
	r := api.cli(nil, false, "releases", "watch", "r1", "-o", "json")
	require.Equal(t, ExitOK, r.code, r.err)
	got := lines(r.out)
	require.Len(t, got, 3, "four answers, two of them the same")
	var last release.Release
	require.NoError(t, json.Unmarshal([]byte(got[2]), &last))
	require.Equal(t, release.StateAwaitingPromotion, last.State)
	require.Contains(t, r.err, "awaiting promotion")
}

// A watch goes on through a failing API (a restart, a busy worker), and
// stops at once on what will not change (not found).
func TestReleaseWatchErrors(t *testing.T) {
	api := newFakeAPI(t)
	busy := statusAnswer{status: 503, body: map[string]string{"error": "release r1: no worker answered the query within 5s"}}
	api.on("GET /v1/releases/r1", sequence(busy, busy, stagingThenPromotion()[3]))
	r := api.cli(nil, false, "releases", "watch", "r1")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "note: release r1: no worker answered the query within 5s (still watching)", lines(r.out)[0], "said once")
	require.Equal(t, "release r1: awaiting-promotion · phase staging · wave 1 [1/1]", lines(r.out)[1])

	r = api.cli(nil, false, "releases", "watch", "nope")
	require.Equal(t, ExitNotFound, r.code)
	require.Equal(t, "error: no route GET /v1/releases/nope\n", r.err)
}

func TestReleasesCreateSendsOnlyWhatWasGiven(t *testing.T) {
	api := newFakeAPI(t)
	api.on("POST /v1/releases", answer(202, map[string]any{"id": "r1", "workflowId": "release:r1", "state": "running",
		"plan": map[string]any{"tenants": map[string]any{"all": true}, "canary": 1, "batchSize": 5, "maxParallel": 5, "maxPerHost": 0,
			"healthTimeout": "2m0s", "drain": "2s", "failureThreshold": 0, "promotionDeadline": "0s", "backupBefore": false}}))
	r := api.cli(map[string]string{EnvToken: developerToken}, false, "releases", "create", "--image", newImage, "--all",
		"--canary", "1", "--health-timeout", "2m", "--failure-threshold", "0")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, map[string]any{"image": newImage, "tenants": map[string]any{"all": true}, "canary": 1.0, "healthTimeout": "2m",
		"failureThreshold": 0.0}, api.requests("")[0].body)
	require.Equal(t, []string{
		"release r1: running",
		"plan: canary 1, waves of 5 (5 at once), health timeout 2m0s, drain 2s, failure threshold 0, promotion deadline 0s",
		"watch it: tenantflow releases watch r1",
	}, lines(r.out))

	r = api.cli(nil, false, "releases", "create", "--image", newImage, "--tenants", "acme,globex", "--batch-size", "2", "--backup-before", "--id", "fix-1")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, map[string]any{"image": newImage, "tenants": map[string]any{"names": []any{"acme", "globex"}}, "batchSize": 2.0,
		"backupBefore": true, "id": "fix-1"}, api.requests("")[1].body)

	r = api.cli(nil, false, "releases", "create", "--rollback-of", "r0", "--restore-data")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, map[string]any{"rollbackOf": "r0", "restoreData": true}, api.requests("")[2].body)

	for _, bad := range [][]string{
		{"--image", newImage},
		{"--stage", "prod"},
		{"--image", newImage, "--stage", "prod", "--all"},
		{"--image", newImage, "--all", "--restore-data"},
		{"--image", newImage, "--rollback-of", "r0"},
	} {
		r = api.cli(nil, false, append([]string{"releases", "create"}, bad...)...)
		require.Equal(t, ExitUsage, r.code, "%v: %s", bad, r.err)
	}
	require.Len(t, api.requests(""), 3, "nothing sent for a usage error")
}

// create --watch starts the release and follows it.
func TestReleasesCreateAndWatch(t *testing.T) {
	api := newFakeAPI(t)
	api.on("POST /v1/releases", answer(202, map[string]any{"id": "r1", "state": "running"}))
	api.on("GET /v1/releases/r1", sequence(stagingThenPromotion()...))
	r := api.cli(nil, false, "releases", "create", "--image", newImage, "--stage", "staging", "-w")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "release r1: running · phase staging · wave 1 [0/1]", lines(r.out)[0])
}

func TestReleasesGetAndLs(t *testing.T) {
	api := newFakeAPI(t)
	st := rel(release.StatePaused, release.PhaseProd, 2, part("acme-test", "staging", 1, "updated"), part("acme", "prod", 2, "failed"))
	st.Tenants[1].Error = "cut-over timed out"
	st.PauseReason = "1 tenant(s) failed"
	st.Promotion = &release.Promotion{By: "developer", Reason: "QA ok", At: st.StartedAt}
	api.on("GET /v1/releases/r1", answer(200, st))
	r := api.cli(nil, false, "releases", "get", "r1")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"id:           r1",
		"image:        " + newImage,
		"state:        paused",
		"phase:        prod",
		"wave:         2",
		"progress:     2/2",
		"tenants:      updated 1 · failed 1",
		"failures:     1",
		"paused:       1 tenant(s) failed",
		"started:      2026-12-01 10:00:00Z",
		"promoted by:  developer: QA ok",
		"",
		"TENANT     STAGE    WAVE  STATUS   HOST  FROM                                                   DETAIL",
		"acme-test  staging  1     updated  -     registry.test/tenantflow/demo-app@sha256:0123456789ab  cut over in 812ms",
		"acme       prod     2     failed   -     registry.test/tenantflow/demo-app@sha256:0123456789ab  cut-over timed out",
	}, lines(r.out))

	now := time.Now()
	api.on("GET /v1/releases", answer(200, map[string]any{"releases": []map[string]any{
		{"id": "r2", "workflowId": "release:r2", "status": "Running", "image": newImage, "startTime": now.Add(-90 * time.Second)},
		{"id": "r1", "workflowId": "release:r1", "status": "Completed", "image": demoImage, "startTime": now.Add(-26*time.Hour - time.Second), "closeTime": now.Add(-25*time.Hour - time.Second)},
	}}))
	r = api.cli(nil, false, "releases", "ls")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"ID  STATUS     IMAGE                                                  STARTED  ENDED",
		"r2  Running    registry.test/tenantflow/demo-app@sha256:fedcba987654  1m       -",
		"r1  Completed  registry.test/tenantflow/demo-app@sha256:0123456789ab  26h      25h",
	}, lines(r.out))
}

// promote, pause, resume and abort send the reason, with an
// Idempotency-Key, and show the summary; a refusal is exit 4, a role that
// may not is exit 5.
func TestReleaseActions(t *testing.T) {
	api := newFakeAPI(t)
	summary := release.Summary(rel(release.StateRunning, release.PhaseProd, 2, part("acme-test", "staging", 1, "updated"), part("acme", "prod", 2, "updating")))
	api.on("POST /v1/releases/r1/promote", func(w http.ResponseWriter, r *http.Request) {
		if roleOf(r) != "developer" {
			reply(w, 403, map[string]string{"error": "role ops may not call POST /v1/releases/:id/promote"})
			return
		}
		reply(w, 200, summary)
	})
	r := api.cli(map[string]string{EnvToken: developerToken}, false, "releases", "promote", "r1", "--reason", "QA ok")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "release r1: running · phase prod · wave 2\ntenants: updating 1 · updated 1\n", r.out)
	sent := api.requests("POST /v1/releases/r1/promote")[0]
	require.Equal(t, map[string]any{"reason": "QA ok"}, sent.body)
	require.NotEmpty(t, sent.idempotencyKey)

	r = api.cli(nil, false, "releases", "promote", "r1", "--reason", "QA ok")
	require.Equal(t, ExitDenied, r.code)
	require.Equal(t, "error: role ops may not call POST /v1/releases/:id/promote\n", r.err)

	r = api.cli(nil, false, "releases", "promote", "r1")
	require.Equal(t, ExitUsage, r.code, "a reason is required")

	api.on("POST /v1/releases/r1/resume", answer(409, map[string]string{"error": "release r1 is running: nothing to resume"}))
	r = api.cli(nil, false, "releases", "resume", "r1", "--reason", "fixed")
	require.Equal(t, ExitRefused, r.code)
	require.Equal(t, "error: release r1 is running: nothing to resume\n", r.err)

	api.on("POST /v1/releases/r1/abort", answer(200, release.Summary(rel(release.StateAborted, release.PhaseProd, 2, part("acme", "prod", 2, "reverted")))))
	r = api.cli(nil, false, "releases", "abort", "r1", "--reason", "bad build", "-o", "json")
	require.Equal(t, ExitOK, r.code, r.err)
	var got release.Release
	require.NoError(t, json.Unmarshal([]byte(r.out), &got))
	require.Equal(t, release.StateAborted, got.State)
	require.Equal(t, 1, got.Counts[release.TenantReverted])
}

// Ctrl-C during a watch ends it with 130, the terminal's cursor shown
// again.
func TestWatchInterrupted(t *testing.T) {
	api := newFakeAPI(t)
	api.on("GET /v1/releases/r1", answer(200, stagingThenPromotion()[1]))
	var out, errOut strings.Builder
	a := newApp(IO{Out: &out, Err: &errOut, TTY: true, Getenv: func(k string) string {
		return map[string]string{EnvAPIURL: api.srv.URL, EnvToken: opsToken, "HOME": t.TempDir()}[k]
	}})
	a.pollEvery = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background()) // as signal.NotifyContext on SIGINT
	time.AfterFunc(200*time.Millisecond, cancel)
	require.Equal(t, ExitInterrupted, run(ctx, []string{"releases", "watch", "r1"}, a))
	require.Equal(t, "interrupted\n", errOut.String())
	require.Contains(t, out.String(), "updating")
	require.True(t, strings.HasSuffix(out.String(), showCursor))
}

// promote --watch follows prod: the API may answer (202) before the
// workflow took the promote, so "awaiting promotion" does not end it; a
// pause does.
func TestPromoteWatchFollowsProd(t *testing.T) {
	awaiting := rel(release.StateAwaitingPromotion, release.PhaseStaging, 1, part("acme-test", "staging", 1, "updated"))
	prod := rel(release.StateRunning, release.PhaseProd, 2, part("acme-test", "staging", 1, "updated"), part("acme", "prod", 2, "updating"))
	done := rel(release.StateCompleted, release.PhaseProd, 2, part("acme-test", "staging", 1, "updated"), part("acme", "prod", 2, "updated"))
	paused := rel(release.StatePaused, release.PhaseProd, 2, part("acme-test", "staging", 1, "updated"), part("acme", "prod", 2, "rolled-back"))
	paused.PauseReason = "1 tenant(s) failed"
	for _, tc := range []struct {
		name    string
		answers []any
		code    int
		last    string
	}{
		{"to the end", []any{awaiting, awaiting, prod, done}, ExitOK, "release r1 completed: updated 2"},
		{"to a pause", []any{awaiting, prod, paused}, ExitUnsuccessful,
			"release r1 paused: 1 tenant(s) failed; then: tenantflow releases resume|abort r1 --reason …"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api := newFakeAPI(t)
			api.on("POST /v1/releases/r1/promote", answer(202, release.Summary(awaiting)))
			api.on("GET /v1/releases/r1", sequence(tc.answers...))
			r := api.cli(map[string]string{EnvToken: developerToken}, false, "releases", "promote", "r1", "--reason", "QA ok", "--watch")
			require.Equal(t, tc.code, r.code, r.out+r.err)
			out := lines(r.out)
			require.Equal(t, tc.last, out[len(out)-1])
		})
	}
}
