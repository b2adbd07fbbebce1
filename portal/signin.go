package portal

import (
	"errors"
	"net/http"
	"strings"
)

type signinData struct {
	Next  string
	Error string // shown next to the token field
}

func (p *Portal) signinForm(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, "signin", view{Title: "Sign in", Data: signinData{Next: safeNext(r.URL.Query().Get("next"))}})
}

// signin checks the token with the API (a list of one tenant, which every
// role may read) and starts a session with it.
func (p *Portal) signin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	token := strings.TrimSpace(r.PostFormValue("token"))
	data := signinData{Next: safeNext(r.PostFormValue("next"))}
	if token == "" {
		data.Error = "Enter the token you were given."
		p.render(w, r, http.StatusBadRequest, "signin", view{Title: "Sign in", Data: data})
		return
	}
	if _, err := p.api.listTenants(r.Context(), token, "", "", 1); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusUnauthorized {
			p.log.InfoContext(r.Context(), "portal: sign-in refused")
			data.Error = "This token is not accepted. Check it, or ask your provider for a new one."
			p.render(w, r, http.StatusUnauthorized, "signin", view{Title: "Sign in", Data: data})
			return
		}
		p.failAPI(w, r, err)
		return
	}
	if err := p.sessions.start(w, r, token, p.now(), p.cfg.SecureCookies); err != nil {
		p.fail(w, r, http.StatusInternalServerError, "The portal could not start your session.")
		return
	}
	http.Redirect(w, r, data.Next, http.StatusSeeOther)
}

func (p *Portal) signout(w http.ResponseWriter, r *http.Request, _ session) {
	p.sessions.end(w)
	http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
}
