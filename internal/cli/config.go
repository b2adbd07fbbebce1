package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// Environment variables and defaults the CLI reads.
const (
	EnvAPIURL  = "TENANTFLOW_API_URL"
	EnvToken   = "TENANTFLOW_TOKEN"
	EnvConfig  = "TENANTFLOW_CONFIG"
	envDataDir = "TENANTFLOW_DATA_DIR"   // make run's data dir (.data)
	envListen  = "TENANTFLOW_API_LISTEN" // make run's API address
	devTokens  = "dev-tokens.json"
	defaultAPI = "http://127.0.0.1:8080"
	defaultAs  = "ops"
)

// fileConfig is ~/.config/tenantflow/config.yaml (or $TENANTFLOW_CONFIG).
type fileConfig struct {
	API   string `yaml:"api"`
	Token string `yaml:"token"`
}

// target is the API the CLI talks to and the token it sends, with where
// each came from (shown by errors about them).
type target struct {
	API, Token         string
	APIFrom, TokenFrom string
}

// lookup is what the CLI was given: flags ("" when absent) and the
// environment (getenv, so tests pass their own).
type lookup struct {
	api, token, as string
	asSet          bool
	getenv         func(string) string
}

// resolve finds the API and the token: flags, then the environment, then
// the config file; without a token, the ops token `make run` wrote into
// .data/dev-tokens.json (the role --as names), and its API address.
func resolve(l lookup) (target, error) {
	var t target
	cfg, cfgPath, err := readConfigFile(l.getenv)
	if err != nil {
		return t, err
	}
	t.API, t.APIFrom = first(
		pair{l.api, "--api"},
		pair{l.getenv(EnvAPIURL), EnvAPIURL},
		pair{cfg.API, cfgPath},
	)
	if l.asSet && l.token != "" {
		return t, usageError("give --token or --as, not both: --as reads a role's token from the dev tokens file")
	}
	if !l.asSet {
		t.Token, t.TokenFrom = first(
			pair{l.token, "--token"},
			pair{l.getenv(EnvToken), EnvToken},
			pair{cfg.Token, cfgPath},
		)
	}
	// make run's dev token goes only to a local API (or where --as sends
	// it): never to a remote one named without a token.
	if t.Token == "" && (l.asSet || t.API == "" || isLoopbackURL(t.API)) {
		if err := devToken(l, &t); err != nil {
			return t, err
		}
	}
	if t.API == "" {
		t.API, t.APIFrom = defaultAPI, "default"
		if listen := l.getenv(envListen); listen != "" {
			if strings.HasPrefix(listen, ":") || strings.HasPrefix(listen, "0.0.0.0:") {
				listen = "127.0.0.1:" + listen[strings.LastIndex(listen, ":")+1:]
			}
			t.API, t.APIFrom = "http://"+listen, envListen
		}
	}
	return t, nil
}

type pair struct{ value, from string }

func first(ps ...pair) (string, string) {
	for _, p := range ps {
		if v := strings.TrimSpace(p.value); v != "" {
			return v, p.from
		}
	}
	return "", ""
}

// configPath is $TENANTFLOW_CONFIG, else tenantflow/config.yaml in the
// user's config directory ($XDG_CONFIG_HOME, else ~/.config); explicit
// tells the first, which must exist.
func configPath(getenv func(string) string) (path string, explicit bool) {
	if p := getenv(EnvConfig); p != "" {
		return p, true
	}
	dir := getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return "", false
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "tenantflow", "config.yaml"), false
}

func readConfigFile(getenv func(string) string) (fileConfig, string, error) {
	var cfg fileConfig
	path, explicit := configPath(getenv)
	if path == "" {
		return cfg, "", nil
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !explicit:
		return cfg, "", nil
	case err != nil:
		return cfg, "", usageError(fmt.Sprintf("config file (%s): %v", EnvConfig, err))
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) { // io.EOF: an empty file
		return cfg, "", usageError(fmt.Sprintf("config file %s: %v (want the keys api and token)", path, err))
	}
	return cfg, path, nil
}

// devTokensPath is where `make run` (tenantflow dev) writes its tokens:
// $TENANTFLOW_DATA_DIR/dev-tokens.json, .data/ by default.
func devTokensPath(getenv func(string) string) string {
	dir := getenv(envDataDir)
	if dir == "" {
		dir = ".data"
	}
	return filepath.Join(dir, devTokens)
}

// devToken takes the token of role (--as, ops by default) from the dev
// tokens file. Without that file the CLI has no token: an error that says
// where one goes.
func devToken(l lookup, t *target) error {
	role := l.as
	if role == "" {
		role = defaultAs
	}
	path := devTokensPath(l.getenv)
	b, err := os.ReadFile(path)
	if err != nil {
		if l.asSet {
			return usageError(fmt.Sprintf("--as %s reads the dev tokens file %s (make run writes it): %v", role, path, err))
		}
		return usageError(fmt.Sprintf("no API token: pass --token, set %s, put `token:` in the config file (%s), or run from the directory of `make run` (%s)",
			EnvToken, configHint(l.getenv), path))
	}
	var tokens map[string]json.RawMessage
	if err := json.Unmarshal(b, &tokens); err != nil {
		return usageError(fmt.Sprintf("dev tokens file %s: %v", path, err))
	}
	raw, ok := tokens[role]
	if !ok {
		return usageError(fmt.Sprintf("dev tokens file %s has no %q token (roles: ops, distributor, developer)", path, role))
	}
	// A role's value is a token or a list of tokens (the API's tokens file).
	var one string
	var many []string
	switch {
	case json.Unmarshal(raw, &one) == nil && one != "":
	case json.Unmarshal(raw, &many) == nil && len(many) > 0:
		one = many[0]
	default:
		return usageError(fmt.Sprintf("dev tokens file %s: the %q token is not a string", path, role))
	}
	t.Token, t.TokenFrom = one, fmt.Sprintf("%s (%s)", path, role)
	return nil
}

func configHint(getenv func(string) string) string {
	if p, _ := configPath(getenv); p != "" {
		return p
	}
	return "$" + EnvConfig
}

// isLoopbackURL tells an API URL on this machine (127.0.0.0/8, ::1,
// localhost).
func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
