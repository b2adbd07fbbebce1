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
	require.Equal(t, tpl.Services, small.Services)

	large, plan, err := tpl.WithPlan("large")
	require.NoError(t, err)
	require.Equal(t, "large", plan)
	app := large.Services[len(large.Services)-1]
	require.Equal(t, Resources{Memory: "1Gi", CPUs: 0.5, Pids: 256}, app.Resources, "cpus left out: the service's own")
	require.Equal(t, "64Mi", tpl.Services[len(tpl.Services)-1].Resources.Memory, "the template itself is not changed")

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
