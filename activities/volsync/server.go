package volsync

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/spec"
)

// Volumes gives the sync a tenant's volumes as host directories (the
// Docker driver does: VolumeDir checks the volume carries the tenant's
// and owner's labels).
type Volumes interface {
	VolumeDir(ctx context.Context, tenant, owner, volume string) (string, error)
}

// Routes of the receiver.
const (
	routeManifest = "GET /volsync/v1/tenants/{tenant}/volumes/{volume}/manifest"
	routeApply    = "PUT /volsync/v1/tenants/{tenant}/volumes/{volume}"
)

// Server is the receiving side: a host worker serves it so that the
// other hosts' workers can copy volumes into its tenants'. Every request
// carries the fleet's token.
type Server struct {
	Volumes Volumes
	Token   string
	Log     *slog.Logger

	mu   sync.Mutex
	busy map[string]bool
}

// Handler is the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(routeManifest, s.authorized(s.manifest))
	mux.HandleFunc(routeApply, s.authorized(s.apply))
	return mux
}

// failure is an error answer: the message and, for a refusal, the
// Temporal failure type the sender reports.
type failure struct {
	Error string `json:"error"`
	Type  string `json:"type,omitempty"`
}

func (s *Server) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Server) authorized(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || s.Token == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.Token)) != 1 {
			s.log().Warn("volume sync refused: wrong or missing token", "remote", r.RemoteAddr, "path", r.URL.Path)
			answer(w, http.StatusUnauthorized, failure{Error: "the volume sync token is wrong (" + EnvToken + " must be the same on every host)", Type: ErrUnauthorized})
			return
		}
		next(w, r)
	}
}

// volumeDir resolves the request's volume, answering the error itself.
func (s *Server) volumeDir(w http.ResponseWriter, r *http.Request) (string, bool) {
	tenant, vol, owner := r.PathValue("tenant"), r.PathValue("volume"), r.URL.Query().Get("owner")
	if !spec.IsDNSLabel(tenant, 63) || !spec.IsDNSLabel(vol, 63) {
		answer(w, http.StatusBadRequest, failure{Error: fmt.Sprintf("tenant %q or volume %q is not a name", tenant, vol), Type: ErrRefused})
		return "", false
	}
	dir, err := s.Volumes.VolumeDir(r.Context(), tenant, owner, vol)
	var appErr *temporal.ApplicationError
	switch {
	case errors.As(err, &appErr) && appErr.NonRetryable():
		answer(w, http.StatusConflict, failure{Error: appErr.Message(), Type: appErr.Type()})
		return "", false
	case err != nil:
		answer(w, http.StatusServiceUnavailable, failure{Error: err.Error()})
		return "", false
	}
	return dir, true
}

func (s *Server) manifest(w http.ResponseWriter, r *http.Request) {
	dir, ok := s.volumeDir(w, r)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/jsonl")
	if err := writeManifest(w, dir); err != nil {
		// Mid-stream: the sender sees a manifest that does not decode.
		s.log().Error("volume manifest failed", "dir", dir, "error", err)
		panic(http.ErrAbortHandler)
	}
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request) {
	dir, ok := s.volumeDir(w, r)
	if !ok {
		return
	}
	if !s.take(dir) {
		answer(w, http.StatusConflict, failure{Error: "another copy into this volume is running"})
		return
	}
	defer s.give(dir)
	out, err := apply(dir, r.Body)
	if err != nil {
		s.log().Error("volume copy failed", "tenant", r.PathValue("tenant"), "volume", r.PathValue("volume"), "error", err)
		answer(w, http.StatusInternalServerError, failure{Error: err.Error()})
		return
	}
	s.log().Info("volume copied", "tenant", r.PathValue("tenant"), "volume", r.PathValue("volume"),
		"files", out.Files, "bytes", out.Bytes, "deleted", out.Deleted)
	answer(w, http.StatusOK, out)
}

// take marks dir busy: two passes never write one volume at once.
func (s *Server) take(dir string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy == nil {
		s.busy = map[string]bool{}
	}
	if s.busy[dir] {
		return false
	}
	s.busy[dir] = true
	return true
}

func (s *Server) give(dir string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.busy, dir)
}

func answer(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
