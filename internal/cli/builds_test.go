package cli

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/build"
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/imagebuild"
)

const (
	buildSHA = "0123456789abcdef0123456789abcdef01234567"
	buildID  = "group~app@" + buildSHA
	digest   = "sha256:fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

// buildAt is GET /v1/builds/{id} as the API answers it: the id and the
// workflow's build.
func buildAt(state imagebuild.State, done int, step, errMsg string) map[string]any {
	b := imagebuild.Build{Project: "group/app", Ref: "main", RefType: "branch", SHA: buildSHA, State: state,
		Progress: flow.Progress{Done: done, Total: 2, Step: step}, Error: errMsg, StartedAt: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	if state == imagebuild.StateSucceeded {
		b.Image = build.Image{Repository: "group/app", Tags: []string{buildSHA, "main"}, Ref: "registry.test/group/app:" + buildSHA,
			Digest: digest, Built: true}
	}
	return map[string]any{"id": buildID, "workflowId": "build:group/app@" + buildSHA, "build": b}
}

func TestBuildsCreateAndWatch(t *testing.T) {
	api := newFakeAPI(t)
	api.on("POST /v1/builds", answer(202, map[string]any{"id": buildID, "workflowId": "build:group/app@" + buildSHA,
		"project": "group/app", "ref": "main", "sha": buildSHA, "status": "pending"}))
	r := api.cli(map[string]string{EnvToken: developerToken}, false, "builds", "create", "--project", "group/app", "--ref", "main")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "build "+buildID+": pending (group/app main at 0123456789ab)\nwatch it: tenantflow builds watch "+buildID+"\n", r.out)
	require.Equal(t, map[string]any{"project": "group/app", "ref": "main"}, api.requests("")[0].body)

	api.on("GET /v1/builds/"+buildID, sequence(
		buildAt(imagebuild.StatePending, 0, "check registry", ""),
		buildAt(imagebuild.StateBuilding, 1, "build and push", ""),
		buildAt(imagebuild.StateBuilding, 1, "build and push", ""),
		buildAt(imagebuild.StateSucceeded, 2, "", ""),
	))
	r = api.cli(nil, false, "builds", "watch", buildID)
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"build " + buildID + ": pending [0/2]",
		"build " + buildID + ": step 0/2 check registry",
		"build " + buildID + ": building [1/2]",
		"build " + buildID + ": step 1/2 build and push",
		"build " + buildID + ": succeeded [2/2]",
		"build " + buildID + " succeeded: registry.test/group/app@" + digest,
		"release it: tenantflow releases create --image registry.test/group/app@" + digest + " --all",
	}, lines(r.out))

	api.on("GET /v1/builds/"+buildID, sequence(buildAt(imagebuild.StateFailed, 1, "", "docker build: step 3/7: exit code 2 (BuildFailed)")))
	r = api.cli(nil, false, "builds", "watch", buildID)
	require.Equal(t, ExitUnsuccessful, r.code, r.err)
	require.Equal(t, "build "+buildID+" failed: docker build: step 3/7: exit code 2 (BuildFailed)", lines(r.out)[len(lines(r.out))-1])

	r = api.cli(nil, false, "builds", "create", "--project", "group/app")
	require.Equal(t, ExitUsage, r.code)
	require.Contains(t, r.err, `required flag(s) "ref" not set`)

	api.on("POST /v1/builds", answer(400, map[string]string{"error": "unknown ref nope", "field": "ref"}))
	r = api.cli(nil, false, "builds", "create", "--project", "group/app", "--ref", "nope", "--watch")
	require.Equal(t, ExitUsage, r.code)
	require.Equal(t, "error: ref: unknown ref nope\n", r.err)
}

func TestBuildsGet(t *testing.T) {
	api := newFakeAPI(t)
	api.on("GET /v1/builds/"+buildID, answer(200, buildAt(imagebuild.StateSucceeded, 2, "", "")))
	r := api.cli(nil, false, "builds", "get", buildID)
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{
		"id:        " + buildID,
		"project:   group/app",
		"ref:       main",
		"sha:       " + buildSHA,
		"state:     succeeded",
		"progress:  2/2",
		"image:     registry.test/group/app@" + digest,
		"tags:      " + buildSHA + ", main",
		"started:   2026-12-01 10:00:00Z",
	}, lines(r.out))
}
