package codec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
)

// MaxWebRequestBytes bounds a codec request's body. The Web UI posts the
// payloads of one history event or one input at a time; Temporal refuses a
// payload over 2 MiB and a gRPC message over 4 MiB, so a batch the server
// could ever have stored fits in 4 MiB, about 5.4 MiB once base64 and
// protojson wrap it. 8 MiB leaves room for that and keeps a caller from
// making the process buffer an unbounded body.
const MaxWebRequestBytes = 8 << 20

// WebHandler serves the codec endpoint for the Temporal Web UI: the browser
// calls it cross-origin, so allowed origins get CORS headers (preflights are
// answered without authentication, as browsers send none), and every real
// request must pass authorize, so only people allowed to read payloads can
// have them decrypted. Bodies over MaxWebRequestBytes get 413 without
// being read further.
func (k *Keyring) WebHandler(origins []string, authorize func(*http.Request) bool) http.Handler {
	inner := k.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && (slices.Contains(origins, origin) || slices.Contains(origins, "*")) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Allow-Headers", "Content-Type, X-Namespace, Authorization")
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			h.Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if !authorize(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tenantflow"`)
			http.Error(w, `{"error":"codec: missing or invalid bearer token (role ops required)"}`, http.StatusUnauthorized)
			return
		}
		if !limitBody(w, r, MaxWebRequestBytes) {
			return
		}
		inner.ServeHTTP(w, r)
	})
}

// limitBody reads r's body, at most limit bytes, and puts it back for the
// next handler; a larger body is answered 413 (false). The SDK's handler
// would read any size, and answer a cut-off body with 400.
func limitBody(w http.ResponseWriter, r *http.Request, limit int64) bool {
	tooLarge := func() {
		http.Error(w, fmt.Sprintf(`{"error":"codec: request body larger than %d bytes"}`, limit), http.StatusRequestEntityTooLarge)
	}
	if r.ContentLength > limit {
		tooLarge()
		return false
	}
	if r.Body == nil || r.Body == http.NoBody {
		return true
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var maxErr *http.MaxBytesError
	switch {
	case errors.As(err, &maxErr):
		tooLarge()
		return false
	case err != nil:
		http.Error(w, `{"error":"codec: request body unreadable"}`, http.StatusBadRequest)
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return true
}
