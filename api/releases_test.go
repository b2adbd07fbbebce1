package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/searchattr"
)

var (
	testDigest = "0123456789abcdef" + strings.Repeat("ab", 24)
	testImage  = "registry.example:5000/team/app@sha256:" + testDigest
	oldImageA  = "registry.example:5000/team/app@sha256:" + strings.Repeat("a", 64)
	oldImageB  = "registry.example:5000/team/app@sha256:" + strings.Repeat("b", 64)
)

// fieldErrorBody decodes a 400 answer.
func fieldErrorBody(t *testing.T, body []byte) (field, msg string) {
	t.Helper()
	var b struct{ Error, Field string }
	require.NoError(t, json.Unmarshal(body, &b))
	return b.Field, b.Error
}

func releaseInput(t *testing.T, call startCall) release.Input {
	t.Helper()
	require.Len(t, call.args, 1)
	in, ok := call.args[0].(release.Input)
	require.True(t, ok, "argument is %T", call.args[0])
	return in
}

func TestCreateReleaseStartsWorkflow(t *testing.T) {
	e := newTestEnv(t)
	before := time.Now().UTC().Truncate(time.Millisecond)
	rec := e.do(http.MethodPost, "/v1/releases", developerToken, `{"image":"`+testImage+`","tenants":{"names":["acme","beta"]}}`)
	after := time.Now().UTC()
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())

	starts := e.temporal.startCalls()
	require.Len(t, starts, 1)
	in := releaseInput(t, starts[0])
	// Default id: UTC time of the request to the millisecond, the digest's
	// first 12 hex, 8 random hex.
	m := regexp.MustCompile(`^(\d{8}-\d{6}\.\d{3})-0123456789ab-[0-9a-f]{8}$`).FindStringSubmatch(in.ID)
	require.NotNil(t, m, "default id %q", in.ID)
	at, err := time.Parse("20060102-150405.000", m[1])
	require.NoError(t, err)
	assert.False(t, at.Before(before) || at.After(after), "id time %s not within [%s, %s]", at, before, after)

	assert.JSONEq(t, fmt.Sprintf(`{"id":%q,"workflowId":"release:%s","state":"running","links":{"self":"/v1/releases/%s"},
		"plan":{"tenants":{"names":["acme","beta"]},"canary":0,"batchSize":5,"maxParallel":5,"maxPerHost":0,"healthTimeout":"0s","drain":"2s","failureThreshold":0,"promotionDeadline":"0s","backupBefore":false}}`,
		in.ID, in.ID, in.ID), rec.Body.String())
	assert.Equal(t, "/v1/releases/"+in.ID, rec.Header().Get("Location"))

	assert.Equal(t, release.WorkflowType, starts[0].workflow)
	o := starts[0].opts
	assert.Equal(t, "release:"+in.ID, o.ID)
	assert.Equal(t, "tenants", o.TaskQueue)
	assert.Equal(t, enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL, o.WorkflowIDConflictPolicy)
	assert.Equal(t, enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, o.WorkflowIDReusePolicy)
	assert.True(t, o.WorkflowExecutionErrorWhenAlreadyStarted, "without it the SDK hides AlreadyStarted")
	assert.Equal(t, 1, o.TypedSearchAttributes.Size())
	v, ok := o.TypedSearchAttributes.GetKeyword(searchattr.Release)
	assert.True(t, ok)
	assert.Equal(t, in.ID, v)
	assert.Equal(t, "Release "+in.ID+" · "+testImage+" · 2 tenants", o.StaticSummary)

	assert.Equal(t, release.Input{
		ID: in.ID, Image: testImage, RequestedBy: "developer",
		Plan: release.Plan{
			Tenants:   release.TenantSelector{Names: []string{"acme", "beta"}},
			BatchSize: release.DefaultBatchSize, MaxParallel: release.DefaultBatchSize,
			Drain: spec.Duration(release.DefaultDrain),
		},
	}, in)
	assert.Contains(t, e.logs.String(), `"msg":"release started"`)
}

func TestReleasesOfOneImageAtOnceGetTheirOwnIDs(t *testing.T) {
	image, ferr := validateImage(testImage)
	require.Nil(t, ferr)
	now := time.Date(2025, 3, 1, 11, 30, 45, 123456789, time.UTC)
	a, b := defaultReleaseID(now, image), defaultReleaseID(now, image)
	assert.NotEqual(t, a, b, "the same image at the same instant")
	for _, id := range []string{a, b} {
		assert.Regexp(t, `^20250301-113045\.123-0123456789ab-[0-9a-f]{8}$`, id)
		assert.Nil(t, validateReleaseID("id", id))
	}

	e := newTestEnv(t)
	body := `{"image":"` + testImage + `","tenants":{"all":true}}`
	for range 2 {
		rec := e.do(http.MethodPost, "/v1/releases", developerToken, body)
		require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	}
	starts := e.temporal.startCalls()
	require.Len(t, starts, 2)
	assert.NotEqual(t, starts[0].opts.ID, starts[1].opts.ID)
}

func TestCreateReleasePlan(t *testing.T) {
	tests := []struct {
		name string
		body string
		want release.Plan
	}{
		{
			name: "every setting",
			body: `{"id":"r-1.2","image":"` + testImage + `","tenants":{"stage":"prod"},"canary":2,"batchSize":10,"maxParallel":3,"maxPerHost":1,
				"healthTimeout":"2m","drain":"0s","failureThreshold":1,"promotionDeadline":"24h","backupBefore":true}`,
			want: release.Plan{
				Tenants: release.TenantSelector{Stage: "prod"}, Canary: 2, BatchSize: 10, MaxParallel: 3, MaxPerHost: 1,
				HealthTimeout: spec.Duration(2 * time.Minute), Drain: 0, FailureThreshold: 1,
				PromotionDeadline: spec.Duration(24 * time.Hour), BackupBefore: true,
			},
		},
		{
			name: "maxParallel defaults to batchSize",
			body: `{"id":"r-1.2","image":"` + testImage + `","tenants":{"all":true},"batchSize":7,"drain":"10m","healthTimeout":"1s","promotionDeadline":"1m"}`,
			want: release.Plan{
				Tenants: release.TenantSelector{All: true}, BatchSize: 7, MaxParallel: 7,
				HealthTimeout: spec.Duration(time.Second), Drain: spec.Duration(10 * time.Minute),
				PromotionDeadline: spec.Duration(time.Minute),
			},
		},
		{
			name: "canary analysis, defaults filled in",
			body: `{"id":"r-1.2","image":"` + testImage + `","tenants":{"all":true},"canary":1,"analysis":{"period":"10m"}}`,
			want: release.Plan{
				Tenants: release.TenantSelector{All: true}, Canary: 1, BatchSize: 5, MaxParallel: 5, Drain: spec.Duration(release.DefaultDrain),
				Analysis: &release.AnalysisPlan{Period: spec.Duration(10 * time.Minute), MaxErrorRate: 0.05, MaxLatencyRatio: 1.5,
					MinLatencyRise: spec.Duration(100 * time.Millisecond), MinProbes: 5, Delay: spec.Duration(10 * time.Second)},
			},
		},
		{
			name: "canary analysis, every threshold",
			body: `{"id":"r-1.2","image":"` + testImage + `","tenants":{"all":true},"canary":2,
				"analysis":{"period":"30s","maxErrorRate":0.01,"maxLatencyRatio":2,"minLatencyRise":"50ms","minProbes":10,"delay":"30s"}}`,
			want: release.Plan{
				Tenants: release.TenantSelector{All: true}, Canary: 2, BatchSize: 5, MaxParallel: 5, Drain: spec.Duration(release.DefaultDrain),
				Analysis: &release.AnalysisPlan{Period: spec.Duration(30 * time.Second), MaxErrorRate: 0.01, MaxLatencyRatio: 2,
					MinLatencyRise: spec.Duration(50 * time.Millisecond), MinProbes: 10, Delay: spec.Duration(30 * time.Second)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			rec := e.do(http.MethodPost, "/v1/releases", opsToken, tt.body)
			require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
			starts := e.temporal.startCalls()
			require.Len(t, starts, 1)
			in := releaseInput(t, starts[0])
			assert.Equal(t, "r-1.2", in.ID)
			assert.Equal(t, "release:r-1.2", starts[0].opts.ID)
			assert.Equal(t, "ops", in.RequestedBy)
			assert.Equal(t, tt.want, in.Plan)
		})
	}
}

func TestCreateReleaseValidation(t *testing.T) {
	img := `"image":"` + testImage + `"`
	names := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"t%04d"`, i)
		}
		return `{` + img + `,"tenants":{"names":[` + b.String() + `]}}`
	}
	withPlan := func(fields string) string {
		return `{` + img + `,"tenants":{"all":true},` + fields + `}`
	}
	tests := []struct {
		name      string
		body      string
		wantField string
		wantError string
	}{
		{"empty body", ``, "body", "empty"},
		{"malformed", `{"image":`, "body", "malformed JSON"},
		{"unknown field", withPlan(`"wave":1`), "wave", `unknown field "wave"`},
		{"unknown selector field", `{` + img + `,"tenants":{"tag":"x"}}`, "tag", `unknown field "tag"`},
		{"canary wrong type", withPlan(`"canary":"1"`), "canary", "canary must be a number"},
		{"names wrong type", `{` + img + `,"tenants":{"names":"acme"}}`, "tenants.names", "tenants.names must be"},
		{"bad id", withPlan(`"id":"Release_1"`), "id", `release id "Release_1" is invalid`},
		{"id too long", withPlan(`"id":"` + strings.Repeat("a", 64) + `"`), "id", "is invalid"},
		{"id trailing dot", withPlan(`"id":"r1."`), "id", "is invalid"},
		{"image missing", `{"tenants":{"all":true}}`, "image", "image is required"},
		{"image by tag", `{"image":"registry.example/app:1.2","tenants":{"all":true}}`, "image", "must be pinned by digest"},
		{"image tag and digest", `{"image":"registry.example/app:1.2@sha256:` + testDigest + `","tenants":{"all":true}}`, "image", "both a tag and a digest"},
		{"image uppercase digest", `{"image":"registry.example/app@sha256:` + strings.ToUpper(testDigest) + `","tenants":{"all":true}}`, "image", "not a valid image reference"},
		{"image short digest", `{"image":"registry.example/app@sha256:abc","tenants":{"all":true}}`, "image", "not a valid image reference"},
		{"image uppercase name", `{"image":"Registry.example/App@sha256:` + testDigest + `","tenants":{"all":true}}`, "image", "not a valid image reference"},
		{"image sha512", `{"image":"registry.example/app@sha512:` + strings.Repeat("ab", 64) + `","tenants":{"all":true}}`, "image", "sha256"},
		{"tenants missing", `{` + img + `}`, "tenants", "tenants is required"},
		{"tenants empty", `{` + img + `,"tenants":{}}`, "tenants", "exactly one"},
		{"all false", `{` + img + `,"tenants":{"all":false}}`, "tenants", "exactly one"},
		{"two selectors", `{` + img + `,"tenants":{"all":true,"stage":"prod"}}`, "tenants", "exactly one"},
		{"unknown stage", `{` + img + `,"tenants":{"stage":"dev"}}`, "tenants.stage", `unknown tenants.stage "dev"`},
		{"no names", `{` + img + `,"tenants":{"names":[]}}`, "tenants.names", "at least one"},
		{"bad name", `{` + img + `,"tenants":{"names":["acme","Bad_Name"]}}`, "tenants.names", `name "Bad_Name" is invalid`},
		{"duplicate name", `{` + img + `,"tenants":{"names":["acme","beta","acme"]}}`, "tenants.names", `"acme" is listed twice`},
		{"too many names", names(1001), "tenants.names", "at most 1000"},
		{"negative canary", withPlan(`"canary":-1`), "canary", "must not be negative"},
		{"negative batchSize", withPlan(`"batchSize":-1`), "batchSize", "at least 1"},
		{"negative maxParallel", withPlan(`"maxParallel":-2`), "maxParallel", "at least 1"},
		{"maxParallel over default batchSize", withPlan(`"maxParallel":6`), "maxParallel", "must not exceed batchSize 5"},
		{"maxParallel over batchSize", withPlan(`"batchSize":2,"maxParallel":3`), "maxParallel", "must not exceed batchSize 2"},
		{"negative maxPerHost", withPlan(`"maxPerHost":-1`), "maxPerHost", "0 (no per-host limit) or from 1 to maxParallel 5"},
		{"maxPerHost over maxParallel", withPlan(`"batchSize":5,"maxParallel":3,"maxPerHost":4`), "maxPerHost", "from 1 to maxParallel 3"},
		{"maxPerHost over default maxParallel", withPlan(`"batchSize":4,"maxPerHost":5`), "maxPerHost", "from 1 to maxParallel 4"},
		{"maxPerHost not a number", withPlan(`"maxPerHost":"two"`), "maxPerHost", "must be a number"},
		{"negative failureThreshold", withPlan(`"failureThreshold":-1`), "failureThreshold", "must not be negative"},
		{"healthTimeout not a duration", withPlan(`"healthTimeout":"2 minutes"`), "healthTimeout", "not a duration"},
		{"healthTimeout a number", withPlan(`"healthTimeout":120`), "healthTimeout", "must be a string"},
		{"healthTimeout too short", withPlan(`"healthTimeout":"500ms"`), "healthTimeout", "from 1s to 1h0m0s"},
		{"healthTimeout too long", withPlan(`"healthTimeout":"61m"`), "healthTimeout", "from 1s to 1h0m0s"},
		{"drain negative", withPlan(`"drain":"-1s"`), "drain", "must not be negative"},
		{"drain too long", withPlan(`"drain":"11m"`), "drain", "at most 10m0s"},
		{"drain empty", withPlan(`"drain":""`), "drain", "not a duration"},
		{"promotionDeadline too short", withPlan(`"promotionDeadline":"30s"`), "promotionDeadline", "at least 1m0s"},
		{"analysis without a canary", withPlan(`"analysis":{"period":"5m"}`), "analysis", "set canary to at least 1"},
		{"analysis of too many canaries", withPlan(`"canary":101,"batchSize":200,"analysis":{"period":"5m"}`), "canary", "at most 100 canaries"},
		{"analysis without a period", withPlan(`"canary":1,"analysis":{}`), "analysis.period", "analysis.period is required"},
		{"analysis period too short", withPlan(`"canary":1,"analysis":{"period":"5s"}`), "analysis.period", "from 10s to 24h0m0s"},
		{"analysis period not a duration", withPlan(`"canary":1,"analysis":{"period":"ten minutes"}`), "analysis.period", "not a duration"},
		{"analysis period null", withPlan(`"canary":1,"analysis":{"period":null}`), "analysis.period", "must not be null"},
		{"analysis unknown field", withPlan(`"canary":1,"analysis":{"period":"5m","query":"up"}`), "query", `unknown field "query"`},
		{"maxErrorRate over 1", withPlan(`"canary":1,"analysis":{"period":"5m","maxErrorRate":5}`), "analysis.maxErrorRate", "at most 1"},
		{"maxErrorRate zero", withPlan(`"canary":1,"analysis":{"period":"5m","maxErrorRate":0}`), "analysis.maxErrorRate", "above 0"},
		{"maxLatencyRatio under 1", withPlan(`"canary":1,"analysis":{"period":"5m","maxLatencyRatio":0.5}`), "analysis.maxLatencyRatio", "from 1 to 100"},
		{"minLatencyRise too long", withPlan(`"canary":1,"analysis":{"period":"5m","minLatencyRise":"2m"}`), "analysis.minLatencyRise", "from 1ms to 1m"},
		{"delay zero", withPlan(`"canary":1,"analysis":{"period":"5m","delay":"0s"}`), "analysis.delay", "from 1s to 1h0m0s"},
		{"minProbes zero", withPlan(`"canary":1,"analysis":{"period":"5m","minProbes":0}`), "analysis.minProbes", "from 1 to 100000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			rec := e.do(http.MethodPost, "/v1/releases", developerToken, tt.body)
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			field, msg := fieldErrorBody(t, rec.Body.Bytes())
			assert.Equal(t, tt.wantField, field)
			assert.Contains(t, msg, tt.wantError)
			assert.Empty(t, e.temporal.startCalls(), "no release may be started for an invalid request")
			assert.Empty(t, e.temporal.queries)
		})
	}
}

// TestCreateReleaseShowsWhatZeroMeans: a zero is either refused naming its
// field or shown in the answer's plan as the value it stands for; null is
// refused; durations come back in the form they were sent.
func TestCreateReleaseShowsWhatZeroMeans(t *testing.T) {
	img := `"image":"` + testImage + `","tenants":{"all":true}`
	accepted := []struct {
		name, fields string
		want         string // the answer's plan, less tenants
	}{
		{"nothing given", ``, `"canary":0,"batchSize":5,"maxParallel":5,"maxPerHost":0,"healthTimeout":"0s","drain":"2s","failureThreshold":0,"promotionDeadline":"0s","backupBefore":false`},
		{"zeros that mean something", `,"canary":0,"failureThreshold":0,"healthTimeout":"0s","drain":"0s","promotionDeadline":"0s"`,
			`"canary":0,"batchSize":5,"maxParallel":5,"maxPerHost":0,"healthTimeout":"0s","drain":"0s","failureThreshold":0,"promotionDeadline":"0s","backupBefore":false`},
		{"durations as sent", `,"canary":1,"batchSize":3,"maxParallel":2,"maxPerHost":1,"healthTimeout":"2m","drain":"1500ms","promotionDeadline":"72h","backupBefore":true`,
			`"canary":1,"batchSize":3,"maxParallel":2,"maxPerHost":1,"healthTimeout":"2m0s","drain":"1.5s","failureThreshold":0,"promotionDeadline":"72h0m0s","backupBefore":true`},
	}
	for _, tc := range accepted {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			rec := e.do(http.MethodPost, "/v1/releases", developerToken, `{"id":"r1",`+img+tc.fields+`}`)
			require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
			var got struct{ Plan json.RawMessage }
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
			assert.JSONEq(t, `{"tenants":{"all":true},`+tc.want+`}`, string(got.Plan))
			require.Len(t, e.temporal.startCalls(), 1)
		})
	}

	refused := []struct{ name, fields, field string }{
		{"batchSize 0", `,"batchSize":0`, "batchSize"},
		{"maxParallel 0", `,"maxParallel":0`, "maxParallel"},
		{"canary null", `,"canary":null`, "canary"},
		{"batchSize null", `,"batchSize":null`, "batchSize"},
		{"maxParallel null", `,"maxParallel":null`, "maxParallel"},
		{"maxPerHost null", `,"maxPerHost":null`, "maxPerHost"},
		{"failureThreshold null", `,"failureThreshold":null`, "failureThreshold"},
		{"healthTimeout null", `,"healthTimeout":null`, "healthTimeout"},
		{"drain null", `,"drain":null`, "drain"},
		{"promotionDeadline null", `,"promotionDeadline":null`, "promotionDeadline"},
		{"id null", `,"id":null`, "id"},
		{"rollbackOf null", `,"rollbackOf":null`, "rollbackOf"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			rec := e.do(http.MethodPost, "/v1/releases", developerToken, `{`+img+tc.fields+`}`)
			require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
			field, msg := fieldErrorBody(t, rec.Body.Bytes())
			assert.Equal(t, tc.field, field)
			assert.NotEmpty(t, msg)
			assert.Empty(t, e.temporal.startCalls())
		})
	}
	e := newTestEnv(t)
	rec := e.do(http.MethodPost, "/v1/releases", developerToken, `{"image":"`+testImage+`","tenants":{"all":true,"stage":null}}`)
	require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
	field, _ := fieldErrorBody(t, rec.Body.Bytes())
	assert.Equal(t, "tenants.stage", field, "nested nulls are named with their path")
}

func TestCreateReleaseLimits(t *testing.T) {
	// The largest list of names still passes; the default body limit fits it.
	var names []string
	for i := range maxReleaseTenants {
		names = append(names, fmt.Sprintf("t%04d", i))
	}
	body, err := json.Marshal(map[string]any{"image": testImage, "tenants": map[string]any{"names": names}})
	require.NoError(t, err)
	e := newTestEnv(t)
	rec := e.do(http.MethodPost, "/v1/releases", developerToken, string(body))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	in := releaseInput(t, e.temporal.startCalls()[0])
	assert.Len(t, in.Plan.Tenants.Names, maxReleaseTenants)
}

func TestCreateReleaseConflict(t *testing.T) {
	e := newTestEnv(t)
	e.temporal.startErr = fmt.Errorf("start: %w", serviceerror.NewWorkflowExecutionAlreadyStarted("already started", "req-1", "run-0"))
	rec := e.do(http.MethodPost, "/v1/releases", opsToken, `{"id":"r1","image":"`+testImage+`","tenants":{"all":true}}`)
	require.Equal(t, http.StatusConflict, rec.Code)
	assert.JSONEq(t, `{"error":"release r1 already exists","field":"id"}`, rec.Body.String())
	assert.Empty(t, rec.Header().Get("Location"))
}

func TestCreateReleaseTemporalDown(t *testing.T) {
	e := newTestEnv(t)
	e.temporal.startErr = serviceerror.NewUnavailable("connection refused")
	rec := e.do(http.MethodPost, "/v1/releases", opsToken, `{"id":"r1","image":"`+testImage+`","tenants":{"all":true}}`)
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.JSONEq(t, `{"error":"start release r1: connection refused"}`, rec.Body.String())
	assert.Contains(t, e.logs.String(), `"msg":"start release workflow failed"`)
}

func TestReleaseAuthorization(t *testing.T) {
	create := `{"image":"` + testImage + `","tenants":{"all":true}}`
	tests := []struct {
		token, method, path, body string
		want                      int
	}{
		{distributorToken, http.MethodPost, "/v1/releases", create, http.StatusForbidden},
		{developerToken, http.MethodPost, "/v1/releases", create, http.StatusAccepted},
		{opsToken, http.MethodPost, "/v1/releases", create, http.StatusAccepted},
		{"", http.MethodPost, "/v1/releases", create, http.StatusUnauthorized},
		{distributorToken, http.MethodGet, "/v1/releases", "", http.StatusOK},
		{distributorToken, http.MethodGet, "/v1/releases/r1", "", http.StatusOK},
		{developerToken, http.MethodGet, "/v1/releases/r1", "", http.StatusOK},
		{developerToken, http.MethodPost, "/v1/releases/r1/promote", "", http.StatusOK},
		{opsToken, http.MethodPost, "/v1/releases/r1/promote", "", http.StatusForbidden},
		{distributorToken, http.MethodPost, "/v1/releases/r1/promote", "", http.StatusForbidden},
		{developerToken, http.MethodPost, "/v1/releases/r1/pause", "", http.StatusForbidden},
		{developerToken, http.MethodPost, "/v1/releases/r1/resume", "", http.StatusForbidden},
		{developerToken, http.MethodPost, "/v1/releases/r1/abort", "", http.StatusForbidden},
		{distributorToken, http.MethodPost, "/v1/releases/r1/abort", "", http.StatusForbidden},
		{opsToken, http.MethodPost, "/v1/releases/r1/pause", "", http.StatusOK},
		{opsToken, http.MethodPost, "/v1/releases/r1/resume", "", http.StatusOK},
		{opsToken, http.MethodPost, "/v1/releases/r1/abort", "", http.StatusOK},
	}
	for _, tt := range tests {
		role := strings.SplitN(tt.token, "-", 2)[0]
		t.Run(fmt.Sprintf("%s %s %s", role, tt.method, tt.path), func(t *testing.T) {
			e := newTestEnv(t)
			e.temporal.queryResult = release.Release{ID: "r1"}
			e.temporal.updateResult = release.Release{ID: "r1"}
			rec := e.do(tt.method, tt.path, tt.token, tt.body)
			require.Equal(t, tt.want, rec.Code, rec.Body.String())
			if tt.want == http.StatusForbidden || tt.want == http.StatusUnauthorized {
				assert.Empty(t, e.temporal.startCalls())
				assert.Empty(t, e.temporal.updates)
				assert.Empty(t, e.temporal.queries)
			}
		})
	}
}

func sampleRelease() release.Release {
	started := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	return release.Release{
		ID: "r1", Image: testImage, RequestedBy: "developer",
		Plan:  release.Plan{Tenants: release.TenantSelector{All: true}, BatchSize: 5, MaxParallel: 5, Drain: spec.Duration(2 * time.Second)},
		State: release.StateAwaitingPromotion, Phase: release.PhaseStaging, Wave: 1,
		Tenants: []release.Tenant{
			{Name: "acme", Stage: "staging", Wave: 1, Status: release.TenantUpdated, From: oldImageA, To: testImage, StartedAt: &started, CutoverMillis: 850},
		},
		Progress:  flow.Progress{Done: 1, Total: 1},
		StartedAt: started,
	}
}

// assertRelease checks that body shows the release want: its state as the
// workflow has it, its plan's durations as Go duration strings.
func assertRelease(t *testing.T, want release.Release, body []byte) {
	t.Helper()
	var got struct {
		release.Release
		Plan map[string]any `json:"plan"`
	}
	require.NoError(t, json.Unmarshal(body, &got))
	plan := want.Plan
	want.Plan = release.Plan{}
	assert.Equal(t, want, got.Release)
	for field, d := range map[string]spec.Duration{"healthTimeout": plan.HealthTimeout, "drain": plan.Drain, "promotionDeadline": plan.PromotionDeadline} {
		assert.Equal(t, d.D().String(), got.Plan[field], field)
	}
	assert.EqualValues(t, plan.BatchSize, got.Plan["batchSize"])
}

// jsonNames are the JSON names of a struct's fields, less skip.
func jsonNames(v any, skip ...string) []string {
	var names []string
	for f := range reflect.TypeOf(v).Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !slices.Contains(skip, name) {
			names = append(names, name)
		}
	}
	return names
}

// A plan has three shapes: release.Plan in history, the plan
// fields of createReleaseRequest, and planView in answers. A setting added
// to the plan but not to planView would vanish from every answer (the
// view's plan hides the embedded one), so the three list the same names.
func TestReleasePlanShapesAgree(t *testing.T) {
	plan := jsonNames(release.Plan{})
	assert.ElementsMatch(t, plan, jsonNames(planView{}), "planView")
	assert.ElementsMatch(t, plan, jsonNames(createReleaseRequest{}, "id", "image", "rollbackOf", "restoreData"), "createReleaseRequest")
}

func TestGetRelease(t *testing.T) {
	e := newTestEnv(t)
	e.temporal.queryResult = sampleRelease()
	rec := e.do(http.MethodGet, "/v1/releases/r1", developerToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.JSONEq(t, `{
		"id":"r1","image":"`+testImage+`","requestedBy":"developer",
		"plan":{"tenants":{"all":true},"canary":0,"batchSize":5,"maxParallel":5,"maxPerHost":0,"healthTimeout":"0s","drain":"2s","failureThreshold":0,"promotionDeadline":"0s","backupBefore":false},
		"state":"awaiting-promotion","phase":"staging","wave":1,
		"tenants":[{"name":"acme","stage":"staging","wave":1,"status":"updated","from":"`+oldImageA+`","to":"`+testImage+`",
			"startedAt":"2025-03-01T10:00:00Z","cutoverMillis":850}],
		"progress":{"done":1,"total":1,"step":""},"failures":0,"startedAt":"2025-03-01T10:00:00Z"
	}`, rec.Body.String())
	assert.Equal(t, []string{"release:r1"}, e.temporal.queries)
	assert.Equal(t, []string{release.QueryRelease}, e.temporal.queryTypes)
}

func TestGetReleaseSummary(t *testing.T) {
	e := newTestEnv(t)
	sum := release.Summary(sampleRelease())
	e.temporal.queryResult = sum
	rec := e.do(http.MethodGet, "/v1/releases/r1?view=summary", developerToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"counts":{"updated":1}`)
	assert.Contains(t, rec.Body.String(), `"tenants":null`)
	assert.Equal(t, []string{release.QuerySummary}, e.temporal.queryTypes)

	rec = e.do(http.MethodGet, "/v1/releases/r1?view=brief", developerToken, "")
	require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
	assert.Contains(t, rec.Body.String(), `"field":"view"`)
	assert.Len(t, e.temporal.queryTypes, 1, "nothing asked on bad input")
}

func TestGetReleaseErrors(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		setup    func(*fakeTemporal)
		timeout  time.Duration
		wantCode int
		wantBody string
	}{
		{"not found", "/v1/releases/r1", func(f *fakeTemporal) { f.queryErr = serviceerror.NewNotFound("workflow not found") },
			0, http.StatusNotFound, `{"error":"release r1 not found"}`},
		{"no worker answers", "/v1/releases/r1", func(f *fakeTemporal) { f.queryBlock = true },
			50 * time.Millisecond, http.StatusServiceUnavailable, `{"error":"release r1: no worker answered the query within 50ms"}`},
		{"other error", "/v1/releases/r1", func(f *fakeTemporal) { f.queryErr = errors.New("transport is closing") },
			0, http.StatusServiceUnavailable, `{"error":"query release r1: transport is closing"}`},
		{"invalid id", "/v1/releases/R_1", func(*fakeTemporal) {},
			0, http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, func(c *Config) { c.QueryTimeout = tt.timeout })
			tt.setup(e.temporal)
			rec := e.do(http.MethodGet, tt.path, opsToken, "")
			require.Equal(t, tt.wantCode, rec.Code, rec.Body.String())
			if tt.wantBody != "" {
				assert.JSONEq(t, tt.wantBody, rec.Body.String())
				return
			}
			field, _ := fieldErrorBody(t, rec.Body.Bytes())
			assert.Equal(t, "id", field)
			assert.Empty(t, e.temporal.queries)
		})
	}
}

func TestPromoteRelease(t *testing.T) {
	e := newTestEnv(t)
	promoted := sampleRelease()
	promoted.State, promoted.Phase = release.StateRunning, release.PhaseProd
	promoted.Promotion = &release.Promotion{By: "developer", At: time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC), Reason: "staging looks good"}
	e.temporal.updateResult = promoted

	rec := e.do(http.MethodPost, "/v1/releases/r1/promote", developerToken, `{"reason":"staging looks good"}`)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assertRelease(t, promoted, rec.Body.Bytes())

	require.Len(t, e.temporal.updates, 1)
	u := e.temporal.updates[0]
	assert.Equal(t, "release:r1", u.WorkflowID)
	assert.Equal(t, release.UpdatePromote, u.UpdateName)
	assert.Equal(t, client.WorkflowUpdateStageCompleted, u.WaitForStage)
	assert.Empty(t, u.UpdateID, "without a key every request is a new promote")
	assert.Equal(t, []any{release.PromoteInput{Release: "r1", By: "developer", Reason: "staging looks good"}}, u.Args)

	// No body at all is a promote without a reason.
	rec = e.do(http.MethodPost, "/v1/releases/r1/promote", developerToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, []any{release.PromoteInput{Release: "r1", By: "developer"}}, e.temporal.updates[1].Args)

	req := newRequest(http.MethodPost, "/v1/releases/r1/promote", "")
	req.Header.Set("Authorization", "Bearer "+developerToken)
	req.Header.Set("Idempotency-Key", "ci-pipeline-42")
	rec = serve(e, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "promote:developer:ci-pipeline-42", e.temporal.updates[2].UpdateID)

	req.Header.Set("Idempotency-Key", "bad key!")
	rec = serve(e, req)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	field, _ := fieldErrorBody(t, rec.Body.Bytes())
	assert.Equal(t, "Idempotency-Key", field)
	assert.Len(t, e.temporal.updates, 3)
}

func TestPromoteAnswersTheReleaseInProd(t *testing.T) {
	accepted := sampleRelease() // what the promote Update's handler returns
	accepted.Promotion = &release.Promotion{By: "developer", At: time.Date(2025, 3, 1, 11, 0, 0, 0, time.UTC)}
	inProd := accepted // what the release shows right after
	inProd.State, inProd.Phase = release.StateRunning, release.PhaseProd

	e := newTestEnv(t)
	e.temporal.updateResult = accepted
	e.temporal.queryResult = inProd
	rec := e.do(http.MethodPost, "/v1/releases/r1/promote", developerToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assertRelease(t, release.Summary(inProd), rec.Body.Bytes())
	assert.NotContains(t, rec.Body.String(), release.StateAwaitingPromotion)
	assert.NotContains(t, rec.Body.String(), `"name":"acme"`, "the answer does not grow with the fleet: counts, not tenants")
	assert.Equal(t, []string{"release:r1"}, e.temporal.queries)

	// Should the release not show it within the query timeout, the answer
	// is 202: accepted, follow it with GET.
	e = newTestEnv(t, func(c *Config) { c.QueryTimeout = 100 * time.Millisecond })
	e.temporal.updateResult = accepted
	e.temporal.queryResult = accepted
	rec = e.do(http.MethodPost, "/v1/releases/r1/promote", developerToken, "")
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	assert.Equal(t, "/v1/releases/r1", rec.Header().Get("Location"))
	assertRelease(t, release.Summary(accepted), rec.Body.Bytes())
	assert.Greater(t, len(e.temporal.queries), 1, "asked again until the timeout")
	assert.Less(t, len(e.temporal.queries), 20, "without a busy loop")
}

func TestControlRelease(t *testing.T) {
	for _, update := range []string{release.UpdatePause, release.UpdateResume, release.UpdateAbort} {
		t.Run(update, func(t *testing.T) {
			e := newTestEnv(t)
			st := sampleRelease()
			st.State = release.State(update + "-result") // whatever the workflow answers is passed on
			e.temporal.updateResult = st
			rec := e.do(http.MethodPost, "/v1/releases/r1/"+update, opsToken, `{"reason":"error rate up"}`)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			assertRelease(t, st, rec.Body.Bytes())
			require.Len(t, e.temporal.updates, 1)
			u := e.temporal.updates[0]
			assert.Equal(t, "release:r1", u.WorkflowID)
			assert.Equal(t, update, u.UpdateName)
			assert.Equal(t, client.WorkflowUpdateStageCompleted, u.WaitForStage)
			assert.Equal(t, []any{release.ControlInput{By: "ops", Reason: "error rate up"}}, u.Args)
		})
	}
}

func TestReleaseUpdateErrors(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		token    string
		body     string
		setup    func(*fakeTemporal)
		timeout  time.Duration
		wantCode int
		wantBody string // JSON, or the field of a 400
		// wantRetryAfter is the Retry-After header ("" when none).
		wantRetryAfter string
	}{
		{name: "promote rejected", path: "/v1/releases/r1/promote", token: developerToken,
			setup: func(f *fakeTemporal) {
				f.updateErr = temporal.NewApplicationError("release r1: staging tenant beta failed; promotion barred", release.ErrPromoteRejected)
			},
			wantCode: http.StatusConflict, wantBody: `{"error":"release r1: staging tenant beta failed; promotion barred"}`},
		{name: "control rejected", path: "/v1/releases/r1/resume", token: opsToken,
			setup: func(f *fakeTemporal) {
				f.updateGetErr = temporal.NewApplicationError("release r1 is not paused", release.ErrReleaseControlRejected)
			},
			wantCode: http.StatusConflict, wantBody: `{"error":"release r1 is not paused"}`},
		{name: "unknown release", path: "/v1/releases/r1/promote", token: developerToken,
			setup:    func(f *fakeTemporal) { f.updateErr = serviceerror.NewNotFound("workflow not found for ID: release:r1") },
			wantCode: http.StatusNotFound, wantBody: `{"error":"release r1 not found"}`},
		{name: "ended release", path: "/v1/releases/r1/abort", token: opsToken,
			setup:    func(f *fakeTemporal) { f.updateErr = serviceerror.NewNotFound("workflow execution already completed") },
			wantCode: http.StatusConflict, wantBody: `{"error":"release r1 has ended: it can no longer abort"}`},
		{name: "no worker", path: "/v1/releases/r1/pause", token: opsToken, timeout: 50 * time.Millisecond,
			setup: func(f *fakeTemporal) {
				f.updateErr = client.NewWorkflowUpdateServiceTimeoutOrCanceledError(serviceerror.NewDeadlineExceeded("deadline exceeded"))
			},
			wantCode: http.StatusServiceUnavailable, wantRetryAfter: "5",
			wantBody: `{"error":"release r1: no worker answered pause within 50ms; it may still be carried out: retry with the same Idempotency-Key to get its outcome, or read the release before sending it again"}`},
		{name: "other error", path: "/v1/releases/r1/pause", token: opsToken,
			setup:    func(f *fakeTemporal) { f.updateErr = serviceerror.NewUnavailable("connection refused") },
			wantCode: http.StatusServiceUnavailable, wantBody: `{"error":"release r1: pause: connection refused"}`},
		{name: "invalid JSON", path: "/v1/releases/r1/promote", token: developerToken, body: `{"reason":`,
			wantCode: http.StatusBadRequest, wantBody: "body"},
		{name: "unknown field", path: "/v1/releases/r1/pause", token: opsToken, body: `{"why":"x"}`,
			wantCode: http.StatusBadRequest, wantBody: "why"},
		{name: "reason too long", path: "/v1/releases/r1/abort", token: opsToken, body: `{"reason":"` + strings.Repeat("x", 1001) + `"}`,
			wantCode: http.StatusBadRequest, wantBody: "reason"},
		{name: "invalid id", path: "/v1/releases/-r1/promote", token: developerToken,
			wantCode: http.StatusBadRequest, wantBody: "id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t, func(c *Config) { c.QueryTimeout = tt.timeout })
			if tt.setup != nil {
				tt.setup(e.temporal)
			}
			rec := e.do(http.MethodPost, tt.path, tt.token, tt.body)
			require.Equal(t, tt.wantCode, rec.Code, rec.Body.String())
			if tt.wantCode == http.StatusBadRequest {
				field, _ := fieldErrorBody(t, rec.Body.Bytes())
				assert.Equal(t, tt.wantBody, field)
				assert.Empty(t, e.temporal.updates, "an invalid request must not reach the workflow")
				return
			}
			assert.JSONEq(t, tt.wantBody, rec.Body.String())
			assert.Equal(t, tt.wantRetryAfter, rec.Header().Get("Retry-After"))
		})
	}
}

func TestRollbackRelease(t *testing.T) {
	finished := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	st := sampleRelease()
	st.State, st.FinishedAt = release.StateAborted, &finished
	st.Tenants = []release.Tenant{
		{Name: "acme", Status: release.TenantUpdated, From: oldImageB},
		{Name: "beta", Status: release.TenantUpdated, From: oldImageA},
		{Name: "gamma", Status: release.TenantRolledBack, From: oldImageA},
		{Name: "delta", Status: release.TenantUpdated}, // nothing to go back to
		{Name: "omega", Status: release.TenantUpdated, From: oldImageB},
		{Name: "zeta", Status: release.TenantReverted, From: oldImageA},
		{Name: "eta", Status: release.TenantPending},
	}
	e := newTestEnv(t)
	e.temporal.queryResult = st
	before := time.Now().UTC().Truncate(time.Second)
	rec := e.do(http.MethodPost, "/v1/releases", opsToken, `{"rollbackOf":"r1","batchSize":2}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())

	assert.Equal(t, []string{"release:r1"}, e.temporal.queries)
	assert.Equal(t, []string{release.QueryRelease}, e.temporal.queryTypes)
	starts := e.temporal.startCalls()
	require.Len(t, starts, 1)
	in := releaseInput(t, starts[0])
	m := regexp.MustCompile(`^(\d{8}-\d{6})-rollback-of-r1$`).FindStringSubmatch(in.ID)
	require.NotNil(t, m, "rollback id %q", in.ID)
	at, err := time.Parse("20060102-150405", m[1])
	require.NoError(t, err)
	assert.False(t, at.Before(before), "id time %s before the request", at)
	assert.Equal(t, release.Input{
		ID: in.ID, Image: oldImageB, RollbackOf: "r1", RequestedBy: "ops",
		Images: map[string]string{"acme": oldImageB, "beta": oldImageA, "omega": oldImageB},
		Plan: release.Plan{
			Tenants:   release.TenantSelector{Names: []string{"acme", "beta", "omega"}},
			BatchSize: 2, MaxParallel: 2, Drain: spec.Duration(release.DefaultDrain),
		},
	}, in)
	assert.Equal(t, "release:"+in.ID, starts[0].opts.ID)
	assert.Equal(t, "Release "+in.ID+" · rollback of r1 · 3 tenants", starts[0].opts.StaticSummary)
}

// A rollback with restoreData gives each tenant the backup the release
// took before cutting it over; a release without one is refused.
func TestRollbackReleaseRestoresData(t *testing.T) {
	finished := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	st := sampleRelease()
	st.State, st.FinishedAt = release.StateCompleted, &finished
	st.Tenants = []release.Tenant{
		{Name: "acme", Status: release.TenantUpdated, From: oldImageB, Backup: "20250301t110000z-3"},
		{Name: "beta", Status: release.TenantUpdated, From: oldImageA, Backup: "20250301t110100z-7"},
		{Name: "gamma", Status: release.TenantRolledBack, From: oldImageA, Backup: "20250301t110200z-1"},
	}
	e := newTestEnv(t)
	e.temporal.queryResult = st
	rec := e.do(http.MethodPost, "/v1/releases", opsToken, `{"rollbackOf":"r1","restoreData":true}`)
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
	starts := e.temporal.startCalls()
	require.Len(t, starts, 1)
	in := releaseInput(t, starts[0])
	assert.Equal(t, map[string]string{"acme": "20250301t110000z-3", "beta": "20250301t110100z-7"}, in.Restores,
		"the rolled-back tenant (gamma) is not part of the rollback")
	assert.Equal(t, []string{"acme", "beta"}, in.Plan.Tenants.Names)

	e = newTestEnv(t)
	rec = e.do(http.MethodPost, "/v1/releases", opsToken, `{"image":"`+testImage+`","tenants":{"all":true},"restoreData":true}`)
	require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
	field, _ := fieldErrorBody(t, rec.Body.Bytes())
	assert.Equal(t, "restoreData", field)
	assert.Empty(t, e.temporal.startCalls(), "nothing starts")
}

func TestRollbackTargetsTie(t *testing.T) {
	st := release.Release{Tenants: []release.Tenant{
		{Name: "acme", Status: release.TenantUpdated, From: oldImageB},
		{Name: "beta", Status: release.TenantUpdated, From: oldImageA},
	}}
	names, images, image := rollbackTargets(st)
	assert.Equal(t, []string{"acme", "beta"}, names)
	assert.Equal(t, map[string]string{"acme": oldImageB, "beta": oldImageA}, images)
	assert.Equal(t, oldImageA, image, "a tie goes to the lexicographically smallest image")
}

func TestRollbackReleaseID(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 30, 45, 0, time.FixedZone("CET", 3600))
	assert.Equal(t, "20250301-113045-rollback-of-r1", rollbackReleaseID(now, "r1"))
	long := rollbackReleaseID(now, strings.Repeat("a", 34)+"-"+strings.Repeat("b", 20))
	assert.Equal(t, "20250301-113045-rollback-of-"+strings.Repeat("a", 34), long, "cut at 63 without a trailing '-'")
	for _, of := range []string{strings.Repeat("x", 63), "a.b-c", strings.Repeat("a", 34) + ".b"} {
		id := rollbackReleaseID(now, of)
		assert.Nil(t, validateReleaseID("id", id), "%q", id)
	}
}

func TestRollbackReleaseErrors(t *testing.T) {
	ended := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	nothing := sampleRelease()
	nothing.State, nothing.FinishedAt = release.StateCompleted, &ended
	nothing.Tenants = []release.Tenant{
		{Name: "acme", Status: release.TenantUnchanged, From: testImage},
		{Name: "beta", Status: release.TenantRolledBack, From: oldImageA},
	}
	running := sampleRelease()
	noBackup := sampleRelease()
	noBackup.State, noBackup.FinishedAt = release.StateCompleted, &ended
	noBackup.Tenants = []release.Tenant{
		{Name: "acme", Status: release.TenantUpdated, From: testImage, Backup: "b1"},
		{Name: "beta", Status: release.TenantUpdated, From: oldImageA},
	}
	tests := []struct {
		name      string
		body      string
		setup     func(*fakeTemporal)
		wantCode  int
		wantBody  string // JSON, or the field of a 400
		wantQuery bool
	}{
		{name: "nothing updated", body: `{"rollbackOf":"r1"}`, setup: func(f *fakeTemporal) { f.queryResult = nothing },
			wantCode: http.StatusConflict, wantBody: `{"error":"release r1 changed no tenant: nothing to roll back"}`, wantQuery: true},
		{name: "still running", body: `{"rollbackOf":"r1"}`, setup: func(f *fakeTemporal) { f.queryResult = running },
			wantCode: http.StatusConflict, wantQuery: true,
			wantBody: `{"error":"release r1 is awaiting-promotion: abort it (which reverts the tenants it updated) or wait for it to end before rolling it back"}`},
		{name: "unknown release", body: `{"rollbackOf":"r1"}`, setup: func(f *fakeTemporal) { f.queryErr = serviceerror.NewNotFound("workflow not found") },
			wantCode: http.StatusNotFound, wantBody: `{"error":"release r1 not found"}`, wantQuery: true},
		{name: "image given", body: `{"rollbackOf":"r1","image":"` + testImage + `"}`, wantCode: http.StatusBadRequest, wantBody: "image"},
		{name: "tenants given", body: `{"rollbackOf":"r1","tenants":{"all":true}}`, wantCode: http.StatusBadRequest, wantBody: "tenants"},
		{name: "invalid rollbackOf", body: `{"rollbackOf":"R1"}`, wantCode: http.StatusBadRequest, wantBody: "rollbackOf"},
		{name: "invalid plan", body: `{"rollbackOf":"r1","drain":"1h"}`, wantCode: http.StatusBadRequest, wantBody: "drain"},
		{name: "invalid id", body: `{"rollbackOf":"r1","id":"x_"}`, wantCode: http.StatusBadRequest, wantBody: "id"},
		{name: "restoreData without backups", body: `{"rollbackOf":"r1","restoreData":true}`, setup: func(f *fakeTemporal) { f.queryResult = noBackup },
			wantCode: http.StatusConflict, wantQuery: true,
			wantBody: `{"field":"restoreData","error":"release r1 took no backup of beta before cutting it over (its plan had no backupBefore): roll back without restoreData, or restore each tenant to a backup of your choice"}`},
		{name: "restoreData null", body: `{"rollbackOf":"r1","restoreData":null}`, wantCode: http.StatusBadRequest, wantBody: "restoreData"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			if tt.setup != nil {
				tt.setup(e.temporal)
			}
			rec := e.do(http.MethodPost, "/v1/releases", developerToken, tt.body)
			require.Equal(t, tt.wantCode, rec.Code, rec.Body.String())
			if tt.wantCode == http.StatusBadRequest {
				field, _ := fieldErrorBody(t, rec.Body.Bytes())
				assert.Equal(t, tt.wantBody, field)
			} else {
				assert.JSONEq(t, tt.wantBody, rec.Body.String())
			}
			if tt.wantQuery {
				assert.Equal(t, []string{"release:r1"}, e.temporal.queries)
			} else {
				assert.Empty(t, e.temporal.queries)
			}
			assert.Empty(t, e.temporal.startCalls())
		})
	}
}

func releaseExecution(t *testing.T, id string, status enumspb.WorkflowExecutionStatus, start time.Time, image string) *workflowpb.WorkflowExecutionInfo {
	t.Helper()
	info := &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: "release:" + id, RunId: "run-" + id},
		Type:      &commonpb.WorkflowType{Name: "Release"},
		StartTime: timestamppb.New(start),
		Status:    status,
	}
	if image != "" {
		info.SearchAttributes = &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{
			"Image": payload(t, image), "Release": payload(t, id),
		}}
	}
	return info
}

func payload(t *testing.T, v any) *commonpb.Payload {
	t.Helper()
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	require.NoError(t, err)
	return p
}

func TestListReleases(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	e := newTestEnv(t)
	done := releaseExecution(t, "r-old", enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, t0, testImage)
	done.CloseTime = timestamppb.New(t0.Add(time.Hour))
	e.temporal.listResp = &workflowservice.ListWorkflowExecutionsResponse{
		Executions: []*workflowpb.WorkflowExecutionInfo{
			done,
			releaseExecution(t, "r-new", enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, t0.Add(2*time.Hour), ""),
		},
		NextPageToken: []byte{0xfb, 0xff},
	}
	rec := e.do(http.MethodGet, "/v1/releases?pageSize=2&pageToken="+encodePageToken([]byte("tok")), distributorToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.JSONEq(t, `{"releases":[
		{"id":"r-new","workflowId":"release:r-new","status":"Running","startTime":"2025-03-01T12:00:00Z"},
		{"id":"r-old","workflowId":"release:r-old","status":"Completed","image":"`+testImage+`","startTime":"2025-03-01T10:00:00Z","closeTime":"2025-03-01T11:00:00Z"}
	],"nextPageToken":"`+encodePageToken([]byte{0xfb, 0xff})+`"}`, rec.Body.String())
	calls := e.temporal.listCalls()
	require.Len(t, calls, 1)
	assert.Equal(t, "WorkflowType = 'Release' AND ExecutionStatus != 'ContinuedAsNew'", calls[0].GetQuery())
	assert.Equal(t, int32(2), calls[0].GetPageSize())
	assert.Equal(t, []byte("tok"), calls[0].GetNextPageToken())
}

func TestListReleasesErrors(t *testing.T) {
	e := newTestEnv(t)
	for target, field := range map[string]string{
		"/v1/releases?pageSize=0":        "pageSize",
		"/v1/releases?pageSize=1001":     "pageSize",
		"/v1/releases?pageToken=***":     "pageToken",
		"/v1/releases?pageToken=garbage": "pageToken",
	} {
		rec := e.do(http.MethodGet, target, opsToken, "")
		require.Equal(t, http.StatusBadRequest, rec.Code, target)
		got, _ := fieldErrorBody(t, rec.Body.Bytes())
		assert.Equal(t, field, got, target)
	}
	assert.Empty(t, e.temporal.listCalls())

	rec := e.do(http.MethodGet, "/v1/releases", opsToken, "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"releases":[]}`, rec.Body.String())
	assert.Equal(t, int32(defaultPageSize), e.temporal.listCalls()[0].GetPageSize())

	e.temporal.listErr = serviceerror.NewUnavailable("connection refused")
	rec = e.do(http.MethodGet, "/v1/releases", opsToken, "")
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.JSONEq(t, `{"error":"list releases: connection refused"}`, rec.Body.String())
}

// A page of a release's tenants: the query gets the page asked for; bad
// parameters are a 400 naming them, and nothing is queried.
func TestGetReleaseTenants(t *testing.T) {
	for _, tc := range []struct{ query, field string }{
		{"limit=0", "limit"}, {"limit=501", "limit"}, {"offset=-1", "offset"}, {"offset=x", "offset"}, {"status=done", "status"},
	} {
		e := newTestEnv(t)
		rec := e.do(http.MethodGet, "/v1/releases/r1/tenants?"+tc.query, developerToken, "")
		require.Equal(t, http.StatusBadRequest, rec.Code, tc.query)
		field, _ := fieldErrorBody(t, rec.Body.Bytes())
		assert.Equal(t, tc.field, field, tc.query)
		assert.Empty(t, e.temporal.queries)
	}
	e := newTestEnv(t)
	e.temporal.queryResult = release.TenantPage{Total: 250, Offset: 200, Tenants: []release.Tenant{{Name: "acme", Status: release.TenantRolledBack}}}
	rec := e.do(http.MethodGet, "/v1/releases/r1/tenants?offset=200&limit=50&status=rolled-back", developerToken, "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.JSONEq(t, `{"total":250,"offset":200,"tenants":[{"name":"acme","stage":"","wave":0,"status":"rolled-back"}]}`, rec.Body.String())
	assert.Equal(t, []string{release.QueryTenants}, e.temporal.queryTypes)
	assert.Equal(t, [][]any{{release.TenantsPage{Offset: 200, Limit: 50, Status: release.TenantRolledBack}}}, e.temporal.queryArgs)
}
