package devregistry

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// pushBlob uploads b in one request (the distribution API's monolithic
// upload: POST for a session, PUT with the digest).
func pushBlob(t *testing.T, addr, repo string, b []byte) string {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/v2/"+repo+"/blobs/uploads/", "", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, "http") {
		loc = "http://" + addr + loc
	}
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	d := digestOf(b)
	req, _ := http.NewRequest(http.MethodPut, loc+sep+"digest="+d, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	return d
}

// pushImage pushes a one-layer OCI image as repo:tag and returns its
// manifest's digest.
func pushImage(t *testing.T, addr, repo, tag string) string {
	t.Helper()
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
	layer := []byte("not really a tar, the registry does not look")
	cd, ld := pushBlob(t, addr, repo, config), pushBlob(t, addr, repo, layer)
	manifest := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
		"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},
		"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`, cd, len(config), ld, len(layer))
	req, _ := http.NewRequest(http.MethodPut, "http://"+addr+"/v2/"+repo+"/manifests/"+tag, strings.NewReader(manifest))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, string(body))
	return resp.Header.Get("Docker-Content-Digest")
}

func manifestDigest(t *testing.T, addr, repo, ref string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "http://"+addr+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Docker-Content-Digest")
}

func TestRegistryKeepsImagesAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	r, err := Start(ctx, "127.0.0.1:0", dir, log)
	require.NoError(t, err)
	require.NoError(t, r.Check(ctx))
	digest := pushImage(t, r.Addr, "demo/app", "v2")
	require.True(t, strings.HasPrefix(digest, "sha256:"), digest)
	code, got := manifestDigest(t, r.Addr, "demo/app", "v2")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, digest, got)
	require.NoError(t, r.Close(ctx))

	// Its images are on disk: a new registry on the same directory has them.
	r2, err := Start(ctx, "127.0.0.1:0", dir, log)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r2.Close(context.Background()) })
	code, got = manifestDigest(t, r2.Addr, "demo/app", digest)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, digest, got)
	code, _ = manifestDigest(t, r2.Addr, "demo/app", "v3")
	assert.Equal(t, http.StatusNotFound, code)
}

func TestRegistryRefusesAnAddressOthersReach(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:5050", ":5050", "10.1.2.3:5050", "localhost:5050", "nonsense"} {
		_, err := Start(context.Background(), addr, t.TempDir(), slog.New(slog.DiscardHandler))
		assert.Error(t, err, addr)
	}
}

// records keeps the records logged at or above Debug.
type records struct {
	mu   sync.Mutex
	list []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, rec)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) at(level slog.Level) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.list {
		if rec.Level >= level {
			out = append(out, rec.Message)
		}
	}
	return out
}

// The registry's log goes to ours; the 404 a push's blob check gets is
// no error of the registry's (the library logs it as one).
func TestRegistryLogsThroughSlog(t *testing.T) {
	rec := &records{}
	r, err := Start(context.Background(), "127.0.0.1:0", t.TempDir(), slog.New(rec))
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	req, err := http.NewRequest(http.MethodHead, "http://"+r.Addr+"/v2/demo/app/blobs/"+digestOf([]byte("none")), nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	require.Eventually(t, func() bool {
		return slices.ContainsFunc(rec.at(slog.LevelDebug), func(m string) bool { return strings.HasPrefix(m, "registry: ") })
	}, 5*time.Second, 10*time.Millisecond, "the registry's entry reaches our log")
	require.Equal(t, []string{"registry serving"}, rec.at(slog.LevelInfo), "a client's 404 is not logged as a problem")
}
