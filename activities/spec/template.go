// Package spec describes what one tenant environment is: the template read
// from deploy/templates and the Environment it renders to for one tenant.
// It is pure (no I/O but reading templates), so workflows may use it.
package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Template is the declarative description of one tenant environment, read from
// deploy/templates/<name>.yaml. It is rendered per tenant into an Environment.
type Template struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Runtime runs the template's tenants: docker or openshift; empty
	// takes the deployment's default (TENANTFLOW_RUNTIME) when loaded.
	Runtime  string            `yaml:"runtime,omitempty" json:"runtime,omitempty"`
	Secrets  []SecretTemplate  `yaml:"secrets,omitempty" json:"secrets,omitempty"`
	Volumes  []VolumeTemplate  `yaml:"volumes,omitempty" json:"volumes,omitempty"`
	Services []ServiceTemplate `yaml:"services" json:"services"`
	// Backups, when set, backs the template's tenants up on a schedule
	// (see Backups); nil: only at decommission.
	Backups *Backups `yaml:"backups,omitempty" json:"backups,omitempty"`
	// Plans are the sizes a tenant of the template may have: per plan,
	// the resources of the services it sizes (a field left out keeps the
	// service's own). A tenant is created with one (WithPlan).
	Plans map[string]map[string]Resources `yaml:"plans,omitempty" json:"plans,omitempty"`
	// DefaultPlan is the plan of a tenant created without one (required
	// when Plans is set).
	DefaultPlan string `yaml:"defaultPlan,omitempty" json:"defaultPlan,omitempty"`
	// Settings are the env settings of the public service a tenant may
	// choose (see SettingTemplate).
	Settings []SettingTemplate `yaml:"settings,omitempty" json:"settings,omitempty"`
	// Values are the tenant's chosen settings (WithSettings); a tenant's
	// own copy of the template carries them, a template file never does.
	Values map[string]string `yaml:"-" json:"values,omitempty"`
}

// MaxPlanName bounds a plan's name.
const MaxPlanName = 20

// PlanNames are the template's plans, sorted.
func (t *Template) PlanNames() []string {
	return slices.Sorted(maps.Keys(t.Plans))
}

// WithPlan is the template sized as plan says ("" takes DefaultPlan), or
// t itself when it has no plans and none is asked for. The template is
// not changed: its services are copied.
func (t *Template) WithPlan(plan string) (*Template, string, error) {
	if plan == "" {
		plan = t.DefaultPlan
	}
	if plan == "" && len(t.Plans) == 0 {
		return t, "", nil
	}
	sizes, ok := t.Plans[plan]
	if !ok {
		if len(t.Plans) == 0 {
			return nil, "", fmt.Errorf("template %s has no plans", t.Name)
		}
		return nil, "", fmt.Errorf("template %s has no plan %q (plans: %s)", t.Name, plan, strings.Join(t.PlanNames(), ", "))
	}
	out := *t
	out.Services = slices.Clone(t.Services)
	for i := range out.Services {
		svc := &out.Services[i]
		// A plan sizes from the service's own limits, not from an earlier
		// plan's: the first sizing keeps them. (A tenant sized before they
		// were kept has its sizes at the time taken as its own.)
		if svc.BaseResources == nil {
			base := svc.Resources
			svc.BaseResources = &base
		}
		svc.Resources = *svc.BaseResources
		r, ok := sizes[svc.Name]
		if !ok {
			continue
		}
		own := &svc.Resources
		if r.Memory != "" {
			own.Memory = r.Memory
		}
		if r.CPUs != 0 {
			own.CPUs = r.CPUs
		}
		if r.Pids != 0 {
			own.Pids = r.Pids
		}
	}
	return &out, plan, nil
}

// validatePlans checks the plans against the services.
func (t *Template) validatePlans() error {
	if len(t.Plans) == 0 {
		if t.DefaultPlan != "" {
			return fmt.Errorf("defaultPlan %q: the template has no plans", t.DefaultPlan)
		}
		return nil
	}
	if _, ok := t.Plans[t.DefaultPlan]; !ok {
		return fmt.Errorf("defaultPlan %q is not one of the plans (%s)", t.DefaultPlan, strings.Join(t.PlanNames(), ", "))
	}
	for _, name := range t.PlanNames() {
		if !IsDNSLabel(name, MaxPlanName) {
			return fmt.Errorf("plan %q: a name is a DNS label of at most %d characters", name, MaxPlanName)
		}
		for svc, r := range t.Plans[name] {
			if !slices.ContainsFunc(t.Services, func(s ServiceTemplate) bool { return s.Name == svc }) {
				return fmt.Errorf("plan %s: no service %q", name, svc)
			}
			if r.Memory != "" && !memQty.MatchString(r.Memory) {
				return fmt.Errorf("plan %s: service %s: memory %q: use e.g. 64Mi or 1Gi", name, svc, r.Memory)
			}
			if r.CPUs < 0 || r.Pids < 0 {
				return fmt.Errorf("plan %s: service %s: resources must not be negative", name, svc)
			}
		}
	}
	return nil
}

// SecretTemplate declares a value generated once per tenant (e.g. a database
// password) and referenced from env as ${secret.<name>}.
type SecretTemplate struct {
	Name   string `yaml:"name" json:"name"`
	Length int    `yaml:"length,omitempty" json:"length,omitempty"`
}

// VolumeTemplate declares a named persistent volume of the tenant.
type VolumeTemplate struct {
	Name string `yaml:"name" json:"name"`
}

// ServiceTemplate is one container of the environment.
type ServiceTemplate struct {
	Name        string            `yaml:"name" json:"name"`
	Image       string            `yaml:"image" json:"image"`
	Command     []string          `yaml:"command,omitempty" json:"command,omitempty"`
	Env         map[string]string `yaml:"env,omitempty" json:"env,omitempty"`
	Ports       []Port            `yaml:"ports,omitempty" json:"ports,omitempty"`
	Mounts      []string          `yaml:"volumes,omitempty" json:"volumes,omitempty"` // "<volume>:<path>"
	HealthCheck *HealthCheck      `yaml:"healthcheck,omitempty" json:"healthcheck,omitempty"`
	Resources   Resources         `yaml:"resources,omitempty" json:"resources,omitempty"`
	// Backup, when set, says how the service's data is backed up: by its
	// own consistent dump instead of an archive of its volumes.
	Backup *ServiceBackup `yaml:"backup,omitempty" json:"backup,omitempty"`
	// BaseResources are the service's own limits, kept by the first
	// WithPlan so a later plan sizes from them (nil: Resources are).
	BaseResources *Resources `yaml:"-" json:"baseResources,omitempty"`
}

// ServiceBackup is a database's own way to back up and restore its data.
// Dump runs in the running service and writes a consistent dump to stdout;
// Restore runs in a fresh instance and reads a dump on stdin, replacing
// whatever data the instance has (a retried restore runs it again).
type ServiceBackup struct {
	Dump    []string `yaml:"dump" json:"dump"`
	Restore []string `yaml:"restore" json:"restore"`
}

// Port is a container port. The single Public port of a template is the
// tenant's endpoint: it is published (Docker) or routed (OpenShift).
type Port struct {
	Name      string `yaml:"name" json:"name"`
	Container int    `yaml:"container" json:"container"`
	Public    bool   `yaml:"public,omitempty" json:"public,omitempty"`
}

// HealthCheck is either an HTTP GET against a container port or a command run
// inside the container; exactly one of the two is set.
//
// A check runs at two paces. While the service starts, the worker probes
// it itself every StartInterval, so a start or a cut-over is noticed
// within a fraction of a second. Once it runs, the runtime checks it every
// Interval for as long as it lives (Docker's HEALTHCHECK): at a fast pace
// that steady check would cost more than the idle tenants it watches (an
// exec through containerd every 200 ms per service), so it is slow.
type HealthCheck struct {
	HTTP     *HTTPCheck `yaml:"http,omitempty" json:"http,omitempty"`
	Command  []string   `yaml:"command,omitempty" json:"command,omitempty"`
	Interval Duration   `yaml:"interval,omitempty" json:"interval,omitempty"`
	// StartInterval is the pace of the worker's probes while the service
	// starts; unset, Interval (or 1 s) as before the two were told apart.
	StartInterval Duration `yaml:"startInterval,omitempty" json:"startInterval,omitempty"`
	Timeout       Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	StartPeriod   Duration `yaml:"startPeriod,omitempty" json:"startPeriod,omitempty"`
	// Retries is how many consecutive failures mark the service unhealthy.
	Retries int `yaml:"retries,omitempty" json:"retries,omitempty"`
}

// ProbeInterval is how often the worker probes the service while it
// starts.
func (h *HealthCheck) ProbeInterval() time.Duration {
	switch {
	case h == nil:
		return time.Second
	case h.StartInterval > 0:
		return h.StartInterval.D()
	case h.Interval > 0:
		return h.Interval.D()
	default:
		return time.Second
	}
}

// HTTPCheck probes http://<service>:<port><path>; 2xx and 3xx are healthy.
type HTTPCheck struct {
	Path string `yaml:"path" json:"path"`
	Port int    `yaml:"port" json:"port"`
}

// Resources limits one service. Memory takes Kubernetes-style quantities
// ("64Mi", "1Gi"), CPUs a fraction of cores.
type Resources struct {
	Memory string  `yaml:"memory,omitempty" json:"memory,omitempty"`
	CPUs   float64 `yaml:"cpus,omitempty" json:"cpus,omitempty"`
	Pids   int64   `yaml:"pids,omitempty" json:"pids,omitempty"`
}

// Duration reads "250ms", "2s" from YAML and travels as nanoseconds in JSON.
type Duration time.Duration

// UnmarshalYAML accepts Go duration strings.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = Duration(v)
	return nil
}

// HealthBudget is how long a service may take to become healthy: the time
// its own check needs to give up, so a wait fails no sooner than the
// template allows and no later than it must.
func HealthBudget(h *HealthCheck) time.Duration {
	if h == nil {
		return 30 * time.Second
	}
	interval, timeout, retries := h.ProbeInterval(), h.Timeout.D(), h.Retries
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	if retries <= 0 {
		retries = 3
	}
	return h.StartPeriod.D() + time.Duration(retries+1)*(interval+timeout) + 5*time.Second
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
	envName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	memQty   = regexp.MustCompile(`^([0-9]+)(Ki|Mi|Gi)?$`)
)

// IsDNSLabel reports whether s is an RFC 1123 label of at most maxLen
// characters.
func IsDNSLabel(s string, maxLen int) bool {
	return len(s) <= maxLen && dnsLabel.MatchString(s)
}

// IsDomainName reports whether s is a lower-case domain name of two
// labels or more (each an RFC 1123 label), at most 253 characters: what a
// custom domain may be.
func IsDomainName(s string) bool {
	if len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if !IsDNSLabel(l, 63) {
			return false
		}
	}
	return true
}

// ParseTemplate reads and validates one template. Unknown keys are errors:
// a typo in a template must not silently drop a setting.
func ParseTemplate(data []byte) (*Template, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var t Template
	if err := dec.Decode(&t); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return &t, nil
}

// Validate checks the template's internal consistency: names, references
// between services, volumes and secrets, and the single public port.
func (t *Template) Validate() error {
	if !IsDNSLabel(t.Name, 40) {
		return fmt.Errorf("template name %q: must be a DNS label of at most 40 characters", t.Name)
	}
	if t.Runtime != "" && !slices.Contains(Runtimes, t.Runtime) {
		return fmt.Errorf("template %s: runtime %q: must be one of %s", t.Name, t.Runtime, strings.Join(Runtimes, ", "))
	}
	if len(t.Services) == 0 {
		return fmt.Errorf("template %s: no services", t.Name)
	}
	if err := t.validatePlans(); err != nil {
		return fmt.Errorf("template %s: %w", t.Name, err)
	}
	if err := t.validateSettings(); err != nil {
		return fmt.Errorf("template %s: %w", t.Name, err)
	}
	if t.Backups != nil {
		if err := t.Backups.Validate("backups"); err != nil {
			return fmt.Errorf("template %s: %w", t.Name, err)
		}
		if q := t.Backups.Quiesce; q != nil && !slices.ContainsFunc(t.Services, func(s ServiceTemplate) bool { return s.Name == q.Service }) {
			return fmt.Errorf("template %s: backups.quiesce: no service %q", t.Name, q.Service)
		}
	}
	secrets := map[string]bool{}
	for _, s := range t.Secrets {
		if !IsDNSLabel(strings.ReplaceAll(s.Name, "_", "-"), 63) {
			return fmt.Errorf("template %s: secret name %q is invalid", t.Name, s.Name)
		}
		if s.Length != 0 && (s.Length < 16 || s.Length > 128) {
			return fmt.Errorf("template %s: secret %s: length must be 16..128", t.Name, s.Name)
		}
		if secrets[s.Name] {
			return fmt.Errorf("template %s: secret %s declared twice", t.Name, s.Name)
		}
		secrets[s.Name] = true
	}
	volumes := map[string]bool{}
	for _, v := range t.Volumes {
		if !IsDNSLabel(v.Name, 30) {
			return fmt.Errorf("template %s: volume name %q must be a DNS label of at most 30 characters", t.Name, v.Name)
		}
		if volumes[v.Name] {
			return fmt.Errorf("template %s: volume %s declared twice", t.Name, v.Name)
		}
		volumes[v.Name] = true
	}
	services := map[string]bool{}
	public := 0
	for _, s := range t.Services {
		where := fmt.Sprintf("template %s: service %q", t.Name, s.Name)
		if !IsDNSLabel(s.Name, 30) {
			return fmt.Errorf("%s: name must be a DNS label of at most 30 characters", where)
		}
		if services[s.Name] {
			return fmt.Errorf("%s: declared twice", where)
		}
		services[s.Name] = true
		if s.Image == "" {
			return fmt.Errorf("%s: image is required", where)
		}
		for k, v := range s.Env {
			if !envName.MatchString(k) {
				return fmt.Errorf("%s: env name %q is invalid", where, k)
			}
			if err := checkRefs(v, secrets); err != nil {
				return fmt.Errorf("%s: env %s: %w", where, k, err)
			}
		}
		for _, p := range s.Ports {
			if p.Container < 1 || p.Container > 65535 {
				return fmt.Errorf("%s: port %q: container port out of range", where, p.Name)
			}
			if p.Public {
				public++
			}
		}
		for _, m := range s.Mounts {
			vol, path, ok := strings.Cut(m, ":")
			if !ok || !strings.HasPrefix(path, "/") {
				return fmt.Errorf("%s: volume mount %q must be <volume>:<absolute path>", where, m)
			}
			if !volumes[vol] {
				return fmt.Errorf("%s: volume mount %q names an undeclared volume", where, m)
			}
		}
		if h := s.HealthCheck; h != nil {
			if (h.HTTP == nil) == (len(h.Command) == 0) {
				return fmt.Errorf("%s: healthcheck needs exactly one of http or command", where)
			}
			if h.HTTP != nil && (h.HTTP.Port < 1 || h.HTTP.Port > 65535 || !strings.HasPrefix(h.HTTP.Path, "/")) {
				return fmt.Errorf("%s: healthcheck http needs a port and a path starting with /", where)
			}
			for _, d := range []struct {
				name string
				v    Duration
			}{{"interval", h.Interval}, {"startInterval", h.StartInterval}, {"timeout", h.Timeout}, {"startPeriod", h.StartPeriod}} {
				if d.v < 0 || (d.v > 0 && d.v < Duration(10*time.Millisecond) && d.name != "startPeriod") {
					return fmt.Errorf("%s: healthcheck %s %s must be 0 (the default) or at least 10ms", where, d.name, d.v.D())
				}
			}
		}
		if b := s.Backup; b != nil {
			public := false
			for _, p := range s.Ports {
				public = public || p.Public
			}
			switch {
			case len(b.Dump) == 0 || len(b.Restore) == 0:
				return fmt.Errorf("%s: backup needs both a dump and a restore command", where)
			case public:
				return fmt.Errorf("%s: backup: the public service is stopped before dumps are taken; only a database-like service may declare one", where)
			case s.HealthCheck != nil && s.HealthCheck.HTTP != nil:
				return fmt.Errorf("%s: backup: a dumped service needs a command health check (its dump is verified in an instance without a network)", where)
			}
		}
		if r := s.Resources.Memory; r != "" && !memQty.MatchString(r) {
			return fmt.Errorf("%s: resources.memory %q: use e.g. 64Mi or 1Gi", where, r)
		}
		if s.Resources.CPUs < 0 || s.Resources.Pids < 0 {
			return fmt.Errorf("%s: resources must not be negative", where)
		}
	}
	if public != 1 {
		return fmt.Errorf("template %s: exactly one port must be public (the tenant's endpoint), found %d", t.Name, public)
	}
	return nil
}

// checkRefs makes sure every ${...} in an env value names a known variable.
func checkRefs(v string, secrets map[string]bool) error {
	var bad error
	os.Expand(v, func(ref string) string {
		if name, ok := strings.CutPrefix(ref, "secret."); ok {
			if !secrets[name] {
				bad = errors.Join(bad, fmt.Errorf("${%s}: undeclared secret", ref))
			}
			return ""
		}
		if _, ok := tenantVars[ref]; !ok {
			bad = errors.Join(bad, fmt.Errorf("${%s}: unknown variable (use tenant.name, tenant.stage or secret.<name>)", ref))
		}
		return ""
	})
	return bad
}

var tenantVars = map[string]func(name, stage string) string{
	"tenant.name":  func(name, _ string) string { return name },
	"tenant.stage": func(_, stage string) string { return stage },
}

// Templates is the set of templates an installation offers, by name.
type Templates map[string]*Template

// WithDefaultRuntime gives every template that names no runtime the
// deployment's default, so each tenant's runtime is fixed when it is
// requested (a later change of the default moves no tenant).
func (ts Templates) WithDefaultRuntime(name string) error {
	if name == "" {
		name = Docker
	}
	if !slices.Contains(Runtimes, name) {
		return fmt.Errorf("runtime %q: must be one of %s", name, strings.Join(Runtimes, ", "))
	}
	for _, t := range ts {
		if t.Runtime == "" {
			t.Runtime = name
		}
	}
	return nil
}

// LoadTemplates reads every *.yaml file of dir. The file name (without
// extension) must equal the template's name so an operator finds it by name.
func LoadTemplates(dir string) (Templates, error) {
	return loadTemplatesFS(os.DirFS(dir), dir)
}

func loadTemplatesFS(fsys fs.FS, label string) (Templates, error) {
	entries, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("templates dir %s: no *.yaml templates", label)
	}
	out := Templates{}
	for _, e := range entries {
		data, err := fs.ReadFile(fsys, e)
		if err != nil {
			return nil, fmt.Errorf("read template %s: %w", e, err)
		}
		t, err := ParseTemplate(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(label, e), err)
		}
		if want := strings.TrimSuffix(e, ".yaml"); t.Name != want {
			return nil, fmt.Errorf("%s: template name %q must match the file name %q", filepath.Join(label, e), t.Name, want)
		}
		out[t.Name] = t
	}
	return out, nil
}

// Names lists the template names, sorted, for error messages.
func (ts Templates) Names() []string {
	names := make([]string, 0, len(ts))
	for n := range ts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Runtime names: a template's runtime field, a tenant's Runtime.
const (
	Docker    = "docker"
	OpenShift = "openshift"
)

// Runtimes are the runtimes a template may name.
var Runtimes = []string{Docker, OpenShift}
