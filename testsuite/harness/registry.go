package harness

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryOptions choose how the throwaway registry authenticates and
// whether it lets clients delete manifests.
type RegistryOptions struct {
	// User and Password turn on authentication: htpasswd (HTTP Basic) by
	// default, or the token flow with TokenAuth.
	User     string
	Password string
	// TokenAuth makes the registry answer 401 with a Bearer challenge whose
	// realm is a token server run by the test (as GitLab's registry and
	// Harbor do); that server gives signed tokens to User/Password only.
	TokenAuth bool
	// DisableDelete sets storage.delete.enabled to false (DELETE → 405).
	DisableDelete bool
}

// Registry is a Docker distribution 2.8 registry (the Debian
// docker-registry package) run for one test on loopback with filesystem
// storage in Dir: Stop and Start keep the images, an outage rather than a
// new registry. The Docker Engine treats 127.0.0.0/8 registries as
// insecure, so it pushes to Host over plain HTTP.
type Registry struct {
	URL      string // http://127.0.0.1:<port>
	Host     string // 127.0.0.1:<port>, as written in image references
	User     string
	Password string
	Dir      string

	t      testing.TB
	proc   *Process
	client *http.Client
	token  *tokenIssuer // nil unless TokenAuth
}

// StartRegistry configures and starts `docker-registry serve` following
// /work/shared/recipes/3-registry.sh, waits until /v2/ answers and stops
// it when the test ends.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	SkipShort(t, "the registry")
	bin := RequireBinary(t, "docker-registry", "docker-registry")
	if opts.TokenAuth && opts.User == "" {
		t.Fatal("StartRegistry: TokenAuth needs User and Password")
	}
	dir := t.TempDir()
	r := &Registry{
		Host: Addr(FreePort(t)), User: opts.User, Password: opts.Password, Dir: dir, t: t,
		client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
	}
	r.URL = "http://" + r.Host

	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog: {disabled: false}
storage:
  filesystem: {rootdirectory: %q}
  delete: {enabled: %t}
  maintenance:
    uploadpurging: {enabled: false}
http:
  addr: %s
  secret: %s
`, filepath.Join(dir, "data"), !opts.DisableDelete, r.Host, hex.EncodeToString(secret))
	switch {
	case opts.TokenAuth:
		r.token = newTokenIssuer(t, dir, opts.User, opts.Password)
		conf += fmt.Sprintf(`auth:
  token:
    realm: %q
    service: %q
    issuer: %q
    rootcertbundle: %q
`, r.token.realm, tokenService, tokenIssuerName, r.token.certFile)
	case opts.User != "":
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.DefaultCost)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(file, []byte(opts.User+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		conf += fmt.Sprintf("auth:\n  htpasswd: {realm: tenantflow-test, path: %q}\n", file)
	}
	file := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	r.proc = NewProcess(t, dir, nil, bin, "serve", file)
	r.Start()
	return r
}

// Start runs the registry (again) and waits until /v2/ answers (200, or
// 401 when authentication is on).
func (r *Registry) Start() {
	r.t.Helper()
	r.proc.Start()
	WaitFor(r.t, "docker-registry "+r.Host, 30*time.Second, func() error {
		resp, err := r.client.Get(r.URL + "/v2/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("GET /v2/ answered %s", resp.Status)
		}
		return nil
	})
}

// Stop terminates the registry; its storage stays in Dir.
func (r *Registry) Stop() { r.proc.Stop() }

// Output is what the registry logged so far.
func (r *Registry) Output() string { return r.proc.Output() }

// TokensIssued counts the tokens the test's token server handed out
// (always 0 without TokenAuth): proof that a client used the Bearer flow.
func (r *Registry) TokensIssued() int64 {
	if r.token == nil {
		return 0
	}
	return r.token.issued.Load()
}

// ManifestDigest asks the registry itself (HEAD /v2/<repo>/manifests/<ref>
// with admin credentials, independent of the code under test) for the
// digest of a tag or digest reference; found is false on 404.
func (r *Registry) ManifestDigest(t testing.TB, repo, ref string) (digest string, found bool) {
	t.Helper()
	resp := r.do(t, http.MethodHead, "/v2/"+repo+"/manifests/"+ref, nil, http.Header{"Accept": {
		"application/vnd.docker.distribution.manifest.v2+json",
		"application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.oci.image.manifest.v1+json",
		"application/vnd.oci.image.index.v1+json",
	}}, repo)
	switch resp.StatusCode {
	case http.StatusOK:
		return resp.Header.Get("Docker-Content-Digest"), true
	case http.StatusNotFound:
		return "", false
	}
	t.Fatalf("HEAD %s manifest %s: %s", repo, ref, resp.Status)
	return "", false
}

// Tags lists the repository's tags as the registry reports them (none for
// an unknown repository).
func (r *Registry) Tags(t testing.TB, repo string) []string {
	t.Helper()
	resp := r.do(t, http.MethodGet, "/v2/"+repo+"/tags/list", nil, nil, repo)
	if resp.StatusCode == http.StatusNotFound {
		return []string{}
	}
	var body struct {
		Tags []string `json:"tags"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s tags: %s", repo, resp.Status)
	}
	if err := json.Unmarshal(resp.body, &body); err != nil {
		t.Fatalf("GET %s tags: %v", repo, err)
	}
	if body.Tags == nil {
		return []string{}
	}
	return body.Tags
}

// ManifestRevisions lists the digests of every manifest the registry
// stores for the repository (the revisions in its filesystem storage,
// which the HTTP API cannot list): a second push of the same image must
// not add one, a delete must remove it.
func (r *Registry) ManifestRevisions(t testing.TB, repo string) []string {
	t.Helper()
	dir := filepath.Join(r.Dir, "data", "docker", "registry", "v2", "repositories", repo, "_manifests", "revisions", "sha256")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return []string{}
	}
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, e := range entries {
		// A deleted revision keeps its directory but loses its link file.
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "link")); err == nil {
			out = append(out, "sha256:"+e.Name())
		}
	}
	return out
}

// PutImage uploads a one-layer image (a file holding content) and its
// Docker v2 schema 2 manifest under repo:tag with plain HTTP, the way
// /work/shared/recipes/3b-registry-push-with-curl.sh does, so registry
// tests need no Docker Engine. It returns the manifest digest, computed
// here from the bytes sent.
func (r *Registry) PutImage(t testing.TB, repo, tag, content string) string {
	t.Helper()
	var layer bytes.Buffer
	gz := gzip.NewWriter(&layer)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: "content.txt", Mode: 0o644, Size: int64(len(content)), ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(tw, content); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	var tarBytes bytes.Buffer
	zr, err := gzip.NewReader(bytes.NewReader(layer.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(&tarBytes, zr); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[%q]}}`, sha256Digest(tarBytes.Bytes()))
	r.putBlob(t, repo, layer.Bytes())
	r.putBlob(t, repo, cfg)
	manifest := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",`+
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,"digest":%q},`+
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%d,"digest":%q}]}`,
		len(cfg), sha256Digest(cfg), layer.Len(), sha256Digest(layer.Bytes()))
	resp := r.do(t, http.MethodPut, "/v2/"+repo+"/manifests/"+tag, manifest,
		http.Header{"Content-Type": {"application/vnd.docker.distribution.manifest.v2+json"}}, repo)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT manifest %s:%s: %s %s", repo, tag, resp.Status, resp.body)
	}
	digest := sha256Digest(manifest)
	if got := resp.Header.Get("Docker-Content-Digest"); got != digest {
		t.Fatalf("PUT manifest %s:%s: registry says digest %s, computed %s", repo, tag, got, digest)
	}
	return digest
}

func (r *Registry) putBlob(t testing.TB, repo string, blob []byte) {
	t.Helper()
	resp := r.do(t, http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil, repo)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload to %s: %s %s", repo, resp.Status, resp.body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatalf("upload location: %v", err)
	}
	q := loc.Query()
	q.Set("digest", sha256Digest(blob))
	loc.RawQuery = q.Encode()
	path := loc.Path + "?" + loc.RawQuery
	resp = r.do(t, http.MethodPut, path, blob, http.Header{"Content-Type": {"application/octet-stream"}}, repo)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload blob to %s: %s %s", repo, resp.Status, resp.body)
	}
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

type registryResponse struct {
	*http.Response
	body []byte
}

// do sends one request with full rights: Basic credentials for htpasswd,
// or a token minted here (the harness owns the signing key) for TokenAuth.
func (r *Registry) do(t testing.TB, method, path string, body []byte, hdr http.Header, repo string) registryResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, r.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	switch {
	case r.token != nil:
		tok, err := r.token.sign(r.User, []string{"repository:" + repo + ":pull,push,delete"})
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	case r.User != "":
		req.SetBasicAuth(r.User, r.Password)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return registryResponse{Response: resp, body: b}
}

const (
	tokenService    = "tenantflow-test-registry"
	tokenIssuerName = "tenantflow-test-token-issuer"
)

// tokenIssuer is the token server of the registry's token auth: it checks
// HTTP Basic credentials and answers {"token": JWT} granting the requested
// scopes, signed with ES256 and a self-signed certificate (x5c) that the
// registry trusts through its rootcertbundle.
type tokenIssuer struct {
	realm    string
	certFile string
	key      *ecdsa.PrivateKey
	certDER  []byte
	user     string
	password string
	issued   atomic.Int64
}

func newTokenIssuer(t testing.TB, dir, user, password string) *tokenIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: tokenIssuerName},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ti := &tokenIssuer{certFile: filepath.Join(dir, "token.crt"), key: key, certDER: der, user: user, password: password}
	if err := os.WriteFile(ti.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(ti.serve))
	t.Cleanup(srv.Close)
	ti.realm = srv.URL + "/token"
	return ti
}

func (ti *tokenIssuer) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet || req.URL.Path != "/token" {
		http.Error(w, "GET /token only", http.StatusMethodNotAllowed)
		return
	}
	user, pass, ok := req.BasicAuth()
	if !ok || user != ti.user || pass != ti.password {
		w.Header().Set("WWW-Authenticate", `Basic realm="tenantflow-test-token"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
		return
	}
	if s := req.URL.Query().Get("service"); s != tokenService {
		http.Error(w, "unknown service "+s, http.StatusBadRequest)
		return
	}
	tok, err := ti.sign(user, req.URL.Query()["scope"])
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ti.issued.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 300, "issued_at": time.Now().UTC().Format(time.RFC3339)})
}

// sign makes a JWT granting every scope ("repository:<name>:<a,b>") asked.
func (ti *tokenIssuer) sign(subject string, scopes []string) (string, error) {
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	grants := []access{}
	for _, s := range scopes {
		for _, one := range strings.Fields(s) {
			typ, rest, ok1 := strings.Cut(one, ":")
			i := strings.LastIndex(rest, ":")
			if !ok1 || i < 0 {
				return "", fmt.Errorf("bad scope %q", one)
			}
			grants = append(grants, access{Type: typ, Name: rest[:i], Actions: strings.Split(rest[i+1:], ",")})
		}
	}
	now := time.Now()
	jti := make([]byte, 8)
	if _, err := rand.Read(jti); err != nil {
		return "", err
	}
	header, err := json.Marshal(map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ti.certDER)}})
	if err != nil {
		return "", err
	}
	claims, err := json.Marshal(map[string]any{
		"iss": tokenIssuerName, "sub": subject, "aud": tokenService,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": hex.EncodeToString(jti), "access": grants,
	})
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	sum := sha256.Sum256([]byte(input))
	rr, ss, err := ecdsa.Sign(rand.Reader, ti.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig), nil
}
