package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/gin-gonic/gin"
)

// Roles a bearer token can carry. Ops run the platform, distributors create
// tenants for customers, developers may only look.
const (
	RoleOps         = "ops"
	RoleDistributor = "distributor"
	RoleDeveloper   = "developer"
)

var knownRoles = []string{RoleOps, RoleDistributor, RoleDeveloper}

// minTokenLen keeps guessable tokens out of the token file.
const minTokenLen = 16

// ctxRole and ctxCaller are the gin context keys RequireRoles sets for the
// handlers and the request log.
const (
	ctxRole   = "tenantflow.role"
	ctxCaller = "tenantflow.caller"
)

// Tokens maps bearer tokens to roles. Only the SHA-256 of each token is
// kept, so the tokens themselves do not linger in memory or show up in a
// dump, and every lookup compares fixed-size digests in constant time.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	sum  [sha256.Size]byte
	role string
	name string // for logs: "ops", or "ops#2" for the second token of a list
}

// LoadTokens reads a token file (see ParseTokens for its format).
func LoadTokens(path string) (*Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read tokens file: %w", err)
	}
	t, err := ParseTokens(data)
	if err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return t, nil
}

// ParseTokens reads a JSON object mapping a role to a token or to an array
// of tokens: {"ops":"…","distributor":["…","…"],"developer":"…"}. Unknown
// roles, empty or short tokens and a token given to two roles are errors: a
// typo in this file must not silently grant or drop access. Error messages
// never contain a token.
func ParseTokens(data []byte) (*Tokens, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("parse tokens: want a JSON object of role to token(s): %w", err)
	}
	roles := make([]string, 0, len(raw))
	for role := range raw {
		roles = append(roles, role)
	}
	sort.Strings(roles) // deterministic errors and entry order

	t := &Tokens{}
	seen := map[[sha256.Size]byte]string{}
	for _, role := range roles {
		if !slices.Contains(knownRoles, role) {
			return nil, fmt.Errorf("unknown role %q (known roles: %s)", role, strings.Join(knownRoles, ", "))
		}
		tokens, err := roleTokens(raw[role])
		if err != nil {
			return nil, fmt.Errorf("role %s: %w", role, err)
		}
		for i, tok := range tokens {
			name := role
			if len(tokens) > 1 {
				name = fmt.Sprintf("%s#%d", role, i+1)
			}
			switch {
			case tok == "":
				return nil, fmt.Errorf("role %s: token %s is empty", role, name)
			case len(tok) < minTokenLen:
				return nil, fmt.Errorf("role %s: token %s is shorter than %d characters", role, name, minTokenLen)
			}
			sum := sha256.Sum256([]byte(tok))
			if other, dup := seen[sum]; dup {
				return nil, fmt.Errorf("role %s: token %s is also token %s", role, name, other)
			}
			seen[sum] = name
			t.entries = append(t.entries, tokenEntry{sum: sum, role: role, name: name})
		}
	}
	if len(t.entries) == 0 {
		return nil, errors.New("no tokens: nobody could call the API")
	}
	return t, nil
}

// roleTokens accepts a JSON string or an array of strings.
func roleTokens(v json.RawMessage) ([]string, error) {
	v = bytes.TrimSpace(v)
	if len(v) > 0 && v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		return []string{s}, nil
	}
	var list []string
	if err := json.Unmarshal(v, &list); err != nil || list == nil {
		return nil, errors.New("want a token string or an array of token strings")
	}
	if len(list) == 0 {
		return nil, errors.New("empty token list (leave the role out instead)")
	}
	return list, nil
}

// Role returns the role of a token. It compares the token's digest with
// every entry, without stopping at a match, so timing reveals neither the
// token nor where it sits in the file.
func (t *Tokens) Role(token string) (role string, ok bool) {
	role, _, ok = t.lookup(token)
	return role, ok
}

func (t *Tokens) lookup(token string) (role, name string, ok bool) {
	if t == nil || token == "" {
		return "", "", false
	}
	sum := sha256.Sum256([]byte(token))
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 {
			role, name, ok = e.role, e.name, true
		}
	}
	return role, name, ok
}

// RequireRoles is gin middleware that admits a request only with a bearer
// token of one of roles. It answers 401 for a missing or unknown token and
// 403 for a known token of another role; admitted requests carry the role
// for handlers and the request log. Other packages reuse it for their own
// routes (e.g. the codec endpoint).
func RequireRoles(tokens *Tokens, roles ...string) gin.HandlerFunc {
	allowed := slices.Clone(roles)
	return func(c *gin.Context) {
		role, name, ok := tokens.lookup(bearerToken(c.GetHeader("Authorization")))
		if !ok {
			c.Header("WWW-Authenticate", `Bearer realm="tenantflow"`)
			c.AbortWithStatusJSON(http.StatusUnauthorized, gin.H{"error": "missing or invalid bearer token"})
			return
		}
		c.Set(ctxRole, role)
		c.Set(ctxCaller, name)
		if !slices.Contains(allowed, role) {
			c.AbortWithStatusJSON(http.StatusForbidden, gin.H{
				"error": fmt.Sprintf("role %s may not call %s %s", role, c.Request.Method, routeOf(c)),
			})
			return
		}
		c.Next()
	}
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header; the scheme is case-insensitive (RFC 7235).
func bearerToken(header string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// roleOf is the role RequireRoles admitted, "" on unauthenticated routes.
func roleOf(c *gin.Context) string { return c.GetString(ctxRole) }
