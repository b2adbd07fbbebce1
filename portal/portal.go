// Package portal is the distributor portal: server-rendered pages at
// /portal where a distributor lists its customers (tenants), creates one,
// watches its provisioning live, fetches its credentials once and requests
// its decommission.
//
// The portal is a client of the REST API, like the CLI: every action is an
// API request carrying the signed-in person's own bearer token, so it can
// never do what that token's role may not, and the API's validation,
// audit trail and metrics apply unchanged. In the tenantflow binary the
// API is called in-process (InProcess); nothing in the portal needs to
// know.
//
// Pages are Go templates and plain HTML forms; live progress comes over
// Server-Sent Events and a few lines of the portal's own JavaScript. There
// is no build step and nothing fetched from a third party.
package portal

import (
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/tenantflow/tenantflow/activities/spec"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the portal is served.
const Prefix = "/portal"

// Config is the portal's configuration.
type Config struct {
	// API is a client of the REST API: BaseURL with Client's transport
	// (InProcess in the tenantflow binary).
	API *http.Client
	// BaseURL is the API's URL ("http://api" for an in-process API).
	BaseURL string
	// Templates are the API's templates: the create form offers their
	// plans and settings (the API checks the values).
	Templates spec.Templates
	// SessionKey seals the session cookie (32 bytes). Several API
	// replicas behind one address must share it; nil: a random key, and
	// sessions end when the process does.
	SessionKey []byte
	// SessionTTL is how long a sign-in lasts (0: 8 hours).
	SessionTTL time.Duration
	// SecureCookies marks the session cookie Secure, for a portal served
	// over HTTPS behind a proxy (requests over TLS get it anyway).
	SecureCookies bool
	// PollEvery is how often a live page re-reads its tenant (0: 1 s).
	PollEvery time.Duration
	// PageSize is the number of tenants a list page shows (0: 100).
	PageSize int
}

const (
	defaultSessionTTL = 8 * time.Hour
	defaultPollEvery  = time.Second
	defaultPageSize   = 100
)

func (c Config) withDefaults() (Config, error) {
	if c.API == nil {
		return c, errors.New("portal config: API client is required")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return c, fmt.Errorf("portal config: BaseURL %q: want http(s)://host[:port]", c.BaseURL)
	}
	if len(c.Templates) == 0 {
		return c, errors.New("portal config: no templates (no customer could be created)")
	}
	if c.SessionTTL < 0 || c.PollEvery < 0 || c.PageSize < 0 {
		return c, errors.New("portal config: SessionTTL, PollEvery and PageSize must not be negative")
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = defaultSessionTTL
	}
	if c.PollEvery == 0 {
		c.PollEvery = defaultPollEvery
	}
	if c.PageSize == 0 {
		c.PageSize = defaultPageSize
	}
	if c.PageSize > 1000 {
		return c, fmt.Errorf("portal config: PageSize %d above the API's 1000", c.PageSize)
	}
	return c, nil
}

// Portal serves the pages.
type Portal struct {
	cfg      Config
	api      *apiClient
	sessions *sessions
	pages    map[string]*template.Template
	log      *slog.Logger
	mux      *http.ServeMux
	// now is the clock of sessions (tests set it).
	now func() time.Time
}

// New returns the portal's handler; it serves paths under Prefix. A nil
// log discards.
func New(cfg Config, log *slog.Logger) (*Portal, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	key := cfg.SessionKey
	if key == nil {
		if key, err = randomKey(); err != nil {
			return nil, err
		}
	}
	s, err := newSessions(key, cfg.SessionTTL)
	if err != nil {
		return nil, err
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	p := &Portal{cfg: cfg, api: &apiClient{http: cfg.API, base: cfg.BaseURL}, sessions: s, pages: pages, log: log, now: time.Now}
	p.routes()
	return p, nil
}

func (p *Portal) routes() {
	m := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	m.Handle("GET "+Prefix+"/static/", http.StripPrefix(Prefix+"/static/", cacheStatic(http.FileServerFS(static))))
	m.HandleFunc("GET "+Prefix, p.home)
	m.HandleFunc("GET "+Prefix+"/{$}", p.home)
	m.HandleFunc("GET "+Prefix+"/signin", p.signinForm)
	m.HandleFunc("POST "+Prefix+"/signin", p.signin)
	m.HandleFunc("POST "+Prefix+"/signout", p.signedIn(p.signout))
	m.HandleFunc("GET "+Prefix+"/tenants", p.signedIn(p.listTenants))
	m.HandleFunc("GET "+Prefix+"/tenants/new", p.signedIn(p.newTenantForm))
	m.HandleFunc("POST "+Prefix+"/tenants", p.signedIn(p.createTenant))
	m.HandleFunc("GET "+Prefix+"/tenants/{name}", p.signedIn(p.showTenant))
	m.HandleFunc("GET "+Prefix+"/tenants/{name}/events", p.signedIn(p.tenantEvents))
	m.HandleFunc("GET "+Prefix+"/tenants/{name}/credentials", p.signedIn(p.credentialsForm))
	m.HandleFunc("POST "+Prefix+"/tenants/{name}/credentials", p.signedIn(p.fetchCredentials))
	m.HandleFunc("GET "+Prefix+"/tenants/{name}/decommission", p.signedIn(p.decommissionForm))
	m.HandleFunc("POST "+Prefix+"/tenants/{name}/decommission", p.signedIn(p.requestDecommission))
	m.HandleFunc("POST "+Prefix+"/tenants/{name}/decommission/{action}", p.signedIn(p.decommissionAction))
	p.mux = m
}

// ServeHTTP serves a portal request with the headers every page carries:
// no framing, no inline script or style, no third-party anything.
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	if r.Method == http.MethodPost && !sameOrigin(r) {
		p.fail(w, r, http.StatusForbidden, "This form was sent from another site, and was refused.")
		return
	}
	p.mux.ServeHTTP(w, r)
}

// home sends a visitor to the customers, or to sign in.
func (p *Portal) home(w http.ResponseWriter, r *http.Request) {
	if _, ok := p.sessions.read(r, p.now()); ok {
		http.Redirect(w, r, Prefix+"/tenants", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, Prefix+"/signin", http.StatusSeeOther)
}

// cacheStatic lets browsers keep the stylesheet and script for an hour;
// they change only with the binary.
func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}

// sameOrigin refuses a form sent from another site: current browsers send
// Sec-Fetch-Site with every request, older ones Origin with every POST
// (compared with Host then). A request with neither is not from a
// browser, and carries no cookie of a victim's unless it is a very old
// browser, which the CSRF token still stops.
func sameOrigin(r *http.Request) bool {
	// The browser's own word, when it gives it, decides: a proxy in
	// front may rewrite Host, so Origin and Host may differ for a form
	// of the portal itself.
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "same-origin" || site == "none"
	}
	origin := r.Header.Get("Origin")
	if origin == "" || origin == "null" {
		return origin == ""
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host == r.Host
}
