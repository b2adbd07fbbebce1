// Package devregistry serves a Docker registry from this process for
// `tenantflow dev` (`make run`): the CNCF distribution registry, the one
// Docker Hub and GitLab run, as a library, with its images on disk under
// the data dir. A release needs an image pinned by digest that the engine
// can pull; on one machine with no registry, this is where it comes from.
//
// It is plain HTTP on a loopback address: Docker Engines pull from
// 127.0.0.0/8 without TLS by default. It is for development only.
package devregistry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	_ "github.com/distribution/distribution/v3/registry/storage/driver/filesystem" // the "filesystem" storage
	"github.com/sirupsen/logrus"
)

// Registry is a running registry.
type Registry struct {
	// Addr is where it listens (host:port), the host part of its images'
	// references.
	Addr string
	srv  *http.Server
	app  *handlers.App
	done chan error
}

// Start serves a registry on addr (a loopback host:port; port 0 picks
// one) that keeps its images in dir, until Close.
func Start(ctx context.Context, addr, dir string, log *slog.Logger) (*Registry, error) {
	if err := checkLoopback(addr); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("registry storage %s: %w", dir, err)
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	cfg := &configuration.Configuration{Version: "0.1"}
	cfg.HTTP.Secret = hex.EncodeToString(secret)
	cfg.Storage = configuration.Storage{
		"filesystem": configuration.Parameters{"rootdirectory": dir},
		"delete":     configuration.Parameters{"enabled": true},
	}
	// The registry logs through logrus's standard logger, which its
	// handlers take from no context of ours: its warnings and errors go
	// to our log instead (see toSlog). This is process-wide; dev uses no
	// other logrus logger.
	logrus.SetLevel(logrus.WarnLevel)
	logrus.SetOutput(io.Discard)
	logrus.StandardLogger().ReplaceHooks(logrus.LevelHooks{})
	logrus.AddHook(toSlog{log})
	app, err := newApp(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		_ = app.Shutdown()
		return nil, fmt.Errorf("registry listen on %s: %w", addr, err)
	}
	r := &Registry{
		Addr: ln.Addr().String(), app: app, done: make(chan error, 1),
		srv: &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
	}
	srv, done := r.srv, r.done
	go func() { done <- srv.Serve(ln) }()
	log.Info("registry serving", "address", r.Addr, "storage", dir)
	return r, nil
}

// toSlog sends the registry's log entries to our logger, with their
// fields. A request the registry answered with a 4xx is logged as an
// error by the library, but it is the client's business (a push asks for
// each blob before uploading it, and is told 404): Debug.
type toSlog struct{ log *slog.Logger }

func (toSlog) Levels() []logrus.Level { return logrus.AllLevels }

func (h toSlog) Fire(e *logrus.Entry) error {
	level := slog.LevelWarn
	if e.Level <= logrus.ErrorLevel {
		level = slog.LevelError
	}
	if status, ok := e.Data["http.response.status"].(int); ok && status < 500 {
		level = slog.LevelDebug
	}
	attrs := make([]slog.Attr, 0, len(e.Data))
	for k, v := range e.Data {
		if err, ok := v.(error); ok {
			v = err.Error()
		}
		attrs = append(attrs, slog.Any(k, v))
	}
	h.log.LogAttrs(context.Background(), level, "registry: "+e.Message, attrs...)
	return nil
}

// newApp builds the registry's handler; the library panics on a bad
// configuration, which becomes an error here.
func newApp(ctx context.Context, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("registry: %v", p)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

// Close stops serving, waiting for requests under way until ctx ends.
func (r *Registry) Close(ctx context.Context) error {
	err := r.srv.Shutdown(ctx)
	if serveErr := <-r.done; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, serveErr)
	}
	return errors.Join(err, r.app.Shutdown())
}

// Check asks the registry for its API version, as a client first does.
func (r *Registry) Check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Addr+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("registry /v2/: %s", resp.Status)
	}
	return nil
}

// checkLoopback refuses an address other machines could reach: the
// registry has no authentication.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("registry address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("registry address %q: want a loopback IP (127.0.0.1:<port>): it has no authentication, and engines pull from loopback without TLS", addr)
	}
	return nil
}
