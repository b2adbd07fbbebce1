package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/runtimes"
)

var logAt = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// logLines writes lines as the API does: NDJSON, each flushed at once.
func logLines(ls ...runtimes.LogLine) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		for _, l := range ls {
			_ = enc.Encode(l)
			w.(http.Flusher).Flush()
		}
	}
}

var twoLines = []runtimes.LogLine{
	{Time: logAt, Service: "app", Generation: 2, Stream: "stdout", Line: "listening on :8080"},
	{Time: logAt.Add(1500 * time.Millisecond), Service: "db", Generation: 1, Stream: "stderr", Line: "checkpoint complete"},
}

func TestTenantsLogs(t *testing.T) {
	api := newFakeAPI(t)
	api.on("GET /v1/tenants/acme/logs", logLines(twoLines...))

	r := api.cli(nil, false, "tenants", "logs", "acme")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "app | listening on :8080\ndb | checkpoint complete\n", r.out)
	require.Empty(t, r.err)
	require.Empty(t, api.requests("")[0].query, "the API's defaults")

	r = api.cli(nil, false, "tenants", "logs", "acme", "--service", "app", "--since", "10m", "--tail", "0", "-t")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "2026-12-07T10:00:00Z app | listening on :8080\n2026-12-07T10:00:01.5Z db | checkpoint complete\n", r.out)
	require.Equal(t, "service=app&since=10m&tail=0", api.requests("")[1].query)

	// -o json: the API's lines as they came
	r = api.cli(nil, false, "tenants", "logs", "acme", "-o", "json")
	require.Equal(t, ExitOK, r.code, r.err)
	var want bytes.Buffer
	for _, l := range twoLines {
		require.NoError(t, json.NewEncoder(&want).Encode(l))
	}
	require.Equal(t, want.String(), r.out)
}

func TestTenantsLogsRefused(t *testing.T) {
	api := newFakeAPI(t)
	api.on("GET /v1/tenants/acme/logs", answer(400, refusal(`tenant acme has no service "web" (its services: [app db])`, "service")))
	api.on("GET /v1/tenants/ghost/logs", answer(404, refusal("tenant ghost not found", "")))
	api.on("GET /v1/tenants/globex/logs", answer(409, refusal("tenant globex is failed: it has no containers", "")))

	r := api.cli(nil, false, "tenants", "logs", "acme", "--service", "web")
	require.Equal(t, ExitUsage, r.code)
	require.Equal(t, "error: service: tenant acme has no service \"web\" (its services: [app db])\n", r.err)

	r = api.cli(nil, false, "tenants", "logs", "ghost", "-f")
	require.Equal(t, ExitNotFound, r.code)
	require.Equal(t, "error: tenant ghost not found\n", r.err)

	r = api.cli(nil, false, "tenants", "logs", "globex")
	require.Equal(t, ExitRefused, r.code)
	require.Equal(t, "error: tenant globex is failed: it has no containers\n", r.err)
	require.Empty(t, r.out)
}

// When the API ends a followed stream, the command says how to go on
// from the last line.
func TestTenantsLogsFollowEnds(t *testing.T) {
	api := newFakeAPI(t)
	api.on("GET /v1/tenants/acme/logs", logLines(twoLines...))
	r := api.cli(nil, false, "tenants", "logs", "acme", "-f", "--service", "db")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "follow=true&service=db", api.requests("")[0].query)
	require.Equal(t, "app | listening on :8080\ndb | checkpoint complete\n", r.out)
	require.Equal(t, "note: the API ended the stream (it follows for 30 minutes at most, or the containers stopped); "+
		"go on: tenantflow tenants logs acme -f --service db --tail 0 --since 2026-12-07T10:00:01.5Z\n", r.err)
}

// -f prints each line as it comes, while the stream stays open, and
// Ctrl-C ends it (exit 130).
func TestTenantsLogsFollowStreams(t *testing.T) {
	api := newFakeAPI(t)
	api.on("GET /v1/tenants/acme/logs", func(w http.ResponseWriter, r *http.Request) {
		logLines(twoLines[0])(w, r)
		<-r.Context().Done() // open until the client goes
	})
	out := &notifyWriter{wrote: make(chan struct{})}
	var errOut bytes.Buffer
	env := map[string]string{EnvAPIURL: api.srv.URL, EnvToken: opsToken, "HOME": t.TempDir(), envDataDir: t.TempDir()}
	a := newApp(IO{Out: out, Err: &errOut, Getenv: func(k string) string { return env[k] }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streamed := make(chan bool, 1)
	go func() {
		select { // Ctrl-C once the first line is out (or, not streamed, after a while)
		case <-out.wrote:
			streamed <- true
		case <-time.After(5 * time.Second):
			streamed <- false
		}
		cancel()
	}()
	code := run(ctx, []string{"tenants", "logs", "acme", "-f"}, a)
	require.True(t, <-streamed, "the line is printed while the stream is open")
	require.Equal(t, ExitInterrupted, code, errOut.String())
	require.Equal(t, "app | listening on :8080\n", out.String())
	require.Equal(t, "interrupted\n", errOut.String())
}

// notifyWriter is a stdout that says when the first write came.
type notifyWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	once  sync.Once
	wrote chan struct{}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	defer w.once.Do(func() { close(w.wrote) })
	return w.buf.Write(p)
}

func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}
