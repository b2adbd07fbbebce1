package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/tenantflow/tenantflow/activities/runtimes"
)

// challenge is one WWW-Authenticate challenge: its scheme (lower case) and
// parameters (realm, service, scope, error…).
type challenge struct {
	scheme string
	params map[string]string
}

// parseChallenges reads every challenge of the WWW-Authenticate headers.
// Quoted values may hold commas (scope="repository:a:pull,push"), so the
// header is scanned rather than split.
func parseChallenges(h http.Header) []challenge {
	var out []challenge
	for _, v := range h.Values("WWW-Authenticate") {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(v), " ")
		ch := challenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
		for rest = strings.TrimSpace(rest); rest != ""; {
			key, after, ok := strings.Cut(rest, "=")
			if !ok {
				break
			}
			key = strings.ToLower(strings.TrimSpace(key))
			var val string
			if strings.HasPrefix(after, `"`) {
				var b strings.Builder
				i := 1
				for ; i < len(after) && after[i] != '"'; i++ {
					if after[i] == '\\' && i+1 < len(after) {
						i++
					}
					b.WriteByte(after[i])
				}
				val, rest = b.String(), after[min(i+1, len(after)):]
			} else {
				val, rest, _ = strings.Cut(after, ",")
				rest = "," + rest
			}
			ch.params[key] = strings.TrimSpace(val)
			rest = strings.TrimLeft(strings.TrimSpace(rest), ",")
			rest = strings.TrimSpace(rest)
		}
		out = append(out, ch)
	}
	return out
}

// bearerToken is a token from the registry's token server, kept until
// shortly before it expires.
type bearerToken struct {
	value   string
	expires time.Time
}

// fetchToken asks the token server named in a Bearer challenge for a token
// with the challenge's scope (the registry knows which rights the request
// needs), falling back to the scope of the operation. The configured
// credentials go there with HTTP Basic, as docker login does.
func (c *Client) fetchToken(ctx context.Context, ch challenge, scope string) (bearerToken, error) {
	realm := ch.params["realm"]
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return bearerToken{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("registry %s: Bearer challenge has no usable realm %q", c.base.Host, realm), runtimes.ErrRegistryUnauthorized, nil)
	}
	q := u.Query()
	if s := ch.params["service"]; s != "" {
		q.Set("service", s)
	}
	if s := ch.params["scope"]; s != "" {
		scope = s
	}
	if scope != "" {
		q.Set("scope", scope)
	}
	if c.user != "" {
		q.Set("account", c.user)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return bearerToken{}, fmt.Errorf("token request to %s: %w", u.Host, err)
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.password)
	}
	op := fmt.Sprintf("get token from %s%s", u.Host, u.Path)
	resp, err := c.http.Do(req)
	if err != nil {
		return bearerToken{}, fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return bearerToken{}, c.statusError(op, resp)
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return bearerToken{}, fmt.Errorf("%s: decode answer: %w", op, err)
	}
	tok := bearerToken{value: body.Token}
	if tok.value == "" {
		tok.value = body.AccessToken
	}
	if tok.value == "" {
		return bearerToken{}, fmt.Errorf("%s: the answer holds no token", op)
	}
	// The token spec says 60 s when expires_in is missing; keep a margin
	// so a token never expires between the cache and the registry.
	life := 60 * time.Second
	if body.ExpiresIn > 0 {
		life = time.Duration(body.ExpiresIn) * time.Second
	}
	tok.expires = time.Now().Add(life - min(life/5, 30*time.Second))
	c.log.DebugContext(ctx, "registry token obtained", "registry", c.base.Host, "scope", scope, "expires_in", life.String())
	return tok, nil
}
