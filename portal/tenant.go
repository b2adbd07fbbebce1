package portal

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

type tenantData struct {
	T tenantView
	// Busy: an operation is under way, and the page follows it live.
	Busy bool
	// CanDecommission, AwaitingConfirmation: which decommission actions
	// the page offers (the API decides whether they are allowed).
	CanDecommission, AwaitingConfirmation bool
	CredentialsTaken                      bool
	Key                                   string
	// Waiting says why the platform gave no state yet (a tenant just
	// created whose workflow is busy with its first steps): the page
	// follows it until it does.
	Waiting string
}

func (p *Portal) showTenant(w http.ResponseWriter, r *http.Request, sess session) {
	name := r.PathValue("name")
	t, err := p.api.getTenant(r.Context(), sess.Token, name)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable {
		t = tenantView{}
		t.Name = name
		d := tenantData{T: t, Busy: true, Waiting: ae.Message}
		p.render(w, r, http.StatusOK, "tenant", view{Title: name, SignedIn: true, CSRF: sess.CSRF, Notice: notice(r.URL.Query().Get("done")), Data: d})
		return
	}
	if err != nil {
		p.failAPI(w, r, err)
		return
	}
	d := tenantData{
		// A stale answer (the workflow busy) lacks what the actions need:
		// the page follows the tenant until a fresh one comes.
		T: t, Busy: stateTag(string(t.State)) == "busy" || t.Stale,
		CanDecommission:      canDecommission(t),
		AwaitingConfirmation: t.Decommission != nil && t.Decommission.Phase == tenant.PhaseAwaitingConfirmation,
		CredentialsTaken:     t.CredentialsFetchedAt != nil,
		Key:                  newKey(),
	}
	p.render(w, r, http.StatusOK, "tenant", view{Title: t.Name, SignedIn: true, CSRF: sess.CSRF, Notice: notice(r.URL.Query().Get("done")), Data: d})
}

// canDecommission mirrors the workflow's rule: an active or suspended
// tenant without a request under way (none, or one withdrawn, failed, or
// ended by a restore). The API decides in the end.
func canDecommission(t tenantView) bool {
	if t.State != tenant.StateActive && t.State != tenant.StateSuspended {
		return false
	}
	if t.Decommission == nil {
		return true
	}
	switch t.Decommission.Phase {
	case tenant.PhaseCancelled, tenant.PhaseFailed, tenant.PhaseRestored:
		return true
	}
	return false
}

// liveState is what a tenant's page updates as it changes.
type liveState struct {
	State   string `json:"state"`
	Tag     string `json:"tag"`
	Done    int    `json:"done"`
	Total   int    `json:"total"`
	Percent int    `json:"percent"`
	Step    string `json:"step"`
	Error   string `json:"error,omitempty"`
	URL     string `json:"url,omitempty"`
	Phase   string `json:"phase,omitempty"` // of a decommission
	Stale   bool   `json:"stale,omitempty"`
}

func live(t tenantView) liveState {
	s := liveState{
		State: string(t.State), Tag: stateTag(string(t.State)), Done: t.Progress.Done, Total: t.Progress.Total,
		Percent: percent(t.Progress.Done, t.Progress.Total), Step: t.Progress.Step, Error: t.Error, URL: t.URL, Stale: t.Stale,
	}
	if t.Decommission != nil {
		s.Phase = string(t.Decommission.Phase)
	}
	return s
}

// sessionEnded ends a stream whose session has.
const sessionEnded = "Your session has ended: sign in again."

// Server-Sent Events bounds: a comment every keepAlive keeps proxies
// from closing a quiet stream; after streamFor the stream ends and the
// browser reconnects, so no connection lives for ever.
const (
	keepAlive = 15 * time.Second
	streamFor = 30 * time.Minute
)

// tenantEvents streams the tenant's state as Server-Sent Events: one
// "tenant" event whenever what the page shows changes, read from the API
// every PollEvery (the API answers an idle tenant from its cache).
func (p *Portal) tenantEvents(w http.ResponseWriter, r *http.Request, sess session) {
	name := r.PathValue("name")
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	ctx := r.Context()
	end := time.Now().Add(streamFor)
	expires := time.Unix(sess.Expires, 0)
	tick := time.NewTicker(p.cfg.PollEvery)
	defer tick.Stop()
	var last []byte
	lastSent := time.Now()
	for {
		var msg string
		var final bool
		if p.now().Before(expires) {
			msg, final = p.nextEvent(r, sess, name, &last)
		} else {
			// The session has ended: the stream with it, as every page.
			msg, final = sse("end", map[string]string{"reason": sessionEnded}), true
		}
		if msg == "" && time.Since(lastSent) >= keepAlive {
			msg = ": keep-alive\n\n"
		}
		if msg != "" {
			// The server's write timeout is for ordinary answers; a
			// stream pushes each write's deadline on.
			_ = rc.SetWriteDeadline(time.Now().Add(keepAlive + 10*time.Second))
			if _, err := fmt.Fprint(w, msg); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			lastSent = time.Now()
		}
		if final || time.Now().After(end) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// nextEvent reads the tenant and returns the event to send ("" when
// nothing changed); final when the stream should end (the tenant is gone
// or the token no longer accepted).
func (p *Portal) nextEvent(r *http.Request, sess session, name string, last *[]byte) (msg string, final bool) {
	t, err := p.api.getTenant(r.Context(), sess.Token, name)
	var ae *apiError
	switch {
	case errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusUnauthorized || ae.Status == http.StatusForbidden):
		return sse("end", map[string]string{"reason": ae.Message}), true
	case err != nil:
		// A passing failure (no worker answered): say so, keep going.
		return sse("deferred", map[string]string{"reason": err.Error()}), false
	}
	b, _ := json.Marshal(live(t))
	if string(b) == string(*last) {
		return "", false
	}
	*last = b
	return "event: tenant\ndata: " + string(b) + "\n\n", false
}

func sse(event string, v any) string {
	b, _ := json.Marshal(v)
	return "event: " + event + "\ndata: " + string(b) + "\n\n"
}
