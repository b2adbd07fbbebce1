// Package registry talks to the private Docker registry that receives the
// images Tenantflow builds, through the Registry HTTP API v2: check that it
// answers and accepts the credentials, read the digest a tag points to,
// delete a manifest. Pushing is the Docker Engine's job (the docker
// package's PushImage, with this package's AuthConfig).
package registry

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/registry"
	"go.temporal.io/sdk/temporal"
)

// manifestTypes is the Accept header of manifest requests. Without the
// schema 2 and OCI types, distribution converts a schema 2 manifest to
// schema 1 on the fly and reports the digest of that conversion, which
// matches nothing the engine pushed.
var manifestTypes = []string{
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.oci.image.index.v1+json",
}

// Reference grammar of distribution (github.com/distribution/reference).
var (
	repoRE   = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	tagRE    = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	digestRE = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$`)
)

// Client is a Registry HTTP API v2 client for one registry. It answers
// Basic challenges with the configured credentials and Bearer challenges
// with a token from the realm the registry names (GitLab, Harbor), cached
// per scope until it expires. It is safe for concurrent use.
type Client struct {
	base     *url.URL
	host     string
	user     string
	password string
	http     *http.Client
	log      *slog.Logger

	mu     sync.Mutex
	basic  bool                   // the registry asked for Basic: send it up front
	tokens map[string]bearerToken // by operation scope
}

// NewClient validates cfg and builds the client; it does no network I/O,
// so a registry that is down does not stop the worker from starting.
func NewClient(cfg Config, log *slog.Logger) (*Client, error) {
	if !cfg.Enabled {
		return nil, fmt.Errorf("registry client: %s is not true", EnvEnabled)
	}
	s, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.InsecureSkipVerify {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // opt-in for test registries
	}
	return &Client{
		base: s.base, host: s.host, user: cfg.User, password: cfg.Password,
		http:   &http.Client{Timeout: s.timeout, Transport: tr},
		log:    log,
		tokens: map[string]bearerToken{},
	}, nil
}

// Ref is the image reference the engine tags and pushes: <Host>/<repo>:<tag>.
func (c *Client) Ref(repo, tag string) string { return c.host + "/" + repo + ":" + tag }

// AuthConfig is what the Docker Engine needs to push to this registry with
// the same credentials; the engine runs the Basic or Bearer flow itself.
func (c *Client) AuthConfig() registry.AuthConfig {
	return registry.AuthConfig{Username: c.user, Password: c.password, ServerAddress: c.host}
}

// Check proves the registry answers the v2 API and accepts the
// credentials (GET /v2/); the worker logs its result at start-up.
func (c *Client) Check(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodGet, "/v2/", nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return c.statusError("check /v2/", resp)
	}
	return nil
}

// ManifestDigest is the digest the tag points to, as the registry computes
// it (Docker-Content-Digest), so a workflow can tell whether an earlier
// attempt already pushed the image and record what it deployed. An absent
// tag or repository is found=false with no error.
func (c *Client) ManifestDigest(ctx context.Context, repo, tag string) (digest string, found bool, err error) {
	if err := validRepo(repo); err != nil {
		return "", false, err
	}
	if !tagRE.MatchString(tag) && !digestRE.MatchString(tag) {
		return "", false, invalid(fmt.Sprintf("tag %q is not a valid image tag", tag))
	}
	op := fmt.Sprintf("manifest %s:%s", repo, tag)
	resp, err := c.do(ctx, http.MethodHead, "/v2/"+repo+"/manifests/"+tag,
		http.Header{"Accept": manifestTypes}, "repository:"+repo+":pull")
	if err != nil {
		return "", false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		digest = resp.Header.Get("Docker-Content-Digest")
		if !digestRE.MatchString(digest) {
			return "", false, fmt.Errorf("%s: registry %s sent no valid Docker-Content-Digest (%q)", op, c.base.Host, digest)
		}
		return digest, true, nil
	case http.StatusNotFound:
		return "", false, nil
	default:
		return "", false, c.statusError(op, resp)
	}
}

// DeleteManifest removes a manifest by digest (the registry refuses tags
// here) and with it every tag that points to it; the blobs go at the
// registry's next garbage collection. A manifest already gone is success,
// so a retried decommission does not fail.
func (c *Client) DeleteManifest(ctx context.Context, repo, digest string) error {
	if err := validRepo(repo); err != nil {
		return err
	}
	if !digestRE.MatchString(digest) {
		return invalid(fmt.Sprintf("%q is not a manifest digest (algorithm:hex)", digest))
	}
	op := fmt.Sprintf("delete manifest %s@%s", repo, digest)
	resp, err := c.do(ctx, http.MethodDelete, "/v2/"+repo+"/manifests/"+digest, nil, "repository:"+repo+":delete")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusAccepted, http.StatusOK, http.StatusNoContent:
		c.log.InfoContext(ctx, "registry manifest deleted", "registry", c.host, "repo", repo, "digest", digest)
		return nil
	case http.StatusNotFound:
		return nil
	case http.StatusMethodNotAllowed:
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s: registry %s does not allow deletes (set storage.delete.enabled: true in its config)", op, c.base.Host),
			ErrDeleteDisabled, nil)
	default:
		return c.statusError(op, resp)
	}
}

func validRepo(repo string) error {
	if len(repo) > 255 || !repoRE.MatchString(repo) {
		return invalid(fmt.Sprintf("repository %q is not a valid name (lower-case path components)", repo))
	}
	return nil
}

func invalid(msg string) error {
	return temporal.NewNonRetryableApplicationError(msg, ErrInvalidReference, nil)
}

// do sends one bodiless request, answering at most one authentication
// challenge: a 401 after that is returned to the caller (statusError makes
// it a non-retryable runtimes.ErrRegistryUnauthorized). Transport errors are transient.
func (c *Client) do(ctx context.Context, method, path string, hdr http.Header, scope string) (*http.Response, error) {
	op := fmt.Sprintf("%s %s%s", method, c.base.Host, path)
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		c.authorize(req, scope)
		resp, err := c.http.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if resp.StatusCode != http.StatusUnauthorized || attempt > 0 {
			return resp, nil
		}
		resp.Body.Close()
		sentBasic := strings.HasPrefix(req.Header.Get("Authorization"), "Basic ")
		if err := c.answer(ctx, parseChallenges(resp.Header), scope, sentBasic); err != nil {
			return nil, err
		}
	}
}

// authorize adds what an earlier challenge asked for: a cached token for
// the scope, or Basic credentials.
func (c *Client) authorize(req *http.Request, scope string) {
	c.mu.Lock()
	tok, ok := c.tokens[scope]
	basic := c.basic
	c.mu.Unlock()
	switch {
	case ok && time.Now().Before(tok.expires):
		req.Header.Set("Authorization", "Bearer "+tok.value)
	case basic && c.user != "":
		req.SetBasicAuth(c.user, c.password)
	}
}

// answer prepares the retry of a request the registry answered 401 with
// the given challenges: a fresh token for Bearer, credentials for Basic.
func (c *Client) answer(ctx context.Context, chs []challenge, scope string, sentBasic bool) error {
	for _, ch := range chs {
		if ch.scheme != "bearer" {
			continue
		}
		tok, err := c.fetchToken(ctx, ch, scope)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.tokens[scope] = tok
		c.mu.Unlock()
		return nil
	}
	for _, ch := range chs {
		if ch.scheme != "basic" {
			continue
		}
		if c.user == "" {
			return c.unauthorized(fmt.Sprintf("registry %s requires credentials", c.base.Host))
		}
		if sentBasic {
			return c.unauthorized(fmt.Sprintf("registry %s rejected the credentials", c.base.Host))
		}
		c.mu.Lock()
		c.basic = true
		c.mu.Unlock()
		return nil
	}
	return c.unauthorized(fmt.Sprintf("registry %s answered 401 without a Basic or Bearer challenge", c.base.Host))
}
