package codec

import (
	"net/http"
	"slices"
)

// WebHandler serves the codec endpoint for the Temporal Web UI: the browser
// calls it cross-origin, so allowed origins get CORS headers (preflights are
// answered without authentication, as browsers send none), and every real
// request must pass authorize, so only people allowed to read payloads can
// have them decrypted.
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
		inner.ServeHTTP(w, r)
	})
}
