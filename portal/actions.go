package portal

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/tenantflow/tenantflow/workflows/tenant"
)

type credentialsData struct {
	Name  string
	Key   string
	Creds *tenant.Credentials
	// Taken: the password was handed out before; by whom.
	Taken string
}

// credentialsForm warns before the password is shown: it is shown once.
func (p *Portal) credentialsForm(w http.ResponseWriter, r *http.Request, sess session) {
	name := r.PathValue("name")
	p.render(w, r, http.StatusOK, "credentials", view{Title: "Credentials of " + name, SignedIn: true, CSRF: sess.CSRF, Data: credentialsData{Name: name, Key: newKey()}})
}

// fetchCredentials takes the password from the platform, which forgets it.
// The form's key makes a resent form (a timeout, a reload) get the same
// answer rather than "already fetched".
func (p *Portal) fetchCredentials(w http.ResponseWriter, r *http.Request, sess session) {
	name := r.PathValue("name")
	d := credentialsData{Name: name}
	creds, err := p.api.credentials(r.Context(), sess.Token, name, r.PostFormValue("key"))
	var ae *apiError
	switch {
	case errors.As(err, &ae) && ae.Status == http.StatusGone:
		d.Taken = ae.Message
		p.render(w, r, http.StatusGone, "credentials", view{Title: "Credentials of " + name, SignedIn: true, CSRF: sess.CSRF, Data: d})
		return
	case err != nil:
		p.failAPI(w, r, err)
		return
	}
	d.Creds = &creds
	p.render(w, r, http.StatusOK, "credentials", view{Title: "Credentials of " + name, SignedIn: true, CSRF: sess.CSRF, Data: d})
}

type decommissionData struct {
	Name, Key, Reason string
	Error             string // shown next to the reason
}

func (p *Portal) decommissionForm(w http.ResponseWriter, r *http.Request, sess session) {
	name := r.PathValue("name")
	p.render(w, r, http.StatusOK, "decommission", view{Title: "Decommission " + name, SignedIn: true, CSRF: sess.CSRF, Data: decommissionData{Name: name, Key: newKey()}})
}

// requestDecommission asks for the decommission; it waits for a
// confirmation, so nothing is removed yet.
func (p *Portal) requestDecommission(w http.ResponseWriter, r *http.Request, sess session) {
	name := r.PathValue("name")
	d := decommissionData{Name: name, Key: r.PostFormValue("key"), Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	if d.Reason == "" {
		d.Error = "Say why: the reason is kept with the request."
		p.render(w, r, http.StatusBadRequest, "decommission", view{Title: "Decommission " + name, SignedIn: true, CSRF: sess.CSRF, Data: d})
		return
	}
	err := p.api.requestDecommission(r.Context(), sess.Token, name, d.Reason, d.Key)
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusBadRequest {
		d.Error = ae.Message
		p.render(w, r, http.StatusBadRequest, "decommission", view{Title: "Decommission " + name, SignedIn: true, CSRF: sess.CSRF, Data: d})
		return
	}
	if err != nil {
		p.failAPI(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"/tenants/"+url.PathEscape(name)+"?done=decommission-requested", http.StatusSeeOther)
}

// decommissionAction confirms or withdraws a requested decommission.
func (p *Portal) decommissionAction(w http.ResponseWriter, r *http.Request, sess session) {
	name, action := r.PathValue("name"), r.PathValue("action")
	done := map[string]string{"confirm": "decommission-confirmed", "cancel": "decommission-cancelled"}[action]
	if done == "" {
		p.fail(w, r, http.StatusNotFound, "There is no such action.")
		return
	}
	if err := p.api.decommissionAction(r.Context(), sess.Token, name, action, r.PostFormValue("key")); err != nil {
		p.failAPI(w, r, err)
		return
	}
	http.Redirect(w, r, Prefix+"/tenants/"+url.PathEscape(name)+"?done="+done, http.StatusSeeOther)
}
