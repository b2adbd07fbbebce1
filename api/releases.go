package api

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/gin-gonic/gin"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/analysis"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/searchattr"
)

// releaseIDPattern is what a release id may look like: it is part of a
// workflow id and of URLs, and reads like a DNS label (dots allowed).
var releaseIDPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$`)

// Bounds of a release request. They keep obvious mistakes (a health timeout
// of 2ns, a drain of an hour) from reaching the workflow; everything the
// tenants themselves decide stays with the workflow.
const (
	maxReleaseIDLen       = 63
	maxReleaseTenants     = 1000
	minHealthTimeout      = time.Second
	maxHealthTimeout      = time.Hour
	maxDrain              = 10 * time.Minute
	minPromotionDeadline  = time.Minute
	maxReleaseReasonBytes = 1000
	releaseIDTimeFormat   = "20060102-150405"
)

// saImage is the Keyword search attribute a release's image is listed by,
// when the release workflow sets it; GET /v1/releases shows it if present.
const saImage = "Image"

// createReleaseRequest is the body of POST /v1/releases. Durations are Go
// duration strings ("2m"); pointers tell an absent field from a zero one
// where the default is not zero. What a zero means:
//   - canary 0: no canary wave; failureThreshold 0: the first failure
//     pauses the release;
//   - batchSize and maxParallel must be at least 1 when given (absent:
//     5, and the batch size);
//   - maxPerHost 0 (as when absent): no per-host limit beyond
//     maxParallel; else 1 to maxParallel cut-overs at once per fleet host;
//   - healthTimeout "0s": the template's checks decide (as when absent);
//     drain "0s": no drain (absent: 2s); promotionDeadline "0s": none (as
//     when absent).
//
// null is refused for every field (decodeJSONBody): leave a field out.
type createReleaseRequest struct {
	ID                string                  `json:"id"`
	Image             string                  `json:"image"`
	Tenants           *release.TenantSelector `json:"tenants"`
	Canary            int                     `json:"canary"`
	BatchSize         *int                    `json:"batchSize"`
	MaxParallel       *int                    `json:"maxParallel"`
	MaxPerHost        int                     `json:"maxPerHost"`
	HealthTimeout     *string                 `json:"healthTimeout"`
	Drain             *string                 `json:"drain"`
	FailureThreshold  int                     `json:"failureThreshold"`
	PromotionDeadline *string                 `json:"promotionDeadline"`
	RollbackOf        string                  `json:"rollbackOf"`
	BackupBefore      bool                    `json:"backupBefore"`
	// RestoreData (rollbacks only) puts each tenant's data back to the
	// backup the rolled-back release took before its cut-over.
	RestoreData bool `json:"restoreData"`
	// Analysis watches the canaries once cut over (needs canary ≥ 1).
	Analysis *analysisRequest `json:"analysis"`
}

// analysisRequest is plan.analysis: period is required, the thresholds
// take their defaults when left out.
type analysisRequest struct {
	Period          *string  `json:"period"`
	MaxErrorRate    *float64 `json:"maxErrorRate"`
	MaxLatencyRatio *float64 `json:"maxLatencyRatio"`
	MinLatencyRise  *string  `json:"minLatencyRise"`
	MinProbes       *int     `json:"minProbes"`
	Delay           *string  `json:"delay"`
}

// releaseCreated is the 202 answer: the release has started with plan,
// every default filled in; its progress is at links.self.
type releaseCreated struct {
	ID         string       `json:"id"`
	WorkflowID string       `json:"workflowId"`
	State      string       `json:"state"`
	Plan       planView     `json:"plan"`
	Links      releaseLinks `json:"links"`
}

// planView is a release plan as the API shows it: every setting, zeros
// included, and durations as Go duration strings ("2m0s"), the form they
// are sent in. release.Plan itself travels in workflow history,
// where its durations stay nanoseconds and its zero durations are left
// out, so old histories keep decoding.
type planView struct {
	Tenants           release.TenantSelector `json:"tenants"`
	Canary            int                    `json:"canary"`
	BatchSize         int                    `json:"batchSize"`
	MaxParallel       int                    `json:"maxParallel"`
	MaxPerHost        int                    `json:"maxPerHost"`
	HealthTimeout     string                 `json:"healthTimeout"`
	Drain             string                 `json:"drain"`
	FailureThreshold  int                    `json:"failureThreshold"`
	PromotionDeadline string                 `json:"promotionDeadline"`
	BackupBefore      bool                   `json:"backupBefore"`
	Analysis          *analysisView          `json:"analysis,omitempty"`
}

// analysisView is plan.analysis with its defaults and durations as
// strings.
type analysisView struct {
	Period          string  `json:"period"`
	MaxErrorRate    float64 `json:"maxErrorRate"`
	MaxLatencyRatio float64 `json:"maxLatencyRatio"`
	MinLatencyRise  string  `json:"minLatencyRise"`
	MinProbes       int     `json:"minProbes"`
	Delay           string  `json:"delay"`
}

func viewPlan(p release.Plan) planView {
	v := viewPlanFields(p)
	if a := p.Analysis; a != nil {
		v.Analysis = &analysisView{Period: a.Period.D().String(), MaxErrorRate: a.MaxErrorRate, MaxLatencyRatio: a.MaxLatencyRatio,
			MinLatencyRise: a.MinLatencyRise.D().String(), MinProbes: a.MinProbes, Delay: a.Delay.D().String()}
	}
	return v
}

func viewPlanFields(p release.Plan) planView {
	return planView{
		Tenants: p.Tenants, Canary: p.Canary, BatchSize: p.BatchSize, MaxParallel: p.MaxParallel, MaxPerHost: p.MaxPerHost,
		HealthTimeout: p.HealthTimeout.D().String(), Drain: p.Drain.D().String(),
		FailureThreshold: p.FailureThreshold, PromotionDeadline: p.PromotionDeadline.D().String(),
		BackupBefore: p.BackupBefore,
	}
}

// releaseView is a release as the API shows it: the workflow's state, with
// its plan as planView shows it (the outer "plan" hides the embedded one).
type releaseView struct {
	release.Release
	Plan planView `json:"plan"`
}

func viewRelease(st release.Release) releaseView {
	return releaseView{Release: st, Plan: viewPlan(st.Plan)}
}

type releaseLinks struct {
	Self string `json:"self"`
}

// releaseActionRequest is the optional body of promote, pause, resume and
// abort.
type releaseActionRequest struct {
	Reason string `json:"reason"`
}

func releasePath(id string) string { return "/v1/releases/" + id }

func validateReleaseID(field, id string) *fieldError {
	if !releaseIDPattern.MatchString(id) {
		return badField(field, "release id %q is invalid: use 1–%d lowercase letters, digits, '.' and '-', starting and ending with a letter or digit",
			id, maxReleaseIDLen)
	}
	return nil
}

// validateImage accepts only an image pinned by a sha256 digest: a release
// must put exactly the image that was tested on every tenant, which a tag
// (movable) cannot promise.
func validateImage(image string) (reference.Canonical, *fieldError) {
	if image == "" {
		return nil, badField("image", "image is required: <name>@sha256:<64 hex>")
	}
	ref, err := reference.Parse(image)
	if err != nil {
		return nil, badField("image", "image %q is not a valid image reference: %v", image, err)
	}
	canonical, ok := ref.(reference.Canonical)
	if !ok {
		return nil, badField("image", "image %q must be pinned by digest: <name>@sha256:<64 hex>", image)
	}
	if _, tagged := ref.(reference.Tagged); tagged {
		return nil, badField("image", "image %q has both a tag and a digest: give only <name>@sha256:<64 hex>", image)
	}
	if d := canonical.Digest(); d.Algorithm() != "sha256" {
		return nil, badField("image", "image %q must be pinned by a sha256 digest, not %s", image, d.Algorithm())
	}
	return canonical, nil
}

// validateSelector checks that exactly one way of choosing tenants is given.
func validateSelector(sel *release.TenantSelector) *fieldError {
	if sel == nil {
		return badField("tenants", `tenants is required: {"all":true}, {"stage":"<stage>"} or {"names":[...]}`)
	}
	given := 0
	for _, set := range []bool{sel.All, sel.Stage != "", sel.Names != nil} {
		if set {
			given++
		}
	}
	if given != 1 {
		return badField("tenants", `tenants takes exactly one of "all", "stage" and "names"`)
	}
	switch {
	case sel.Stage != "":
		return validateStage("tenants.stage", sel.Stage, true)
	case sel.Names != nil:
		return validateTenantNames(sel.Names)
	}
	return nil
}

func validateTenantNames(names []string) *fieldError {
	const field = "tenants.names"
	if len(names) == 0 {
		return badField(field, "tenants.names must name at least one tenant")
	}
	if len(names) > maxReleaseTenants {
		return badField(field, "tenants.names lists %d tenants; at most %d per release", len(names), maxReleaseTenants)
	}
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		if err := validateName(n); err != nil {
			return badField(field, "%s", err.Msg)
		}
		if seen[n] {
			return badField(field, "tenant %q is listed twice", n)
		}
		seen[n] = true
	}
	return nil
}

// parseDurationField reads an optional Go duration string; ok is false when
// the field was absent.
func parseDurationField(field string, v *string) (d time.Duration, ok bool, ferr *fieldError) {
	if v == nil {
		return 0, false, nil
	}
	d, err := time.ParseDuration(*v)
	if err != nil {
		return 0, false, badField(field, "%s %q is not a duration (e.g. \"90s\", \"2m\", \"24h\")", field, *v)
	}
	if d < 0 {
		return 0, false, badField(field, "%s must not be negative", field)
	}
	return d, true, nil
}

// validatePlan checks the rollout settings and fills in their defaults; the
// tenants are checked by the caller, since a rollback chooses its own.
func validatePlan(req *createReleaseRequest) (release.Plan, *fieldError) {
	plan := release.Plan{Canary: req.Canary, FailureThreshold: req.FailureThreshold, BatchSize: release.DefaultBatchSize,
		MaxPerHost: req.MaxPerHost, BackupBefore: req.BackupBefore}
	if req.BatchSize != nil {
		plan.BatchSize = *req.BatchSize
	}
	plan.MaxParallel = plan.BatchSize
	if req.MaxParallel != nil {
		plan.MaxParallel = *req.MaxParallel
	}
	switch {
	case plan.Canary < 0:
		return plan, badField("canary", "canary must not be negative (0: no canary wave)")
	case plan.BatchSize < 1:
		return plan, badField("batchSize", "batchSize must be at least 1 (leave it out for %d)", release.DefaultBatchSize)
	case plan.MaxParallel < 1:
		return plan, badField("maxParallel", "maxParallel must be at least 1 (leave it out for the batch size)")
	case plan.MaxParallel > plan.BatchSize:
		return plan, badField("maxParallel", "maxParallel %d must not exceed batchSize %d", plan.MaxParallel, plan.BatchSize)
	case plan.MaxPerHost < 0 || plan.MaxPerHost > plan.MaxParallel:
		return plan, badField("maxPerHost", "maxPerHost must be 0 (no per-host limit) or from 1 to maxParallel %d", plan.MaxParallel)
	case plan.FailureThreshold < 0:
		return plan, badField("failureThreshold", "failureThreshold must not be negative")
	}

	health, _, ferr := parseDurationField("healthTimeout", req.HealthTimeout)
	if ferr != nil {
		return plan, ferr
	}
	if health != 0 && (health < minHealthTimeout || health > maxHealthTimeout) {
		return plan, badField("healthTimeout", "healthTimeout must be 0s (the template decides) or from %s to %s", minHealthTimeout, maxHealthTimeout)
	}
	drain, set, ferr := parseDurationField("drain", req.Drain)
	if ferr != nil {
		return plan, ferr
	}
	if !set {
		drain = release.DefaultDrain
	}
	if drain > maxDrain {
		return plan, badField("drain", "drain must be at most %s", maxDrain)
	}
	deadline, _, ferr := parseDurationField("promotionDeadline", req.PromotionDeadline)
	if ferr != nil {
		return plan, ferr
	}
	if deadline != 0 && deadline < minPromotionDeadline {
		return plan, badField("promotionDeadline", "promotionDeadline must be 0s (none) or at least %s", minPromotionDeadline)
	}
	plan.HealthTimeout = spec.Duration(health)
	plan.Drain = spec.Duration(drain)
	plan.PromotionDeadline = spec.Duration(deadline)
	if req.Analysis != nil {
		if plan.Canary < 1 {
			return plan, badField("analysis", "a canary analysis watches the canary wave: set canary to at least 1")
		}
		if plan.Canary > analysis.MaxTenants {
			return plan, badField("canary", "a canary analysis watches at most %d canaries", analysis.MaxTenants)
		}
		a, ferr := validateAnalysis(req.Analysis)
		if ferr != nil {
			return plan, ferr
		}
		plan.Analysis = a
	}
	return plan, nil
}

// validateAnalysis checks plan.analysis and fills in its defaults.
func validateAnalysis(req *analysisRequest) (*release.AnalysisPlan, *fieldError) {
	a := &release.AnalysisPlan{MaxErrorRate: release.DefaultMaxErrorRate, MaxLatencyRatio: release.DefaultMaxLatencyRatio,
		MinLatencyRise: spec.Duration(release.DefaultMinLatencyRise), MinProbes: release.DefaultMinProbes,
		Delay: spec.Duration(release.DefaultAnalysisDelay)}
	period, set, ferr := parseDurationField("analysis.period", req.Period)
	switch {
	case ferr != nil:
		return nil, ferr
	case !set:
		return nil, badField("analysis.period", "analysis.period is required: how long the canaries are watched (e.g. \"10m\")")
	case period < release.MinAnalysisPeriod || period > release.MaxAnalysisPeriod:
		return nil, badField("analysis.period", "analysis.period must be from %s to %s", release.MinAnalysisPeriod, release.MaxAnalysisPeriod)
	}
	a.Period = spec.Duration(period)
	if v := req.MaxErrorRate; v != nil {
		if *v <= 0 || *v > 1 {
			return nil, badField("analysis.maxErrorRate", "analysis.maxErrorRate is a share of probes above 0 and at most 1 (0.05: five points over the baseline)")
		}
		a.MaxErrorRate = *v
	}
	if v := req.MaxLatencyRatio; v != nil {
		if *v < 1 || *v > 100 {
			return nil, badField("analysis.maxLatencyRatio", "analysis.maxLatencyRatio must be from 1 to 100 (1.5: half as slow again as the baseline)")
		}
		a.MaxLatencyRatio = *v
	}
	rise, set, ferr := parseDurationField("analysis.minLatencyRise", req.MinLatencyRise)
	if ferr != nil {
		return nil, ferr
	}
	if set {
		if rise < time.Millisecond || rise > time.Minute {
			return nil, badField("analysis.minLatencyRise", "analysis.minLatencyRise must be from 1ms to 1m")
		}
		a.MinLatencyRise = spec.Duration(rise)
	}
	delay, set, ferr := parseDurationField("analysis.delay", req.Delay)
	if ferr != nil {
		return nil, ferr
	}
	if set {
		if delay < time.Second || delay > release.MaxAnalysisDelay {
			return nil, badField("analysis.delay", "analysis.delay must be from 1s to %s", release.MaxAnalysisDelay)
		}
		a.Delay = spec.Duration(delay)
	}
	if v := req.MinProbes; v != nil {
		if *v < 1 || *v > 100000 {
			return nil, badField("analysis.minProbes", "analysis.minProbes must be from 1 to 100000")
		}
		a.MinProbes = *v
	}
	return a, nil
}

// defaultReleaseID names a release by when it was asked for (to the
// millisecond) and what it rolls out, which sorts and reads well in
// listings, and ends in 32 random bits: two releases of one image asked for
// at the same moment are two releases, not a 409. A client that wants a
// retry to be refused as a duplicate gives the id itself.
func defaultReleaseID(now time.Time, image reference.Canonical) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return now.UTC().Format(releaseIDTimeFormat+".000") + "-" + image.Digest().Encoded()[:12] + "-" + hex.EncodeToString(b[:])
}

// rollbackReleaseID names a rollback after the release it undoes, cut to the
// length of an id without leaving a trailing '-' or '.'.
func rollbackReleaseID(now time.Time, of string) string {
	id := now.UTC().Format(releaseIDTimeFormat) + "-rollback-of-" + of
	if len(id) > maxReleaseIDLen {
		id = strings.TrimRight(id[:maxReleaseIDLen], "-.")
	}
	return id
}

// createRelease validates the request (every error is a 400 naming its
// field, and nothing starts) and starts the release workflow.
func (s *server) createRelease(c *gin.Context) {
	var req createReleaseRequest
	if ferr := decodeJSONBody(c, s.cfg.MaxBodyBytes, &req); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	if req.ID != "" {
		if ferr := validateReleaseID("id", req.ID); ferr != nil {
			respondFieldError(c, ferr)
			return
		}
	}
	var in release.Input
	if req.RollbackOf != "" {
		var ok bool
		if in, ok = s.rollbackInput(c, &req); !ok {
			return
		}
	} else {
		var ferr *fieldError
		if in, ferr = newReleaseInput(&req, time.Now()); ferr != nil {
			respondFieldError(c, ferr)
			return
		}
	}
	in.RequestedBy = c.GetString(ctxCaller)
	s.startRelease(c, in)
}

// newReleaseInput builds the input of a release of one image.
func newReleaseInput(req *createReleaseRequest, now time.Time) (release.Input, *fieldError) {
	if req.RestoreData {
		return release.Input{}, badField("restoreData", "restoreData goes with rollbackOf: it restores the backups a release took (backupBefore) while rolling it back")
	}
	image, ferr := validateImage(req.Image)
	if ferr != nil {
		return release.Input{}, ferr
	}
	if ferr := validateSelector(req.Tenants); ferr != nil {
		return release.Input{}, ferr
	}
	plan, ferr := validatePlan(req)
	if ferr != nil {
		return release.Input{}, ferr
	}
	plan.Tenants = *req.Tenants
	id := req.ID
	if id == "" {
		id = defaultReleaseID(now, image)
	}
	return release.Input{ID: id, Image: req.Image, Plan: plan}, nil
}

// rollbackInput builds a release that puts every tenant a finished release
// updated back on the image it had before. It answers the request itself
// when it cannot (ok false).
func (s *server) rollbackInput(c *gin.Context, req *createReleaseRequest) (in release.Input, ok bool) {
	of := req.RollbackOf
	for _, ferr := range []*fieldError{
		validateReleaseID("rollbackOf", of),
		absentForRollback("image", req.Image != "", "each tenant goes back to the image it had before"),
		absentForRollback("tenants", req.Tenants != nil, "a rollback covers the tenants the release updated"),
	} {
		if ferr != nil {
			respondFieldError(c, ferr)
			return in, false
		}
	}
	plan, ferr := validatePlan(req)
	if ferr != nil {
		respondFieldError(c, ferr)
		return in, false
	}

	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	defer cancel()
	st, ok := s.queryRelease(ctx, c, of, release.QueryRelease)
	if !ok {
		return in, false
	}
	// The set of updated tenants is only final once the release has ended;
	// rolling back under a release that still runs would race it.
	if !releaseEnded(st) {
		respondError(c, http.StatusConflict, fmt.Sprintf("release %s is %s: abort it (which reverts the tenants it updated) or wait for it to end before rolling it back", of, st.State))
		return in, false
	}
	names, images, image := rollbackTargets(st)
	if len(names) == 0 {
		respondError(c, http.StatusConflict, fmt.Sprintf("release %s changed no tenant: nothing to roll back", of))
		return in, false
	}
	plan.Tenants = release.TenantSelector{Names: names}
	id := req.ID
	if id == "" {
		id = rollbackReleaseID(time.Now(), of)
	}
	in = release.Input{ID: id, Image: image, Images: images, Plan: plan, RollbackOf: of}
	if req.RestoreData {
		if in.Restores, ok = restoreTargets(c, st, names); !ok {
			return in, false
		}
	}
	return in, true
}

// restoreTargets maps each tenant to roll back to the backup the release
// took before cutting it over; it refuses (409 naming restoreData) when
// one has none, rather than roll some back without their data.
func restoreTargets(c *gin.Context, st release.Release, names []string) (map[string]string, bool) {
	restores := map[string]string{}
	for _, t := range st.Tenants {
		if t.Status == release.TenantUpdated && t.Backup != "" && slices.Contains(names, t.Name) {
			restores[t.Name] = t.Backup
		}
	}
	var missing []string
	for _, n := range names {
		if restores[n] == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		c.AbortWithStatusJSON(http.StatusConflict, gin.H{"field": "restoreData", "error": fmt.Sprintf(
			"release %s took no backup of %s before cutting it over (its plan had no backupBefore): roll back without restoreData, or restore each tenant to a backup of your choice",
			st.ID, strings.Join(missing, ", "))})
		return nil, false
	}
	return restores, true
}

func absentForRollback(field string, present bool, why string) *fieldError {
	if present {
		return badField(field, "leave %s out of a rollback: %s", field, why)
	}
	return nil
}

func releaseEnded(st release.Release) bool {
	switch st.State {
	case release.StateCompleted, release.StateAborted, release.StateNotPromoted:
		return true
	}
	return st.FinishedAt != nil
}

// rollbackTargets lists the tenants a release updated with the image each
// had before. image is the one most of them go back to (ties: the smallest),
// which the rollback release shows as its image.
func rollbackTargets(st release.Release) (names []string, images map[string]string, image string) {
	images = map[string]string{}
	count := map[string]int{}
	for _, t := range st.Tenants {
		if t.Status != release.TenantUpdated || t.From == "" {
			continue
		}
		if _, dup := images[t.Name]; dup {
			continue
		}
		names = append(names, t.Name)
		images[t.Name] = t.From
		count[t.From]++
	}
	for from, n := range count {
		if image == "" || n > count[image] || (n == count[image] && from < image) {
			image = from
		}
	}
	return names, images, image
}

// startRelease starts the release workflow. A release id is used once: a
// second release of that id, running or ended, is refused (409), so an id
// in a URL always means one rollout.
func (s *server) startRelease(c *gin.Context, in release.Input) {
	opts := client.StartWorkflowOptions{
		ID:                       release.WorkflowID(in.ID),
		TaskQueue:                s.cfg.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		// Without this the SDK answers "already started" with a handle on
		// the existing run instead of an error, and we would report 202.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(searchattr.Release.ValueSet(in.ID)),
		StaticSummary:                            releaseSummaryText(in),
		EnableEagerStart:                         true,
	}
	ctx := c.Request.Context()
	run, err := s.temporal.ExecuteWorkflow(ctx, opts, release.WorkflowType, in)
	if err != nil {
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			c.AbortWithStatusJSON(http.StatusConflict, gin.H{"error": fmt.Sprintf("release %s already exists", in.ID), "field": "id"})
			return
		}
		s.log.ErrorContext(ctx, "start release workflow failed", "release", in.ID, "caller", in.RequestedBy, "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("start release %s: %v", in.ID, err))
		return
	}
	noteAudit(c, auditRelease, in.ID)
	noteAudit(c, auditDetail, "image "+in.Image+" tenants "+selectorText(in.Plan.Tenants))
	s.log.InfoContext(ctx, "release started", "release", in.ID, "image", in.Image, "tenants", selectorText(in.Plan.Tenants),
		"rollbackOf", in.RollbackOf, "caller", in.RequestedBy)
	c.Header("Location", releasePath(in.ID))
	c.JSON(http.StatusAccepted, releaseCreated{
		ID: in.ID, WorkflowID: run.GetID(), State: string(release.StateRunning), Plan: viewPlan(in.Plan), Links: releaseLinks{Self: releasePath(in.ID)},
	})
}

func releaseSummaryText(in release.Input) string {
	if in.RollbackOf != "" {
		return fmt.Sprintf("Release %s · rollback of %s · %s", in.ID, in.RollbackOf, selectorText(in.Plan.Tenants))
	}
	return fmt.Sprintf("Release %s · %s · %s", in.ID, in.Image, selectorText(in.Plan.Tenants))
}

func selectorText(sel release.TenantSelector) string {
	switch {
	case sel.All:
		return "all tenants"
	case sel.Stage != "":
		return "stage " + sel.Stage
	case len(sel.Names) == 1:
		return "tenant " + sel.Names[0]
	default:
		return strconv.Itoa(len(sel.Names)) + " tenants"
	}
}

// getRelease answers with the release as its workflow reports it.
func (s *server) getRelease(c *gin.Context) {
	id := c.Param("id")
	if ferr := validateReleaseID("id", id); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	query := release.QueryRelease
	switch v := c.Query("view"); v {
	case "", "full":
	case "summary":
		query = release.QuerySummary
	default:
		respondFieldError(c, badField("view", "view must be full (every tenant) or summary (tenants counted by status), not %q", v))
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	defer cancel()
	if st, ok := s.queryRelease(ctx, c, id, query); ok {
		c.JSON(http.StatusOK, viewRelease(st))
	}
}

// queryRelease asks the release workflow for its state; on failure it has
// answered the request (ok false).
func (s *server) queryRelease(ctx context.Context, c *gin.Context, id, query string) (st release.Release, ok bool) {
	value, err := s.temporal.QueryWorkflow(ctx, release.WorkflowID(id), "", query)
	var (
		notFound *serviceerror.NotFound
		deadline *serviceerror.DeadlineExceeded
	)
	switch {
	case err == nil:
	case errors.As(err, &notFound):
		respondError(c, http.StatusNotFound, fmt.Sprintf("release %s not found", id))
		return st, false
	case errors.As(err, &deadline), errors.Is(err, context.DeadlineExceeded), errors.Is(ctx.Err(), context.DeadlineExceeded):
		s.log.WarnContext(ctx, "release query timed out", "release", id, "timeout", s.cfg.QueryTimeout.String(), "error", err)
		respondError(c, http.StatusServiceUnavailable,
			fmt.Sprintf("release %s: no worker answered the query within %s", id, s.cfg.QueryTimeout))
		return st, false
	default:
		s.log.ErrorContext(ctx, "release query failed", "release", id, "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("query release %s: %v", id, err))
		return st, false
	}
	if value == nil || !value.HasValue() {
		respondError(c, http.StatusBadGateway, fmt.Sprintf("release %s: the query returned no value", id))
		return st, false
	}
	if err := value.Get(&st); err != nil {
		s.log.ErrorContext(ctx, "decode release state failed", "release", id, "error", err)
		respondError(c, http.StatusBadGateway, fmt.Sprintf("release %s: decode state: %v", id, err))
		return st, false
	}
	return st, true
}

// getReleaseTenants answers a page of the release's tenants:
// ?offset=&limit= (1 to release.MaxTenantsPage, default 100) and
// ?status= (one tenant status).
func (s *server) getReleaseTenants(c *gin.Context) {
	id := c.Param("id")
	if ferr := validateReleaseID("id", id); ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	page, ferr := tenantsPage(c)
	if ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	defer cancel()
	value, err := s.temporal.QueryWorkflow(ctx, release.WorkflowID(id), "", release.QueryTenants, page)
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		respondError(c, http.StatusNotFound, fmt.Sprintf("release %s not found", id))
		return
	case err != nil:
		s.log.WarnContext(ctx, "release tenants query failed", "release", id, "error", err)
		respondError(c, http.StatusServiceUnavailable, fmt.Sprintf("query the tenants of release %s: %v", id, err))
		return
	}
	var out release.TenantPage
	if value == nil || !value.HasValue() || value.Get(&out) != nil {
		respondError(c, http.StatusBadGateway, fmt.Sprintf("release %s: the tenants query returned no page", id))
		return
	}
	c.JSON(http.StatusOK, out)
}

// tenantsPage reads ?offset, ?limit and ?status; an error names its field.
func tenantsPage(c *gin.Context) (release.TenantsPage, *fieldError) {
	var p release.TenantsPage
	for _, f := range []struct {
		name string
		into *int
		max  int
	}{{"offset", &p.Offset, 1 << 30}, {"limit", &p.Limit, release.MaxTenantsPage}} {
		v, ok := c.GetQuery(f.name)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > f.max || (f.name == "limit" && n == 0) {
			return p, badField(f.name, "%s must be a whole number from %d to %d", f.name, minOf(f.name), f.max)
		}
		*f.into = n
	}
	if v, ok := c.GetQuery("status"); ok {
		if !slices.Contains(release.TenantStatuses, release.TenantStatus(v)) {
			return p, badField("status", "status %q is not a tenant status (one of %v)", v, release.TenantStatuses)
		}
		p.Status = release.TenantStatus(v)
	}
	return p, nil
}

func minOf(field string) int {
	if field == "limit" {
		return 1
	}
	return 0
}

// promoteRelease lets the release go on from staging to prod. The workflow
// decides whether it may (staging done and healthy); the API passes on its
// verdict, and answers with the release once prod has started.
func (s *server) promoteRelease(c *gin.Context) {
	id, body, ok := releaseAction(c, s.cfg.MaxBodyBytes)
	if !ok {
		return
	}
	st, ok := s.sendReleaseUpdate(c, id, release.UpdatePromote,
		release.PromoteInput{Release: id, By: c.GetString(ctxCaller), Reason: noteReason(c, body.Reason)})
	if !ok {
		return
	}
	st, taken := s.promotionTaken(c, id, st)
	if !taken {
		// Accepted, but not shown yet: the client follows with GET.
		c.Header("Location", releasePath(id))
		c.JSON(http.StatusAccepted, viewRelease(st))
		return
	}
	c.JSON(http.StatusOK, viewRelease(st))
}

// promotionTaken waits, within the query timeout, for the release to act
// on its accepted promotion. The promote Update's handler only records the
// promotion, so its result still says awaiting-promotion; the release's
// main loop moves to prod right after, which a query shows. taken is false
// when no query showed it in time; st is then the last state known.
func (s *server) promotionTaken(c *gin.Context, id string, st release.Release) (_ release.Release, taken bool) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), s.cfg.QueryTimeout)
	defer cancel()
	var wait time.Duration // the first query goes at once
	for st.State == release.StateAwaitingPromotion {
		select {
		case <-ctx.Done():
			s.log.WarnContext(ctx, "promotion accepted, but the release did not show it in time", "release", id)
			return st, false
		case <-time.After(wait):
			wait = min(max(2*wait, 10*time.Millisecond), 200*time.Millisecond)
		}
		value, err := s.temporal.QueryWorkflow(ctx, release.WorkflowID(id), "", release.QueryRelease)
		var next release.Release
		if err == nil && value != nil && value.HasValue() && value.Get(&next) == nil {
			st = release.Summary(next) // an answer that does not grow with the fleet
		}
	}
	return st, true
}

// controlRelease is the handler of pause, resume and abort (update).
func (s *server) controlRelease(update string) gin.HandlerFunc {
	return func(c *gin.Context) {
		id, body, ok := releaseAction(c, s.cfg.MaxBodyBytes)
		if !ok {
			return
		}
		s.updateRelease(c, id, update, release.ControlInput{By: c.GetString(ctxCaller), Reason: noteReason(c, body.Reason)})
	}
}

// releaseAction reads the id and the optional body of a release action.
func releaseAction(c *gin.Context, limit int64) (id string, body releaseActionRequest, ok bool) {
	id = c.Param("id")
	if ferr := validateReleaseID("id", id); ferr != nil {
		respondFieldError(c, ferr)
		return id, body, false
	}
	if ferr := decodeOptionalJSONBody(c, limit, &body); ferr != nil {
		respondFieldError(c, ferr)
		return id, body, false
	}
	if len(body.Reason) > maxReleaseReasonBytes {
		respondFieldError(c, badField("reason", "reason must be at most %d bytes", maxReleaseReasonBytes))
		return id, body, false
	}
	return id, body, true
}

// updateRelease sends a release Update and answers with the state the
// workflow returns.
func (s *server) updateRelease(c *gin.Context, id, update string, arg any) {
	if st, ok := s.sendReleaseUpdate(c, id, update, arg); ok {
		c.JSON(http.StatusOK, viewRelease(st))
	}
}

// sendReleaseUpdate sends a release Update and returns the state the
// workflow returns; on false the request is answered. An Idempotency-Key
// makes the Update id, so a client that retries after a timeout gets the
// first outcome instead of acting twice.
func (s *server) sendReleaseUpdate(c *gin.Context, id, update string, arg any) (st release.Release, ok bool) {
	if !s.sendUpdate(c, release.WorkflowID(id), updateTarget{kind: "release", id: id,
		ended:    "has ended: it can no longer " + update,
		refusals: []string{release.ErrPromoteRejected, release.ErrReleaseControlRejected}}, update, arg, &st) {
		return st, false
	}
	s.log.InfoContext(c.Request.Context(), "release "+update, "release", id, "caller", c.GetString(ctxCaller), "state", st.State)
	return st, true
}

// releaseListItem is one release as visibility knows it.
type releaseListItem struct {
	ID         string     `json:"id"`
	WorkflowID string     `json:"workflowId"`
	Status     string     `json:"status"`
	Image      string     `json:"image,omitempty"`
	StartTime  time.Time  `json:"startTime"`
	CloseTime  *time.Time `json:"closeTime,omitempty"`
}

type listReleasesResponse struct {
	Releases      []releaseListItem `json:"releases"`
	NextPageToken string            `json:"nextPageToken,omitempty"`
}

// releaseListQuery lists the current run of every release (a release that
// continued as new lives on in its next run).
var releaseListQuery = fmt.Sprintf("WorkflowType = '%s' AND ExecutionStatus != 'ContinuedAsNew'", release.WorkflowType)

// listReleases lists releases from visibility, newest first within a page.
func (s *server) listReleases(c *gin.Context) {
	pageSize, token, ferr := parsePage(c)
	if ferr != nil {
		respondFieldError(c, ferr)
		return
	}
	resp, ok := s.listWorkflows(c, "releases", releaseListQuery, pageSize, token)
	if !ok {
		return
	}
	out := listReleasesResponse{Releases: make([]releaseListItem, 0, len(resp.GetExecutions()))}
	for _, e := range resp.GetExecutions() {
		out.Releases = append(out.Releases, releaseItem(e))
	}
	slices.SortStableFunc(out.Releases, func(a, b releaseListItem) int { return cmp.Compare(b.StartTime.UnixNano(), a.StartTime.UnixNano()) })
	if t := resp.GetNextPageToken(); len(t) > 0 {
		out.NextPageToken = encodePageToken(t)
	}
	c.JSON(http.StatusOK, out)
}

func releaseItem(e *workflowpb.WorkflowExecutionInfo) releaseListItem {
	wid := e.GetExecution().GetWorkflowId()
	r := releaseListItem{
		ID:         strings.TrimPrefix(wid, release.WorkflowID("")),
		WorkflowID: wid,
		Status:     e.GetStatus().String(),
		Image:      keyword(e.GetSearchAttributes().GetIndexedFields(), saImage),
	}
	if ts := e.GetStartTime(); ts != nil {
		r.StartTime = ts.AsTime()
	}
	if ts := e.GetCloseTime(); ts != nil {
		t := ts.AsTime()
		r.CloseTime = &t
	}
	return r
}
