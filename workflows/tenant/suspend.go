package tenant

import (
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/tenantflow/tenantflow/activities/ldap"
	"github.com/tenantflow/tenantflow/activities/proxy"
	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/supervision"
	"github.com/tenantflow/tenantflow/workflows/flow"
)

// Suspend and resume (an unpaid invoice, a security incident). A suspend
// runs as the tenant's next operation once it is active:
//
//	maintenance page on the URL → services stopped (public first) →
//	directory accounts disabled → supervision paused
//
// Every byte of data stays where it is, and so do the containers, the
// DNS record and the CMDB entry. A failure undoes what was done, and the
// tenant serves as before, the failure in its suspension. A suspended
// tenant takes no release (a release skips it and says why), backup,
// move or restore: its data does not change. It may be decommissioned:
// its databases start for their dump alone, with no route to them, and a
// decommission that fails leaves it suspended (see decommission.go). A
// resume
// runs the other way:
//
//	services started and healthy → accounts enabled → supervision resumed
//	→ the route back to the services
//
// and a failure leaves the tenant suspended (services stopped again),
// its maintenance page still served.

// Updates that suspend and resume the tenant; each is accepted at once
// and runs as the tenant's next operation.
const (
	UpdateSuspend = "suspend"
	UpdateResume  = "resume"
)

// ErrSuspendRefused is the failure type of a refused suspend or resume.
const ErrSuspendRefused = "SuspendRefused"

// DefaultMaintenanceMessage is what a suspended tenant's URL says when
// the request gives no message. The reason is for the provider, never
// shown to the tenant's users.
const DefaultMaintenanceMessage = "This service is temporarily unavailable."

// SuspendRequest asks for the tenant's suspension: who, why (kept in its
// state and logs), and what its URL tells users meanwhile.
type SuspendRequest struct {
	By      string `json:"by"`
	Reason  string `json:"reason"`
	Message string `json:"message,omitempty"`
}

// ResumeRequest asks for the suspended tenant to serve again.
type ResumeRequest struct {
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
}

// SuspensionPhase is where a suspension stands.
type SuspensionPhase string

// Phases of a suspension.
const (
	SuspendQueued  SuspensionPhase = "suspend-queued"
	SuspendRunning SuspensionPhase = "suspending"
	SuspendDone    SuspensionPhase = "suspended"
	SuspendFailed  SuspensionPhase = "suspend-failed" // undone: the tenant serves as before
	ResumeQueued   SuspensionPhase = "resume-queued"
	ResumeRunning  SuspensionPhase = "resuming"
	ResumeDone     SuspensionPhase = "resumed"
	ResumeFailed   SuspensionPhase = "resume-failed" // the tenant stays suspended
	// SuspendEnded: the tenant was decommissioned while suspended; a
	// restore brings it back active.
	SuspendEnded       SuspensionPhase = "ended"
	suspensionNotBegun SuspensionPhase = ""
)

// suspensionMoves is a suspension's course.
var suspensionMoves = flow.Moves[SuspensionPhase]{
	suspensionNotBegun: {SuspendQueued},
	SuspendQueued:      {SuspendRunning},
	SuspendRunning:     {SuspendDone, SuspendFailed},
	SuspendFailed:      {SuspendQueued},
	SuspendDone:        {ResumeQueued, SuspendEnded},
	SuspendEnded:       {SuspendQueued},
	ResumeQueued:       {ResumeRunning},
	ResumeRunning:      {ResumeDone, ResumeFailed},
	ResumeFailed:       {ResumeQueued},
	ResumeDone:         {SuspendQueued},
}

// To is the move of a suspension in phase p to next, or an error when its
// course does not allow it.
func (p SuspensionPhase) To(next SuspensionPhase) (SuspensionPhase, error) {
	return suspensionMoves.Check("suspension phase", p, next)
}

// Suspension is the tenant's suspension, under way or the last one.
type Suspension struct {
	Phase       SuspensionPhase `json:"phase"`
	By          string          `json:"by"`
	Reason      string          `json:"reason"`
	Message     string          `json:"message"`
	RequestedAt time.Time       `json:"requestedAt"`
	SuspendedAt *time.Time      `json:"suspendedAt,omitempty"`
	// ResumedBy, ResumeReason and ResumedAt: the resume, once asked for.
	ResumedBy         string     `json:"resumedBy,omitempty"`
	ResumeReason      string     `json:"resumeReason,omitempty"`
	ResumeRequestedAt *time.Time `json:"resumeRequestedAt,omitempty"`
	ResumedAt         *time.Time `json:"resumedAt,omitempty"`
	Error             string     `json:"error,omitempty"`
}

func (s *Suspension) moveTo(next SuspensionPhase) { s.Phase = flow.Must(s.Phase.To(next)) }

// Steps of a suspend and a resume, as the progress query names them.
const (
	StepMaintenancePage   = "serve the maintenance page"
	StepDisableAccounts   = "disable accounts"
	StepPauseSupervision  = "pause supervision"
	StepEnableAccounts    = "enable accounts"
	StepResumeSupervision = "resume supervision"
	StepRouteBack         = "route back to the services"
)

// suspendDue: a queued suspend may run.
func (t *entity) suspendDue() bool {
	s := t.state.Suspension
	return s != nil && s.Phase == SuspendQueued && t.state.State == StateActive
}

// resumeDue: a queued resume may run.
func (t *entity) resumeDue() bool {
	s := t.state.Suspension
	return s != nil && s.Phase == ResumeQueued && t.state.State == StateSuspended
}

// requestSuspend queues the suspend.
func (t *entity) requestSuspend(ctx workflow.Context, in SuspendRequest) (Suspension, error) {
	msg := in.Message
	if msg == "" {
		msg = DefaultMaintenanceMessage
	}
	s := &Suspension{By: in.By, Reason: in.Reason, Message: msg, RequestedAt: workflow.Now(ctx)}
	if prev := t.state.Suspension; prev != nil {
		s.Phase = prev.Phase
	}
	s.moveTo(SuspendQueued)
	t.state.Suspension = s
	t.logger(ctx).Info("suspend requested", "by", in.By, "reason", in.Reason)
	return *s, nil
}

func (t *entity) validateSuspend(ctx workflow.Context, in SuspendRequest) error {
	s := t.state.Suspension
	switch {
	case in.By == "" || in.Reason == "":
		return flow.Refuse(ErrSuspendRefused, "a suspend needs a requester (by) and a reason")
	case s != nil && (s.Phase == SuspendQueued || s.Phase == SuspendRunning):
		return flow.Refuse(ErrSuspendRefused, "tenant %s is being suspended already (asked by %s)", t.spec.Name, s.By)
	case t.state.State == StateSuspended:
		return flow.Refuse(ErrSuspendRefused, "tenant %s is suspended already since %s (by %s: %s)", t.spec.Name, s.SuspendedAt.UTC().Format(time.RFC3339), s.By, s.Reason)
	case t.state.State != StateActive:
		return flow.Refuse(ErrSuspendRefused, "tenant %s is %s: only an active tenant is suspended", t.spec.Name, t.state.State)
	}
	return nil
}

// requestResume queues the resume.
func (t *entity) requestResume(ctx workflow.Context, in ResumeRequest) (Suspension, error) {
	s := t.state.Suspension
	s.moveTo(ResumeQueued)
	s.ResumedBy, s.ResumeReason, s.ResumeRequestedAt, s.Error = in.By, in.Reason, timePtr(workflow.Now(ctx)), ""
	t.logger(ctx).Info("resume requested", "by", in.By, "reason", in.Reason)
	return *s, nil
}

func (t *entity) validateResume(ctx workflow.Context, in ResumeRequest) error {
	s := t.state.Suspension
	switch {
	case in.By == "":
		return flow.Refuse(ErrSuspendRefused, "a resume needs a requester (by)")
	case t.state.State != StateSuspended || s == nil:
		return flow.Refuse(ErrSuspendRefused, "tenant %s is %s: only a suspended tenant is resumed", t.spec.Name, t.state.State)
	case s.Phase == ResumeQueued || s.Phase == ResumeRunning:
		return flow.Refuse(ErrSuspendRefused, "tenant %s is being resumed already (asked by %s)", t.spec.Name, s.ResumedBy)
	}
	return nil
}

// suspend runs the queued suspend (see above).
func (t *entity) suspend(ctx workflow.Context) {
	s, started := t.state.Suspension, workflow.Now(ctx)
	s.moveTo(SuspendRunning)
	s.Error = ""
	t.state.Progress = flow.Progress{Total: 4}
	var undo flow.Saga
	err := t.suspendSteps(ctx, s, &undo)
	t.step("")
	if err != nil {
		msg := undo.Undo(ctx, flow.ErrorMessage(err), "undo")
		s.moveTo(SuspendFailed)
		s.Error = msg
		t.logger(ctx).Error("suspend failed; the tenant serves as before", "error", msg)
		t.state.Error = "suspend failed: " + msg
		t.upsertSearchAttributes(ctx)
		t.countOperation(ctx, "suspend", "failed", started)
		return
	}
	s.moveTo(SuspendDone)
	s.SuspendedAt = timePtr(workflow.Now(ctx))
	t.setState(ctx, StateSuspended, "")
	t.logger(ctx).Info("tenant suspended", "by", s.By, "reason", s.Reason)
	t.countOperation(ctx, "suspend", "succeeded", started)
}

func (t *entity) suspendSteps(ctx workflow.Context, s *Suspension, undo *flow.Saga) error {
	env, err := t.liveEnv()
	if err != nil {
		return err
	}
	owner := t.state.ProvisionID
	// Users see the page before anything stops: no request meets a
	// stopping service.
	t.step(StepMaintenancePage)
	if _, routed := t.resource(KindRoute); routed {
		up, err := upstream(runtimes.Endpoint{URL: t.state.Endpoint})
		if err != nil {
			return err
		}
		back, page := t.routeTo(up, ""), t.routeTo("", s.Message)
		if err := call(ctx, undo, "route back to the services", px.EnsureRoute, back, px.EnsureRoute, page, nil); err != nil {
			return err
		}
	}
	t.stepDone()

	t.step(StepStopServices)
	undo.Add("start services", func(ctx workflow.Context) error { return t.restartServices(ctx, env) })
	public, others := t.serviceNames()
	if err := t.stopServices(ctx, public); err != nil {
		return err
	}
	if err := t.stopServices(ctx, others); err != nil {
		return err
	}
	t.stepDone()

	t.step(StepDisableAccounts)
	if _, ok := t.resource(KindLDAP); ok {
		ref := ldap.DirectoryRef{Tenant: t.spec.Name, Owner: owner, Adopt: t.adopt()}
		if err := call(ctx, undo, "enable accounts", ld.EnableAccounts, ref, ld.DisableAccounts, ref, nil); err != nil {
			return err
		}
	}
	t.stepDone()

	t.step(StepPauseSupervision)
	if r, ok := t.resource(KindSupervision); ok {
		in := supervision.WatchInput{Tenant: t.spec.Name, Stage: t.spec.Stage, URL: r.Detail, Owner: owner, Adopt: t.adopt()}
		ref := supervision.WatchRef{Tenant: t.spec.Name, Owner: owner, Adopt: t.adopt()}
		if err := call(ctx, undo, "resume supervision", sv.StartSupervision, in, sv.StopSupervision, ref, nil); err != nil {
			return err
		}
	}
	t.stepDone()
	return nil
}

// resume runs the queued resume (see above).
func (t *entity) resume(ctx workflow.Context) {
	s, started := t.state.Suspension, workflow.Now(ctx)
	s.moveTo(ResumeRunning)
	t.state.Progress = flow.Progress{Total: 4}
	var undo flow.Saga
	err := t.resumeSteps(ctx, &undo)
	t.step("")
	if err != nil {
		msg := undo.Undo(ctx, flow.ErrorMessage(err), "undo")
		s.moveTo(ResumeFailed)
		s.Error = msg
		t.logger(ctx).Error("resume failed; the tenant stays suspended", "error", msg)
		t.setState(ctx, StateSuspended, "resume failed: "+msg)
		t.countOperation(ctx, "resume", "failed", started)
		return
	}
	s.moveTo(ResumeDone)
	s.ResumedAt = timePtr(workflow.Now(ctx))
	t.setState(ctx, StateActive, "")
	t.logger(ctx).Info("tenant resumed", "by", s.ResumedBy, "reason", s.ResumeReason)
	t.countOperation(ctx, "resume", "succeeded", started)
}

func (t *entity) resumeSteps(ctx workflow.Context, undo *flow.Saga) error {
	env, err := t.liveEnv()
	if err != nil {
		return err
	}
	owner := t.state.ProvisionID
	t.step(StepStartServices)
	public, others := t.serviceNames()
	all := slices.Concat(public, others)
	undo.Add("stop services", func(ctx workflow.Context) error { return t.stopServices(ctx, all) })
	if err := t.onHostLocal(ctx, localStepOptions, rt.StartServices, t.runtimeRef()).Get(ctx, nil); err != nil {
		return err
	}
	var ep runtimes.Endpoint
	if err := workflow.ExecuteActivity(t.onHost(workflow.WithActivityOptions(ctx, healthWaitOptions(env))), rt.WaitHealthy, env).Get(ctx, &ep); err != nil {
		return err
	}
	oldEndpoint := t.state.Endpoint
	t.state.Endpoint = ep.URL
	if _, routed := t.resource(KindRoute); !routed {
		t.state.URL = ep.URL
	}
	t.stepDone()

	t.step(StepEnableAccounts)
	if _, ok := t.resource(KindLDAP); ok {
		ref := ldap.DirectoryRef{Tenant: t.spec.Name, Owner: owner, Adopt: t.adopt()}
		if err := call(ctx, undo, "disable accounts", ld.DisableAccounts, ref, ld.EnableAccounts, ref, nil); err != nil {
			return err
		}
	}
	t.stepDone()

	t.step(StepResumeSupervision)
	if r, ok := t.resource(KindSupervision); ok {
		target := r.Detail
		if target == oldEndpoint {
			target = ep.URL // probes of the instance follow it
		}
		in := supervision.WatchInput{Tenant: t.spec.Name, Stage: t.spec.Stage, URL: target, Owner: owner, Adopt: t.adopt()}
		ref := supervision.WatchRef{Tenant: t.spec.Name, Owner: owner, Adopt: t.adopt()}
		if err := call(ctx, undo, "pause supervision", sv.StopSupervision, ref, sv.StartSupervision, in, nil); err != nil {
			return err
		}
		t.setResourceDetail(KindSupervision, target)
	}
	t.stepDone()

	t.step(StepRouteBack)
	if _, routed := t.resource(KindRoute); routed {
		up, err := upstream(ep)
		if err != nil {
			return err
		}
		var route proxy.Route
		if err := workflow.ExecuteActivity(workflow.WithActivityOptions(ctx, integrationOptions), px.EnsureRoute,
			t.routeTo(up, "")).Get(ctx, &route); err != nil {
			return err
		}
		t.setResourceDetail(KindRoute, route.URL+" -> "+up)
	}
	t.stepDone()
	return nil
}
