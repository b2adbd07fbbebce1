package portal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// cookieName is the session cookie, scoped to the portal's path.
const cookieName = "tenantflow_portal"

// session is what a signed-in browser holds, sealed (AES-GCM) in its
// cookie: the person's API token, the CSRF token of its forms and when
// the sign-in ends. Sealed, the cookie can be neither read nor forged, and
// any replica sharing the key can serve it; nothing is kept server-side.
type session struct {
	Token   string `json:"t"`
	CSRF    string `json:"c"`
	Expires int64  `json:"e"`
}

type sessions struct {
	aead cipher.AEAD
	ttl  time.Duration
}

func randomKey() ([]byte, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("portal: session key: %w", err)
	}
	return key, nil
}

func newSessions(key []byte, ttl time.Duration) (*sessions, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("portal config: SessionKey has %d bytes, want 32", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("portal: session key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("portal: session key: %w", err)
	}
	return &sessions{aead: aead, ttl: ttl}, nil
}

// start signs the browser in with token: a new CSRF token and a cookie
// the browser sends only to the portal, never to scripts or other sites.
func (s *sessions) start(w http.ResponseWriter, r *http.Request, token string, now time.Time, secure bool) error {
	csrf := make([]byte, 18)
	if _, err := rand.Read(csrf); err != nil {
		return err
	}
	sess := session{Token: token, CSRF: base64.RawURLEncoding.EncodeToString(csrf), Expires: now.Add(s.ttl).Unix()}
	plain, err := json.Marshal(sess)
	if err != nil {
		return err
	}
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	sealed := s.aead.Seal(nonce, nonce, plain, []byte(cookieName))
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: base64.RawURLEncoding.EncodeToString(sealed),
		Path: Prefix, Expires: now.Add(s.ttl), HttpOnly: true, Secure: secure || r.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
	return nil
}

// read is the browser's session, if its cookie is one of ours and has not
// ended.
func (s *sessions) read(r *http.Request, now time.Time) (session, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return session{}, false
	}
	sealed, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(sealed) < s.aead.NonceSize() {
		return session{}, false
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(cookieName))
	if err != nil {
		return session{}, false
	}
	var sess session
	if json.Unmarshal(plain, &sess) != nil || sess.Token == "" || now.Unix() >= sess.Expires {
		return session{}, false
	}
	return sess, true
}

// end signs the browser out.
func (s *sessions) end(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: Prefix, MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// validCSRF tells whether a form carries its session's CSRF token.
func (sess session) validCSRF(r *http.Request) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) == 1
}

// signedIn guards a page: without a session the visitor is sent to sign
// in (and back afterwards); a form must carry the session's CSRF token.
func (p *Portal) signedIn(h func(http.ResponseWriter, *http.Request, session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess, ok := p.sessions.read(r, p.now())
		if !ok {
			if r.Method == http.MethodGet && r.Header.Get("Accept") != "text/event-stream" {
				http.Redirect(w, r, Prefix+"/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			p.fail(w, r, http.StatusUnauthorized, "Your session has ended. Sign in again.")
			return
		}
		if name := r.PathValue("name"); name != "" && !validName(name) {
			// Never echoed into a form's address: a name the API could
			// not have is no customer.
			p.fail(w, r, http.StatusNotFound, "There is no such customer.")
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if !sess.validCSRF(r) {
				p.fail(w, r, http.StatusForbidden, "This form has expired or did not come from this portal. Go back, reload the page and try again.")
				return
			}
		}
		h(w, r, sess)
	}
}

// validName is the API's rule for a tenant's name: a DNS label of 3–40
// characters.
func validName(name string) bool {
	return len(name) >= 3 && spec.IsDNSLabel(name, 40)
}

// maxFormBytes bounds a form: the largest, a new customer with every
// setting at its longest, is well below.
const maxFormBytes = 256 << 10
