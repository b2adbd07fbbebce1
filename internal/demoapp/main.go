// Command demo-app is the boxed single-tenant application Tenantflow deploys
// in development and tests. One static binary, three modes:
//
//	demo-app serve   the tenant's web app: /healthz, /version, / and POST /hits
//	                 (a counter kept in its volume and mirrored in the db);
//	                 with a PostgreSQL DB_URL (postgres://…) the mirror is a
//	                 table, and GET /rows, POST /rows?value=… read and add
//	                 rows of another
//	demo-app db      a tiny password-protected key/value store on its volume
//	demo-app probe   an HTTP GET used as a container health-check command
//	demo-app dump    run inside the db: a consistent dump of the store (JSON) on stdout
//	demo-app restore run inside the db: replaces the store with a dump read on stdin
//
// It shuts down gracefully on SIGTERM, finishing in-flight requests, which is
// what lets a rolling update cut over without failing a request.
package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// version is set at build time (-ldflags -X main.version=…); DEMO_VERSION
// (the image's build arg) overrides it so one binary can make many images.
var version = "dev"

func main() {
	if v := os.Getenv("DEMO_VERSION"); v != "" {
		version = v
	}
	// LOG_LEVEL (a tenant setting of the templates: debug, info, warn,
	// error) sets how much the app logs.
	var level slog.Level
	if err := level.UnmarshalText([]byte(env("LOG_LEVEL", "info"))); err != nil {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	mode := "serve"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	ctx := context.Background()
	var err error
	switch mode {
	case "serve":
		err = serve(log)
	case "db":
		err = db(log)
	case "probe":
		err = probe(ctx, os.Args[2:])
	case "dump":
		err = dbTool(ctx, http.MethodGet, os.Stdin, os.Stdout, false)
	case "restore":
		err = dbTool(ctx, http.MethodPut, os.Stdin, os.Stdout, true)
	case "version":
		fmt.Println(version)
	default:
		err = fmt.Errorf("unknown mode %q (serve, db, probe, dump, restore, version)", mode)
	}
	if err != nil {
		log.Error("demo-app failed", "mode", mode, "error", err)
		os.Exit(1)
	}
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// reply writes a handler's answer. A write fails only when the client has
// gone away: there is nobody to answer, so it is logged.
func reply(log *slog.Logger, w http.ResponseWriter, body []byte) {
	if _, err := w.Write(body); err != nil {
		log.Warn("reply not delivered", "error", err)
	}
}

// replyJSON writes v as a handler's JSON answer, as reply does.
func replyJSON(log *slog.Logger, w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		log.Warn("reply not delivered", "error", err)
	}
}

// run serves h until SIGTERM/SIGINT, then drains for up to 10 s.
func run(log *slog.Logger, addr string, h http.Handler) error {
	srv := &http.Server{Addr: addr, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("listening", "addr", addr, "version", version)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("stopping", "addr", addr)
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

type counter struct {
	mu   sync.Mutex
	path string
}

func (c *counter) add(delta int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	if b, err := os.ReadFile(c.path); err == nil {
		n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	if delta == 0 {
		return n, nil
	}
	n += delta
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(n)), 0o644); err != nil {
		return 0, err
	}
	return n, os.Rename(tmp, c.path)
}

func serve(log *slog.Logger) error {
	tenant := env("TENANT", "demo")
	hits := &counter{path: filepath.Join(env("DATA_DIR", "/data"), "hits")}
	dbURL, dbPass := os.Getenv("DB_URL"), os.Getenv("DB_PASSWORD")
	var db mirror = newKVMirror(dbURL, dbPass)
	if isPostgresURL(dbURL) {
		pg, err := newPGStore(dbURL, dbPass)
		if err != nil {
			return err
		}
		defer pg.close()
		db = pg
	}
	return run(log, env("LISTEN", ":8080"), appMux(log, tenant, hits, db))
}

// SlowFault is how long the home page of an image built with
// DEMO_FAULT=slow takes.
const SlowFault = 400 * time.Millisecond

// appMux is the app's web interface: the counter hits (in its volume),
// mirrored in db.
func appMux(log *slog.Logger, tenant string, hits *counter, db mirror) *http.ServeMux {
	// READY_DELAY simulates an app that takes a while to warm up: /healthz
	// answers 503 until it has passed (tests use it to act mid-start).
	readyDelay, _ := time.ParseDuration(os.Getenv("READY_DELAY"))
	readyAt := time.Now().Add(readyDelay)
	// DEMO_HEALTHZ=fail (an image built with HEALTHZ=fail) makes a release
	// candidate that serves everything but never passes its health check,
	// which release tests need to exercise a rollback.
	failHealth := os.Getenv("DEMO_HEALTHZ") == "fail"
	// DEMO_FAULT makes a release candidate that passes its health check
	// but serves its home page badly: "error" answers 500, "slow" answers
	// after 400 ms. Canary analysis tests release it.
	fault := os.Getenv("DEMO_FAULT")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if failHealth {
			http.Error(w, "this image is built to fail its health check", http.StatusServiceUnavailable)
			return
		}
		if time.Now().Before(readyAt) {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		if _, err := hits.add(0); err != nil {
			http.Error(w, "volume: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		reply(log, w, []byte("ok\n"))
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		reply(log, w, []byte(version+"\n"))
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		switch fault {
		case "error":
			http.Error(w, "this image is built to fail", http.StatusInternalServerError)
			return
		case "slow":
			time.Sleep(SlowFault)
		}
		n, err := hits.add(0)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		mirrored, dbErr := db.get(r.Context(), "hits")
		out := map[string]any{"tenant": tenant, "version": version, "hits": n, "dbHits": mirrored}
		// TITLE is a tenant setting of the templates: the name the
		// customer gives its app.
		if title := os.Getenv("TITLE"); title != "" {
			out["title"] = title
		}
		log.Debug("home page served", "hits", n)
		if dbErr != nil {
			out["dbError"] = dbErr.Error()
		}
		replyJSON(log, w, out)
	})
	mux.HandleFunc("POST /hits", func(w http.ResponseWriter, r *http.Request) {
		n, err := hits.add(1)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if err := db.put(r.Context(), "hits", strconv.Itoa(n)); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		reply(log, w, []byte(strconv.Itoa(n)+"\n"))
	})
	handleRows(log, mux, db)
	return mux
}

// maxRowValue bounds the value of a row written through POST /rows.
const maxRowValue = 1024

// handleRows serves GET /rows (every row, oldest first) and
// POST /rows?value=… (adds one, answers it with its id, 201) when the app's
// database keeps rows (PostgreSQL); otherwise both answer 501.
func handleRows(log *slog.Logger, mux *http.ServeMux, db mirror) {
	store, ok := db.(rowStore)
	if !ok {
		unsupported := func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "rows need a PostgreSQL database (DB_URL postgres://…)", http.StatusNotImplemented)
		}
		mux.HandleFunc("GET /rows", unsupported)
		mux.HandleFunc("POST /rows", unsupported)
		return
	}
	mux.HandleFunc("GET /rows", func(w http.ResponseWriter, r *http.Request) {
		rows, err := store.rows(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		replyJSON(log, w, rows)
	})
	mux.HandleFunc("POST /rows", func(w http.ResponseWriter, r *http.Request) {
		value := r.URL.Query().Get("value")
		if value == "" || len(value) > maxRowValue {
			http.Error(w, fmt.Sprintf("value: 1 to %d bytes required", maxRowValue), http.StatusBadRequest)
			return
		}
		added, err := store.addRow(r.Context(), value)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		replyJSON(log, w, added)
	})
}

func db(log *slog.Logger) error {
	pass := os.Getenv("DB_PASSWORD")
	if pass == "" {
		return errors.New("DB_PASSWORD is required")
	}
	dir := filepath.Join(env("DATA_DIR", "/data"), "kv")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var mu sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { reply(log, w, []byte("ok\n")) })
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			if subtle.ConstantTimeCompare([]byte(got), []byte(pass)) != 1 {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	keyPath := func(r *http.Request) (string, bool) {
		k := r.PathValue("key")
		return filepath.Join(dir, k), k != "" && !strings.ContainsAny(k, "/\\.")
	}
	mux.HandleFunc("GET /kv/{key}", auth(func(w http.ResponseWriter, r *http.Request) {
		p, ok := keyPath(r)
		if !ok {
			http.Error(w, "bad key", http.StatusBadRequest)
			return
		}
		mu.Lock()
		b, err := os.ReadFile(p)
		mu.Unlock()
		if errors.Is(err, os.ErrNotExist) {
			http.NotFound(w, r)
			return
		} else if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		reply(log, w, b)
	}))
	mux.HandleFunc("PUT /kv/{key}", auth(func(w http.ResponseWriter, r *http.Request) {
		p, ok := keyPath(r)
		if !ok {
			http.Error(w, "bad key", http.StatusBadRequest)
			return
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		err = os.WriteFile(p, b, 0o644)
		mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	// The whole store at once, under the store's lock: a dump is consistent
	// even while clients write, as a real database's own dump tool is.
	mux.HandleFunc("GET /dump", auth(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		entries, err := os.ReadDir(dir)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		store := map[string]string{}
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			store[e.Name()] = string(b)
		}
		replyJSON(log, w, store) // keys sorted: the same store gives the same dump
	}))
	mux.HandleFunc("PUT /dump", auth(func(w http.ResponseWriter, r *http.Request) {
		var store map[string]string
		if err := json.NewDecoder(r.Body).Decode(&store); err != nil {
			http.Error(w, "bad dump: "+err.Error(), http.StatusBadRequest)
			return
		}
		for k := range store {
			if k == "" || strings.ContainsAny(k, "/\\.") {
				http.Error(w, "bad key "+k, http.StatusBadRequest)
				return
			}
		}
		mu.Lock()
		defer mu.Unlock()
		entries, err := os.ReadDir(dir)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for _, e := range entries {
			if _, keep := store[e.Name()]; !keep {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
		for k, v := range store {
			if err := os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644); err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	return run(log, env("LISTEN", ":5432"), mux)
}

// dbTool dumps (GET) or restores (PUT, the dump on stdin) the store of the
// db running in the same container, as a database's own client tool does.
func dbTool(ctx context.Context, method string, in io.Reader, out io.Writer, send bool) error {
	_, port, _ := strings.Cut(env("LISTEN", ":5432"), ":")
	var body io.Reader
	if send {
		body = in
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://127.0.0.1:"+port+"/dump", body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+os.Getenv("DB_PASSWORD"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s /dump: %s: %s", method, resp.Status, strings.TrimSpace(string(b)))
	}
	_, err = io.Copy(out, resp.Body)
	return err
}

func probe(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return errors.New("usage: demo-app probe URL")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, args[0], nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", args[0], resp.Status)
	}
	return nil
}
