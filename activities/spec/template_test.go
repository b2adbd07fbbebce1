package spec

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const validTemplate = `
name: web
secrets: [{name: db_password, length: 24}]
volumes: [{name: data}]
services:
  - name: app
    image: example/app:1
    env:
      PASSWORD: ${secret.db_password}
      GREETING: hello ${tenant.name} on ${tenant.stage}
    volumes: ["data:/data"]
    ports: [{name: http, container: 8080, public: true}]
    healthcheck: {http: {path: /healthz, port: 8080}, interval: 250ms}
    resources: {memory: 64Mi, cpus: 0.5}
`

func TestParseAndRender(t *testing.T) {
	tpl, err := ParseTemplate([]byte(validTemplate))
	require.NoError(t, err)
	secrets, err := tpl.GenerateSecrets()
	require.NoError(t, err)
	require.Len(t, secrets["db_password"], 24)

	env, err := tpl.Render("acme", "prod", secrets)
	require.NoError(t, err)
	app := env.Services[0]
	require.Equal(t, secrets["db_password"], app.Env["PASSWORD"])
	require.Equal(t, "hello acme on prod", app.Env["GREETING"])
	require.Equal(t, []Mount{{Volume: "data", Path: "/data"}}, app.Mounts)
	require.Equal(t, int64(64<<20), app.Resources.MemoryBytes())
	require.Equal(t, "250ms", app.HealthCheck.Interval.D().String())
	svc, port, ok := env.PublicPort()
	require.True(t, ok)
	require.Equal(t, "app", svc.Name)
	require.Equal(t, 8080, port.Container)

	// Rendering is pure: the template is not modified.
	require.Equal(t, "${secret.db_password}", tpl.Services[0].Env["PASSWORD"])
	_, err = tpl.Render("acme", "prod", map[string]string{})
	require.ErrorContains(t, err, `no value for "db_password"`)
}

func TestSecretsDiffer(t *testing.T) {
	tpl, err := ParseTemplate([]byte(validTemplate))
	require.NoError(t, err)
	a, _ := tpl.GenerateSecrets()
	b, _ := tpl.GenerateSecrets()
	require.NotEqual(t, a["db_password"], b["db_password"])
}

func TestTemplateErrors(t *testing.T) {
	cases := map[string]struct{ from, to, want string }{
		"unknown key":        {"image: example/app:1", "image: example/app:1\n    imagePullPolicy: x", "field imagePullPolicy not found"},
		"bad name":           {"name: web", "name: Web_1", "must be a DNS label"},
		"undeclared secret":  {"${secret.db_password}", "${secret.nope}", "undeclared secret"},
		"unknown variable":   {"${tenant.name}", "${tenant.owner}", "unknown variable"},
		"undeclared volume":  {`"data:/data"`, `"logs:/logs"`, "undeclared volume"},
		"relative mount":     {`"data:/data"`, `"data:data"`, "absolute path"},
		"no public port":     {"public: true", "public: false", "exactly one port must be public"},
		"two health checks":  {"{http: {path: /healthz, port: 8080}", "{command: [true], http: {path: /healthz, port: 8080}", "exactly one of http or command"},
		"bad memory":         {"memory: 64Mi", "memory: 64MB", "resources.memory"},
		"bad duration":       {"interval: 250ms", "interval: soon", "invalid duration"},
		"short secret":       {"length: 24", "length: 8", "length must be 16..128"},
		"port out of range":  {"container: 8080, public", "container: 70000, public", "out of range"},
		"health path":        {"path: /healthz", "path: healthz", "path starting with /"},
		"missing image":      {"image: example/app:1", "image: ''", "image is required"},
		"bad env name":       {"GREETING:", "1GREETING:", "env name"},
		"duplicate volume":   {"volumes: [{name: data}]", "volumes: [{name: data}, {name: data}]", "declared twice"},
		"too long svc name":  {"- name: app", "- name: " + strings.Repeat("a", 31), "at most 30"},
		"no services at all": {"services:", "services: []\nx:", "field x not found"},
		"public dump":        {"    resources: {memory: 64Mi, cpus: 0.5}", "    resources: {memory: 64Mi, cpus: 0.5}\n    backup: {dump: [d], restore: [r]}", "only a database-like service"},
		"bad secret name":    {"name: db_password", "name: 'db password'", "secret name"},
		"duplicate secret":   {"secrets: [{name: db_password, length: 24}]", "secrets: [{name: db_password, length: 24}, {name: db_password}]", "declared twice"},
		"negative cpus":      {"cpus: 0.5", "cpus: -1", "must not be negative"},
		"http port missing":  {"port: 8080}", "port: 0}", "needs a port"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			src := strings.Replace(validTemplate, c.from, c.to, 1)
			require.NotEqual(t, validTemplate, src, "the case must change the template")
			_, err := ParseTemplate([]byte(src))
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestTemplateWithoutServices(t *testing.T) {
	_, err := ParseTemplate([]byte("name: empty\nservices: []\n"))
	require.ErrorContains(t, err, "no services")
}

func TestLoadTemplatesChecksFileNames(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadTemplates(dir)
	require.ErrorContains(t, err, "no *.yaml templates")
	require.NoError(t, writeFile(dir+"/other.yaml", validTemplate))
	_, err = LoadTemplates(dir)
	require.ErrorContains(t, err, `must match the file name "other"`)

	tpls, err := LoadTemplates("../../deploy/templates")
	require.NoError(t, err)
	require.Contains(t, tpls.Names(), "default")
}

func writeFile(path, data string) error { return os.WriteFile(path, []byte(data), 0o644) }

func TestServiceBackup(t *testing.T) {
	withDB := validTemplate + `
  - name: db
    image: example/db:1
    volumes: ["data:/var/db"]
    healthcheck: {command: [probe]}
    backup: {dump: [dump-it], restore: [restore-it]}
`
	tpl, err := ParseTemplate([]byte(withDB))
	require.NoError(t, err)
	env, err := tpl.Render("acme", "prod", map[string]string{"db_password": strings.Repeat("x", 24)})
	require.NoError(t, err)
	require.Equal(t, &ServiceBackup{Dump: []string{"dump-it"}, Restore: []string{"restore-it"}}, env.Services[1].Backup)

	for change, want := range map[string]string{
		"backup: {dump: [dump-it]}": "needs both a dump and a restore command",
		"healthcheck: {http: {path: /h, port: 1}}\n    backup: {dump: [d], restore: [r]}": "needs a command health check",
	} {
		bad := strings.Replace(withDB, "healthcheck: {command: [probe]}\n    backup: {dump: [dump-it], restore: [restore-it]}", change, 1)
		_, err := ParseTemplate([]byte(bad))
		require.ErrorContains(t, err, want, change)
	}
}

// The start pace decides how long a start may take; the steady interval
// (30 s in the default template) does not stretch it.
func TestHealthBudgetFollowsTheStartPace(t *testing.T) {
	ms := func(n int) Duration { return Duration(time.Duration(n) * time.Millisecond) }
	for _, tc := range []struct {
		h    *HealthCheck
		want time.Duration
	}{
		{nil, 30 * time.Second},
		{&HealthCheck{Interval: ms(200), Timeout: ms(2000), Retries: 25}, 26*2200*time.Millisecond + 5*time.Second},
		{&HealthCheck{Interval: ms(30000), StartInterval: ms(200), Timeout: ms(2000), StartPeriod: ms(50000), Retries: 3},
			50*time.Second + 4*2200*time.Millisecond + 5*time.Second},
		{&HealthCheck{}, 4*3*time.Second + 5*time.Second},
	} {
		require.Equal(t, tc.want, HealthBudget(tc.h), "%+v", tc.h)
	}
	require.Equal(t, 200*time.Millisecond, (&HealthCheck{Interval: ms(30000), StartInterval: ms(200)}).ProbeInterval())
	require.Equal(t, 2*time.Second, (&HealthCheck{Interval: ms(2000)}).ProbeInterval())
}

func TestTemplateRuntime(t *testing.T) {
	tpl, err := ParseTemplate([]byte(validTemplate + "runtime: openshift\n"))
	require.NoError(t, err)
	env, err := tpl.Render("acme", "prod", map[string]string{"db_password": "x"})
	require.NoError(t, err)
	require.Equal(t, OpenShift, env.Runtime)

	_, err = ParseTemplate([]byte(validTemplate + "runtime: kubernetes\n"))
	require.ErrorContains(t, err, `runtime "kubernetes": must be one of docker, openshift`)

	plain, err := ParseTemplate([]byte(validTemplate))
	require.NoError(t, err)
	named, err := ParseTemplate([]byte(validTemplate + "runtime: docker\n"))
	require.NoError(t, err)
	named.Name = "named"
	ts := Templates{"web": plain, "named": named}
	require.NoError(t, ts.WithDefaultRuntime(OpenShift))
	require.Equal(t, OpenShift, ts["web"].Runtime, "the deployment's default")
	require.Equal(t, Docker, ts["named"].Runtime, "a template's own choice stands")
	require.ErrorContains(t, ts.WithDefaultRuntime("lxc"), `runtime "lxc"`)
}

func TestIsDomainName(t *testing.T) {
	for name, want := range map[string]bool{
		"crm.customer.com": true, "a.b": true, "xn--bcher-kva.example": true,
		"localhost": false, "CRM.customer.com": false, "crm..com": false, "-crm.customer.com": false,
		"crm_1.customer.com": false, "crm.customer.com.": false, strings.Repeat("a", 64) + ".com": false,
		strings.Repeat("abcdefghi.", 25) + "com": true, strings.Repeat("abcdefghi.", 26) + "com": false,
	} {
		require.Equal(t, want, IsDomainName(name), name)
	}
}

func TestTemplatePlans(t *testing.T) {
	src := validTemplate + "defaultPlan: small\nplans:\n  small: {}\n  large:\n    app: {memory: 1Gi, pids: 256}\n"
	tpl, err := ParseTemplate([]byte(src))
	require.NoError(t, err)
	require.Equal(t, []string{"large", "small"}, tpl.PlanNames())

	small, plan, err := tpl.WithPlan("")
	require.NoError(t, err)
	require.Equal(t, "small", plan, "the default plan")
	for i := range tpl.Services {
		require.Equal(t, tpl.Services[i].Resources, small.Services[i].Resources)
	}

	large, plan, err := tpl.WithPlan("large")
	require.NoError(t, err)
	require.Equal(t, "large", plan)
	app := large.Services[len(large.Services)-1]
	require.Equal(t, Resources{Memory: "1Gi", CPUs: 0.5, Pids: 256}, app.Resources, "cpus left out: the service's own")
	require.Equal(t, "64Mi", tpl.Services[len(tpl.Services)-1].Resources.Memory, "the template itself is not changed")

	// A tenant's sized copy sizes again from the service's own limits,
	// not from the plan it had: back to small is the template's sizes.
	again, _, err := large.WithPlan("small")
	require.NoError(t, err)
	require.Equal(t, Resources{Memory: "64Mi", CPUs: 0.5}, again.Services[len(again.Services)-1].Resources)
	// A copy sized before the own limits were kept takes its sizes then
	// as its own (what a plan change did before).
	legacy := *large
	legacy.Services = append([]ServiceTemplate(nil), large.Services...)
	legacy.Services[len(legacy.Services)-1].BaseResources = nil
	kept, _, err := legacy.WithPlan("small")
	require.NoError(t, err)
	require.Equal(t, Resources{Memory: "1Gi", CPUs: 0.5, Pids: 256}, kept.Services[len(kept.Services)-1].Resources)

	_, _, err = tpl.WithPlan("huge")
	require.ErrorContains(t, err, `no plan "huge" (plans: large, small)`)
	plain, err := ParseTemplate([]byte(validTemplate))
	require.NoError(t, err)
	same, plan, err := plain.WithPlan("")
	require.NoError(t, err)
	require.Same(t, plain, same)
	require.Empty(t, plan)
	_, _, err = plain.WithPlan("large")
	require.ErrorContains(t, err, "has no plans")

	for name, c := range map[string]struct{ plans, want string }{
		"no default":      {"plans:\n  small: {}\n", `defaultPlan "" is not one of the plans`},
		"default missing": {"defaultPlan: tiny\nplans:\n  small: {}\n", `defaultPlan "tiny"`},
		"default alone":   {"defaultPlan: small\n", "the template has no plans"},
		"unknown service": {"defaultPlan: small\nplans:\n  small: {cache: {memory: 1Gi}}\n", `no service "cache"`},
		"bad memory":      {"defaultPlan: small\nplans:\n  small: {app: {memory: 1GB}}\n", `memory "1GB"`},
		"bad plan name":   {"defaultPlan: Small\nplans:\n  Small: {}\n", "DNS label"},
		"negative cpus":   {"defaultPlan: small\nplans:\n  small: {app: {cpus: -1}}\n", "must not be negative"},
	} {
		_, err := ParseTemplate([]byte(validTemplate + c.plans))
		require.ErrorContains(t, err, c.want, name)
	}
}

func TestTemplateSettings(t *testing.T) {
	const settings = `settings:
  - name: TITLE
    description: What the app calls itself
    default: Our app
    maxLength: 60
  - name: LOG_LEVEL
    default: info
    values: [debug, info, warn]
  - name: REGION
    default: eu-1
    pattern: '[a-z]+-[0-9]'
`
	tpl, err := ParseTemplate([]byte(validTemplate + settings))
	require.NoError(t, err)
	require.Equal(t, []string{"TITLE", "LOG_LEVEL", "REGION"}, tpl.SettingNames())

	env, err := tpl.Render("acme", "prod", map[string]string{"db_password": "x"})
	require.NoError(t, err)
	require.Equal(t, "Our app", env.Services[0].Env["TITLE"], "the default")
	require.Equal(t, "info", env.Services[0].Env["LOG_LEVEL"])

	str := func(s string) *string { return &s }
	mine, err := tpl.WithSettings(map[string]*string{"TITLE": str("Acme's ${secret.db_password} $HOME"), "LOG_LEVEL": str("debug")})
	require.NoError(t, err)
	require.Nil(t, tpl.Values, "the template itself is not changed")
	env, err = mine.Render("acme", "prod", map[string]string{"db_password": "x"})
	require.NoError(t, err)
	require.Equal(t, "Acme's ${secret.db_password} $HOME", env.Services[0].Env["TITLE"], "a value is never expanded")
	require.Equal(t, "debug", env.Services[0].Env["LOG_LEVEL"])
	require.Equal(t, map[string]string{"TITLE": "Acme's ${secret.db_password} $HOME", "LOG_LEVEL": "debug", "REGION": "eu-1"}, mine.SettingValues())

	back, err := mine.WithSettings(map[string]*string{"LOG_LEVEL": nil})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"TITLE": "Acme's ${secret.db_password} $HOME"}, back.Values, "nil: back to the default")
	none, err := back.WithSettings(map[string]*string{"TITLE": nil})
	require.NoError(t, err)
	require.Nil(t, none.Values)

	for name, c := range map[string]struct {
		key, value, want string
	}{
		"unknown":    {"COLOR", "red", `no setting "COLOR" (settings: TITLE, LOG_LEVEL, REGION)`},
		"too long":   {"TITLE", strings.Repeat("a", 61), "at most 60 bytes"},
		"not listed": {"LOG_LEVEL", "trace", "one of debug, info, warn"},
		"pattern":    {"REGION", "eu-1; rm -rf", "must match [a-z]+-[0-9]"},
		"anchored":   {"REGION", "xeu-12", "must match"},
		"newline":    {"TITLE", "a\nb", "one line"},
	} {
		v := c.value
		_, err := tpl.WithSettings(map[string]*string{c.key: &v})
		require.ErrorContains(t, err, c.want, name)
	}
	_, err = tpl.WithSettings(map[string]*string{"COLOR": nil})
	require.ErrorContains(t, err, `no setting "COLOR"`, "a reset names a setting too")

	for name, c := range map[string]struct{ settings, want string }{
		"bad name":         {"settings: [{name: 'log level'}]", "environment variable"},
		"twice":            {"settings: [{name: A}, {name: A}]", "declared twice"},
		"in env too":       {"settings: [{name: GREETING}]", "sets it in its env too"},
		"default unlisted": {"settings: [{name: A, values: [x, y]}]", `default "": A must be one of x, y`},
		"bad pattern":      {"settings: [{name: A, pattern: '('}]", "pattern"},
		"both":             {"settings: [{name: A, default: x, values: [x], pattern: x}]", "not both"},
		"huge":             {"settings: [{name: A, maxLength: 100000}]", "maxLength"},
	} {
		_, err := ParseTemplate([]byte(validTemplate + c.settings + "\n"))
		require.ErrorContains(t, err, c.want, name)
	}
}
