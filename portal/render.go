package portal

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// view is what every page's template gets: the page's own data in Data.
type view struct {
	Title    string
	SignedIn bool
	CSRF     string
	Notice   string // a one-line confirmation of what was just done
	Data     any
}

// parsePages parses each page with the layout it fills.
func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"ago":      ago,
		"percent":  percent,
		"stateTag": stateTag,
		"join":     strings.Join,
		"fieldOf":  fieldOf,
		"deref":    func(t *time.Time) time.Time { return *t },
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, name := range names {
		base := path.Base(name)
		if base == "layout.html" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", name)
		if err != nil {
			return nil, fmt.Errorf("portal: page %s: %w", base, err)
		}
		pages[strings.TrimSuffix(base, ".html")] = t
	}
	return pages, nil
}

// render writes a page; it is rendered whole before anything is sent, so a
// template error becomes a clean 500, never half a page.
func (p *Portal) render(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	t, ok := p.pages[page]
	if !ok {
		p.log.ErrorContext(r.Context(), "portal: no such page", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		p.log.ErrorContext(r.Context(), "portal: render", "page", page, "error", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail shows a page that says what went wrong, in words for the person.
func (p *Portal) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	sess, ok := p.sessions.read(r, p.now())
	p.render(w, r, status, "error", view{Title: http.StatusText(status), SignedIn: ok, CSRF: sess.CSRF, Data: msg})
}

// failAPI shows an API refusal: sign-in again for a token no longer
// accepted, the API's own message otherwise (it names the tenant and the
// reason, never a secret).
func (p *Portal) failAPI(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		p.log.ErrorContext(r.Context(), "portal: API call", "error", err)
		p.fail(w, r, http.StatusBadGateway, "The platform gave an answer the portal could not read. Try again in a moment.")
		return
	}
	switch ae.Status {
	case http.StatusUnauthorized:
		p.sessions.end(w)
		p.fail(w, r, http.StatusUnauthorized, "Your token is no longer accepted. Sign in again.")
	case http.StatusForbidden:
		p.fail(w, r, http.StatusForbidden, "Your token's role may not do this: "+ae.Message)
	default:
		p.fail(w, r, ae.Status, ae.Message)
	}
}

// newKey is an Idempotency-Key for a form: a resent form (a double click,
// a retry after a timeout) gets the first answer instead of acting twice.
func newKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// safeNext keeps a sign-in's return address inside the portal.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix+"/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return Prefix + "/tenants"
	}
	return next
}

// ago says how long ago t was, roughly, as people say it.
func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	default:
		return t.UTC().Format("2006-01-02")
	}
}

func percent(done, total int) int {
	if total <= 0 {
		return 0
	}
	return done * 100 / total
}

// stateTag is a state's class, for its colour; the text says the state,
// so colour is never the only sign.
func stateTag(state string) string {
	switch state {
	case "active":
		return "ok"
	case "failed", "degraded":
		return "bad"
	case "decommissioned", "suspended":
		return "off"
	default:
		return "busy"
	}
}

// formInput is one text input of a form, with its label, error and hint.
type formInput struct{ ID, Label, Value, Error, Hint string }

func fieldOf(id, label, value, err, hint string) formInput {
	return formInput{ID: id, Label: label, Value: value, Error: err, Hint: hint}
}
