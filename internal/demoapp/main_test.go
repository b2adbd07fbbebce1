package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// call sends a request to the app and returns the status and body.
func call(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// home is the app's GET / answer.
func home(t *testing.T, url string) map[string]any {
	t.Helper()
	code, body := call(t, http.MethodGet, url+"/")
	require.Equal(t, http.StatusOK, code, body)
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(body), &v), body)
	return v
}

func startApp(t *testing.T, db mirror) string {
	t.Helper()
	hits := &counter{path: filepath.Join(t.TempDir(), "hits")}
	srv := httptest.NewServer(appMux(slog.New(slog.DiscardHandler), "acme", hits, db))
	t.Cleanup(srv.Close)
	return srv.URL
}

// With the key/value db the app mirrors its counter there, as it always
// did, and has no rows.
func TestKVMirror(t *testing.T) {
	var mu sync.Mutex
	store := map[string]string{}
	kv := http.NewServeMux()
	kv.HandleFunc("GET /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		v, ok := store[r.PathValue("key")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, v)
	})
	kv.HandleFunc("PUT /kv/{key}", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer pw" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		store[r.PathValue("key")] = string(b)
		w.WriteHeader(http.StatusNoContent)
	})
	db := httptest.NewServer(kv)
	t.Cleanup(db.Close)
	app := startApp(t, newKVMirror(db.URL, "pw"))

	for range 2 {
		code, body := call(t, http.MethodPost, app+"/hits")
		require.Equal(t, http.StatusOK, code, body)
	}
	v := home(t, app)
	require.Equal(t, float64(2), v["hits"])
	require.Equal(t, "2", v["dbHits"])
	require.Equal(t, "2", store["hits"])
	code, _ := call(t, http.MethodGet, app+"/rows")
	require.Equal(t, http.StatusNotImplemented, code)
	code, _ = call(t, http.MethodPost, app+"/rows?value=x")
	require.Equal(t, http.StatusNotImplemented, code)

	wrong := startApp(t, newKVMirror(db.URL, "not-pw"))
	code, body := call(t, http.MethodPost, wrong+"/hits")
	require.Equal(t, http.StatusBadGateway, code, body)
}

// postgres starts the postgres template's image (made by the script
// `make postgres-image` runs) with its port published on loopback, and
// returns its URL without the password.
func postgres(t *testing.T, password string) string {
	t.Helper()
	harness.SkipShort(t, "PostgreSQL in Docker")
	if _, err := exec.LookPath("docker"); err != nil {
		harness.Unavailable(t, "the docker CLI: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	run := func(name string, args ...string) string {
		t.Helper()
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			if strings.Contains(stderr.String(), "debootstrap is not installed") {
				harness.Unavailable(t, "debootstrap, to build the postgres image (make postgres-image)")
			}
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	out := run(filepath.Join(harness.RepoRoot(), "tools", "images", "postgres", "build.sh"))
	tag := out[strings.LastIndex(out, "\n")+1:]
	id := run("docker", "run", "-d", "--rm", "-p", "127.0.0.1::5432", "-e", "POSTGRES_PASSWORD="+password, tag)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", "-v", id).Run() })
	addr := run("docker", "port", id, "5432/tcp")
	return "postgres://tenant@" + addr + "/tenant?sslmode=disable"
}

// With a PostgreSQL DB_URL the app keeps the counter's mirror and its rows
// in tables it creates, over TCP with the password.
func TestPostgresStore(t *testing.T) {
	url := postgres(t, "secret-pw")
	pg, err := newPGStore(url, "secret-pw")
	require.NoError(t, err)
	t.Cleanup(pg.close)
	// The database takes a moment to accept connections: the app's first
	// requests fail, later ones create the tables.
	require.Eventually(t, func() bool {
		_, err := pg.get(context.Background(), "hits")
		return err == nil
	}, time.Minute, 100*time.Millisecond)
	app := startApp(t, pg)

	require.Equal(t, "", home(t, app)["dbHits"], "nothing mirrored yet")
	for range 3 {
		code, body := call(t, http.MethodPost, app+"/hits")
		require.Equal(t, http.StatusOK, code, body)
	}
	v := home(t, app)
	require.Equal(t, float64(3), v["hits"])
	require.Equal(t, "3", v["dbHits"])
	require.Nil(t, v["dbError"])

	code, body := call(t, http.MethodGet, app+"/rows")
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `[]`, body)
	code, body = call(t, http.MethodPost, app+"/rows?value=first")
	require.Equal(t, http.StatusCreated, code, body)
	require.JSONEq(t, `{"id":1,"value":"first"}`, body)
	code, body = call(t, http.MethodPost, app+"/rows?value=it%27s+%C3%BC")
	require.Equal(t, http.StatusCreated, code, body)
	for _, bad := range []string{"/rows", "/rows?value=", "/rows?value=" + strings.Repeat("x", maxRowValue+1)} {
		code, body = call(t, http.MethodPost, app+bad)
		require.Equal(t, http.StatusBadRequest, code, "%s: %s", bad, body)
	}
	code, body = call(t, http.MethodGet, app+"/rows")
	require.Equal(t, http.StatusOK, code, body)
	require.JSONEq(t, `[{"id":1,"value":"first"},{"id":2,"value":"it's ü"}]`, body)

	// A second app on the same database finds the tables and the data.
	again, err := newPGStore(url, "secret-pw")
	require.NoError(t, err)
	t.Cleanup(again.close)
	rows, err := again.rows(context.Background())
	require.NoError(t, err)
	require.Equal(t, []row{{1, "first"}, {2, "it's ü"}}, rows)

	// TCP connections need the password.
	wrong, err := newPGStore(url, "wrong-pw")
	require.NoError(t, err)
	t.Cleanup(wrong.close)
	_, err = wrong.get(context.Background(), "hits")
	require.ErrorContains(t, err, "password authentication failed")
}

// A faulty image passes its health check but serves its home page badly,
// which only a canary analysis notices.
func TestFaults(t *testing.T) {
	t.Setenv("DEMO_FAULT", "error")
	url := startApp(t, newKVMirror("", ""))
	code, _ := call(t, http.MethodGet, url+"/healthz")
	require.Equal(t, http.StatusOK, code)
	code, _ = call(t, http.MethodGet, url+"/")
	require.Equal(t, http.StatusInternalServerError, code)

	t.Setenv("DEMO_FAULT", "slow")
	url = startApp(t, newKVMirror("", ""))
	start := time.Now()
	home(t, url)
	require.GreaterOrEqual(t, time.Since(start), SlowFault)
	start = time.Now()
	code, _ = call(t, http.MethodGet, url+"/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Less(t, time.Since(start), SlowFault, "the health check is not slowed")
}
