package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// configDirs is a HOME with a config file and a data dir with make run's
// dev tokens, as a developer's machine has them.
type configDirs struct {
	home, data, file string
}

func newConfigDirs(t *testing.T, config, tokens string) configDirs {
	d := configDirs{home: t.TempDir(), data: t.TempDir()}
	d.file = filepath.Join(d.home, ".config", "tenantflow", "config.yaml")
	if config != "" {
		require.NoError(t, os.MkdirAll(filepath.Dir(d.file), 0o700))
		require.NoError(t, os.WriteFile(d.file, []byte(config), 0o600))
	}
	if tokens != "" {
		require.NoError(t, os.WriteFile(filepath.Join(d.data, devTokens), []byte(tokens), 0o600))
	}
	return d
}

func (d configDirs) env(kv ...string) func(string) string {
	m := map[string]string{"HOME": d.home, envDataDir: d.data}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

const devTokensFile = `{"ops":"dev-ops","distributor":["dev-dist-1","dev-dist-2"],"developer":"dev-developer"}`

// Flags beat the environment, which beats the config file, which beats
// make run's dev tokens.
func TestSettingsPrecedence(t *testing.T) {
	d := newConfigDirs(t, "api: http://file.example:8080\ntoken: file-token\n", devTokensFile)
	for _, tc := range []struct {
		name string
		l    lookup
		want target
	}{
		{"flags", lookup{api: "http://flag:1", token: "flag-token", getenv: d.env(EnvAPIURL, "http://env:2", EnvToken, "env-token")},
			target{API: "http://flag:1", Token: "flag-token", APIFrom: "--api", TokenFrom: "--token"}},
		{"environment", lookup{getenv: d.env(EnvAPIURL, "http://env:2", EnvToken, "env-token")},
			target{API: "http://env:2", Token: "env-token", APIFrom: EnvAPIURL, TokenFrom: EnvToken}},
		{"config file", lookup{getenv: d.env()},
			target{API: "http://file.example:8080", Token: "file-token", APIFrom: d.file, TokenFrom: d.file}},
		{"mixed", lookup{token: "flag-token", getenv: d.env(EnvAPIURL, "http://env:2")},
			target{API: "http://env:2", Token: "flag-token", APIFrom: EnvAPIURL, TokenFrom: "--token"}},
		{"--as reads the dev tokens whatever else is set", lookup{as: "developer", asSet: true, getenv: d.env(EnvToken, "env-token")},
			target{API: "http://file.example:8080", Token: "dev-developer", APIFrom: d.file, TokenFrom: filepath.Join(d.data, devTokens) + " (developer)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolve(tc.l)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// With nothing configured, the CLI uses make run's ops token and API.
func TestDevTokensByDefault(t *testing.T) {
	d := newConfigDirs(t, "", devTokensFile)
	got, err := resolve(lookup{getenv: d.env()})
	require.NoError(t, err)
	require.Equal(t, target{API: defaultAPI, APIFrom: "default", Token: "dev-ops", TokenFrom: filepath.Join(d.data, devTokens) + " (ops)"}, got)

	got, err = resolve(lookup{as: "distributor", asSet: true, getenv: d.env(envListen, ":9090")})
	require.NoError(t, err)
	require.Equal(t, "dev-dist-1", got.Token, "a role's list of tokens: the first")
	require.Equal(t, "http://127.0.0.1:9090", got.API)
}

// make run's dev token never goes, unasked, to a remote API: named
// without a token, a remote API gets none (its 401 says where a token
// comes from); a local one gets it.
func TestDevTokenStaysLocal(t *testing.T) {
	d := newConfigDirs(t, "", devTokensFile)
	got, err := resolve(lookup{api: "https://tenantflow.example.com", getenv: d.env()})
	require.NoError(t, err)
	require.Empty(t, got.Token)
	for _, local := range []string{"http://127.0.0.1:8080", "http://localhost:9090", "http://[::1]:8080"} {
		got, err = resolve(lookup{api: local, getenv: d.env()})
		require.NoError(t, err)
		require.Equal(t, "dev-ops", got.Token, local)
	}
	got, err = resolve(lookup{api: "https://tenantflow.example.com", as: "ops", asSet: true, getenv: d.env()})
	require.NoError(t, err)
	require.Equal(t, "dev-ops", got.Token, "--as sends it where asked")
}

func TestSettingsErrors(t *testing.T) {
	none := newConfigDirs(t, "", "")
	bad := newConfigDirs(t, "api: http://x\ntokne: typo\n", "")
	dev := newConfigDirs(t, "", devTokensFile)
	for _, tc := range []struct {
		name, want string
		l          lookup
	}{
		{"no token anywhere", "no API token: pass --token, set TENANTFLOW_TOKEN, put `token:` in the config file (" +
			filepath.Join(none.home, ".config/tenantflow/config.yaml") + "), or run from the directory of `make run` (" + filepath.Join(none.data, devTokens) + ")",
			lookup{getenv: none.env()}},
		{"unknown key in the config file", "config file " + bad.file + ": yaml: unmarshal errors:\n  line 2: field tokne not found in type cli.fileConfig (want the keys api and token)",
			lookup{getenv: bad.env()}},
		{"missing explicit config file", "config file (TENANTFLOW_CONFIG): open /nonexistent/tf.yaml: no such file or directory",
			lookup{getenv: none.env(EnvConfig, "/nonexistent/tf.yaml")}},
		{"--as and --token", "give --token or --as, not both: --as reads a role's token from the dev tokens file",
			lookup{token: "t", as: "ops", asSet: true, getenv: dev.env()}},
		{"--as an unknown role", "dev tokens file " + filepath.Join(dev.data, devTokens) + ` has no "admin" token (roles: ops, distributor, developer)`,
			lookup{as: "admin", asSet: true, getenv: dev.env()}},
		{"--as without dev tokens", "--as developer reads the dev tokens file " + filepath.Join(none.data, devTokens) + " (make run writes it): open " +
			filepath.Join(none.data, devTokens) + ": no such file or directory", lookup{as: "developer", asSet: true, getenv: none.env()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolve(tc.l)
			require.EqualError(t, err, tc.want)
			require.Equal(t, ExitUsage, exitCode(err))
		})
	}
}

// An empty config file is no configuration, not an error.
func TestEmptyConfigFile(t *testing.T) {
	d := newConfigDirs(t, "\n", "")
	got, err := resolve(lookup{getenv: d.env(EnvToken, "env-token")})
	require.NoError(t, err)
	require.Equal(t, defaultAPI, got.API)
}

// The whole command reads the config file through $TENANTFLOW_CONFIG.
func TestCommandUsesTheConfigFile(t *testing.T) {
	api := newFakeAPI(t)
	api.on("GET /v1/tenants", answer(200, map[string]any{"tenants": []any{}}))
	file := filepath.Join(t.TempDir(), "tf.yaml")
	require.NoError(t, os.WriteFile(file, []byte("api: "+api.srv.URL+"\ntoken: "+developerToken+"\n"), 0o600))
	r := runCLI(t, map[string]string{EnvConfig: file}, false, "tenants", "ls")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, "developer", api.requests("")[0].role)
}

// --as takes a role's token from make run's dev tokens, over the
// environment's token.
func TestAsPicksADevRole(t *testing.T) {
	api := newFakeAPI(t)
	api.on("GET /v1/tenants", answer(200, map[string]any{"tenants": []any{}}))
	data := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(data, devTokens), []byte(`{"ops":"`+opsToken+`","developer":"`+developerToken+`"}`), 0o600))
	r := api.cli(map[string]string{envDataDir: data}, false, "tenants", "ls", "--as", "developer")
	require.Equal(t, ExitOK, r.code, r.err)
	r = api.cli(map[string]string{envDataDir: data, EnvToken: ""}, false, "tenants", "ls")
	require.Equal(t, ExitOK, r.code, r.err)
	require.Equal(t, []string{"developer", "ops"}, []string{api.requests("")[0].role, api.requests("")[1].role})
}
