package api

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseTokens(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		wantErr string            // substring; "" means success
		roles   map[string]string // token -> role expected after parsing
	}{
		{
			name: "one token per role",
			data: `{"ops":"ops-token-0123456789","distributor":"dist-token-0123456789","developer":"dev-token-0123456789"}`,
			roles: map[string]string{
				"ops-token-0123456789": RoleOps, "dist-token-0123456789": RoleDistributor, "dev-token-0123456789": RoleDeveloper,
			},
		},
		{
			name:  "array form",
			data:  `{"distributor":["dist-token-aaaaaaaaaa","dist-token-bbbbbbbbbb"],"ops":"ops-token-0123456789"}`,
			roles: map[string]string{"dist-token-aaaaaaaaaa": RoleDistributor, "dist-token-bbbbbbbbbb": RoleDistributor, "ops-token-0123456789": RoleOps},
		},
		{name: "unknown role", data: `{"admin":"admin-token-0123456789"}`, wantErr: `unknown role "admin" (known roles: ops, distributor, developer)`},
		{name: "short token", data: `{"ops":"short"}`, wantErr: "role ops: token ops is shorter than 16 characters"},
		{name: "short token in array", data: `{"developer":["dev-token-0123456789","tiny"]}`, wantErr: "role developer: token developer#2 is shorter than 16 characters"},
		{name: "empty token", data: `{"ops":""}`, wantErr: "role ops: token ops is empty"},
		{name: "empty array", data: `{"ops":[]}`, wantErr: "role ops: empty token list"},
		{name: "wrong type", data: `{"ops":42}`, wantErr: "role ops: want a token string or an array of token strings"},
		{name: "null", data: `{"ops":null}`, wantErr: "role ops: want a token string or an array of token strings"},
		{name: "same token for two roles", data: `{"ops":"shared-token-0123456789","developer":"shared-token-0123456789"}`, wantErr: "role ops: token ops is also token developer"},
		{name: "no tokens", data: `{}`, wantErr: "no tokens"},
		{name: "not an object", data: `["ops"]`, wantErr: "want a JSON object of role to token(s)"},
		{name: "malformed", data: `{"ops":`, wantErr: "parse tokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tokens, err := ParseTokens([]byte(tt.data))
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.NotContains(t, err.Error(), "0123456789", "errors must not leak tokens")
				return
			}
			require.NoError(t, err)
			for tok, want := range tt.roles {
				role, ok := tokens.Role(tok)
				assert.True(t, ok, "token %s", tok)
				assert.Equal(t, want, role)
			}
			_, ok := tokens.Role("not-a-known-token-at-all")
			assert.False(t, ok)
			_, ok = tokens.Role("")
			assert.False(t, ok)
		})
	}
}

func TestTokensKeepOnlyDigests(t *testing.T) {
	tokens, err := ParseTokens([]byte(`{"ops":"ops-token-0123456789"}`))
	require.NoError(t, err)
	require.Len(t, tokens.entries, 1)
	assert.NotContains(t, string(tokens.entries[0].sum[:]), "ops-token")
	var nilTokens *Tokens
	_, ok := nilTokens.Role("ops-token-0123456789")
	assert.False(t, ok, "a nil Tokens admits nobody")
}

func TestLoadTokens(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(data), 0o600))
		return p
	}

	good := write("good.json", `{"ops":["ops-token-0123456789","ops-token-9876543210"]}`)
	tokens, err := LoadTokens(good)
	require.NoError(t, err)
	role, ok := tokens.Role("ops-token-9876543210")
	assert.True(t, ok)
	assert.Equal(t, RoleOps, role)

	bad := write("bad.json", `{"root":"root-token-0123456789"}`)
	_, err = LoadTokens(bad)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tokens file "+bad)
	assert.Contains(t, err.Error(), `unknown role "root"`)

	short := write("short.json", `{"distributor":"abc"}`)
	_, err = LoadTokens(short)
	require.Error(t, err)
	assert.Contains(t, err.Error(), short)
	assert.Contains(t, err.Error(), "shorter than 16 characters")

	missing := filepath.Join(dir, "missing.json")
	_, err = LoadTokens(missing)
	require.Error(t, err)
	assert.Contains(t, err.Error(), missing)
}

func TestAuthentication(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		name   string
		header string // full Authorization header, "" for none
	}{
		{name: "no header"},
		{name: "wrong token", header: "Bearer not-a-valid-token-at-all"},
		{name: "empty bearer", header: "Bearer "},
		{name: "basic scheme with a valid token", header: "Basic " + opsToken},
		{name: "token without scheme", header: opsToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, route := range []struct{ method, path, body string }{
				{http.MethodGet, "/v1/tenants", ""},
				{http.MethodGet, "/v1/tenants/acme", ""},
				{http.MethodPost, "/v1/tenants", `{"name":"acme","stage":"prod"}`},
			} {
				req := newRequest(route.method, route.path, route.body)
				if tt.header != "" {
					req.Header.Set("Authorization", tt.header)
				}
				rec := serve(e, req)
				assert.Equal(t, http.StatusUnauthorized, rec.Code, "%s %s", route.method, route.path)
				assert.Equal(t, `Bearer realm="tenantflow"`, rec.Header().Get("WWW-Authenticate"))
				assert.JSONEq(t, `{"error":"missing or invalid bearer token"}`, rec.Body.String())
			}
			assert.Empty(t, e.temporal.startCalls())
			assert.Empty(t, e.temporal.listCalls())
		})
	}
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	e := newTestEnv(t)
	req := newRequest(http.MethodGet, "/v1/tenants", "")
	req.Header.Set("Authorization", "bearer "+developerToken)
	rec := serve(e, req)
	assert.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
}

func TestAuthorization(t *testing.T) {
	tests := []struct {
		name     string
		token    string
		method   string
		path     string
		body     string
		wantCode int
		wantBody string
	}{
		{name: "developer may not create", token: developerToken, method: http.MethodPost, path: "/v1/tenants",
			body: `{"name":"acme","stage":"prod"}`, wantCode: http.StatusForbidden,
			wantBody: `{"error":"role developer may not call POST /v1/tenants"}`},
		{name: "ops may create", token: opsToken, method: http.MethodPost, path: "/v1/tenants",
			body: `{"name":"acme","stage":"prod"}`, wantCode: http.StatusAccepted},
		{name: "distributor may create", token: distributorToken, method: http.MethodPost, path: "/v1/tenants",
			body: `{"name":"acme","stage":"prod"}`, wantCode: http.StatusAccepted},
		{name: "developer may list", token: developerToken, method: http.MethodGet, path: "/v1/tenants", wantCode: http.StatusOK},
		{name: "developer may get", token: developerToken, method: http.MethodGet, path: "/v1/tenants/acme", wantCode: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.temporal.queryResult = map[string]any{"name": "acme"}
			rec := e.do(tt.method, tt.path, tt.token, tt.body)
			require.Equal(t, tt.wantCode, rec.Code, rec.Body.String())
			if tt.wantBody != "" {
				assert.JSONEq(t, tt.wantBody, rec.Body.String())
			}
			if tt.wantCode == http.StatusForbidden {
				assert.Empty(t, e.temporal.startCalls(), "a forbidden request must not start a workflow")
			}
		})
	}
}

// TestRequireRolesStandalone uses the middleware the way another package
// would, on its own route.
func TestRequireRolesStandalone(t *testing.T) {
	e := newTestEnv(t)
	tokens, err := ParseTokens([]byte(`{"ops":"` + opsToken + `","developer":"` + developerToken + `"}`))
	require.NoError(t, err)
	e.router.POST("/codec/decode", RequireRoles(tokens, RoleOps), func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"role": roleOf(c)})
	})

	rec := e.do(http.MethodPost, "/codec/decode", opsToken, "{}")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"role":"ops"}`, rec.Body.String())

	rec = e.do(http.MethodPost, "/codec/decode", developerToken, "{}")
	require.Equal(t, http.StatusForbidden, rec.Code)
	var body map[string]string
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	assert.Equal(t, "role developer may not call POST /codec/decode", body["error"])
}
