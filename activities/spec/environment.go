package spec

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Environment is a template rendered for one tenant: everything a runtime
// driver needs, with secrets already substituted. It travels through workflow
// history only encrypted (see internal/codec) because env values hold secrets.
type Environment struct {
	Tenant   string `json:"tenant"`
	Stage    string `json:"stage"`
	Template string `json:"template"`
	// Runtime is the template's runtime (empty: docker).
	Runtime  string    `json:"runtime,omitempty"`
	Volumes  []string  `json:"volumes,omitempty"`
	Services []Service `json:"services"`
	// HealthTimeout, when set, is how long WaitHealthy waits for every
	// service (a release's health-check setting); zero means the time the
	// services' own checks need to give up.
	HealthTimeout Duration `json:"healthTimeout,omitempty"`
}

// Service is one rendered container of an Environment.
type Service struct {
	Name        string            `json:"name"`
	Image       string            `json:"image"`
	Command     []string          `json:"command,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	Ports       []Port            `json:"ports,omitempty"`
	Mounts      []Mount           `json:"mounts,omitempty"`
	HealthCheck *HealthCheck      `json:"healthcheck,omitempty"`
	Resources   Resources         `json:"resources,omitempty"`
	Backup      *ServiceBackup    `json:"backup,omitempty"`
	// Generation tells instances of the service apart: provisioning makes
	// generation 0, and each release cut-over starts the next generation
	// beside the current one before retiring it.
	Generation int `json:"generation,omitempty"`
}

// Mount attaches a tenant volume (by its logical name) at Path.
type Mount struct {
	Volume string `json:"volume"`
	Path   string `json:"path"`
}

// SpecHash identifies a rendered service of a tenant (its generation
// included), so that what an earlier attempt made is reused only when it
// was made from the same spec. Drivers label their objects with it; the
// value must never change for a given spec (Docker containers made before
// carry it).
func SpecHash(tenant string, svc Service) string {
	b, _ := json.Marshal(struct {
		T string
		S Service
	}{tenant, svc})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// ServiceBudget is how long WaitHealthy may wait for one of env's
// services: HealthTimeout when set, else its own check's budget.
func (e *Environment) ServiceBudget(s Service) time.Duration {
	if e.HealthTimeout > 0 {
		return e.HealthTimeout.D()
	}
	return HealthBudget(s.HealthCheck)
}

// HealthBudget is how long WaitHealthy may wait for env: the longest of
// its services' budgets.
func (e *Environment) HealthBudget() time.Duration {
	var b time.Duration
	for _, s := range e.Services {
		b = max(b, e.ServiceBudget(s))
	}
	return b
}

// PublicPort returns the service and port that form the tenant's endpoint.
func (e *Environment) PublicPort() (Service, Port, bool) {
	for _, s := range e.Services {
		for _, p := range s.Ports {
			if p.Public {
				return s, p, true
			}
		}
	}
	return Service{}, Port{}, false
}

// Render substitutes the tenant's variables and secrets into the template.
// It is pure (no I/O, no randomness) so that workflows may call it.
func (t *Template) Render(tenant, stage string, secrets map[string]string) (Environment, error) {
	env := Environment{Tenant: tenant, Stage: stage, Template: t.Name, Runtime: t.Runtime}
	for _, v := range t.Volumes {
		env.Volumes = append(env.Volumes, v.Name)
	}
	for _, st := range t.Services {
		s := Service{
			Name:        st.Name,
			Image:       st.Image,
			Command:     append([]string(nil), st.Command...),
			Ports:       append([]Port(nil), st.Ports...),
			HealthCheck: st.HealthCheck,
			Resources:   st.Resources,
			Backup:      st.Backup,
		}
		if len(st.Env) > 0 {
			s.Env = make(map[string]string, len(st.Env))
		}
		// In key order: which missing value an error names must not
		// depend on map order (a workflow renders; its errors are history).
		for _, k := range SortedKeys(st.Env) {
			v := st.Env[k]
			var missing string
			s.Env[k] = os.Expand(v, func(ref string) string {
				if name, ok := strings.CutPrefix(ref, "secret."); ok {
					val, ok := secrets[name]
					if !ok {
						missing = name
					}
					return val
				}
				if f, ok := tenantVars[ref]; ok {
					return f(tenant, stage)
				}
				missing = ref
				return ""
			})
			if missing != "" {
				return Environment{}, fmt.Errorf("render service %s env %s: no value for %q", st.Name, k, missing)
			}
		}
		for _, m := range st.Mounts {
			vol, path, _ := strings.Cut(m, ":")
			s.Mounts = append(s.Mounts, Mount{Volume: vol, Path: path})
		}
		// The tenant's settings, as chosen (never expanded): the public
		// service's.
		if slices.ContainsFunc(st.Ports, func(p Port) bool { return p.Public }) && len(t.Settings) > 0 {
			if s.Env == nil {
				s.Env = map[string]string{}
			}
			for _, set := range t.Settings {
				s.Env[set.Name] = t.settingValue(set)
			}
		}
		env.Services = append(env.Services, s)
	}
	return env, nil
}

const secretAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// GenerateSecrets draws the template's secrets from crypto/rand. Workflows
// call it inside workflow.SideEffect so a replay reuses the recorded values.
func (t *Template) GenerateSecrets() (map[string]string, error) {
	out := make(map[string]string, len(t.Secrets))
	for _, s := range t.Secrets {
		n := s.Length
		if n == 0 {
			n = 32
		}
		b := make([]byte, n)
		for i := range b {
			idx, err := rand.Int(rand.Reader, big.NewInt(int64(len(secretAlphabet))))
			if err != nil {
				return nil, fmt.Errorf("generate secret %s: %w", s.Name, err)
			}
			b[i] = secretAlphabet[idx.Int64()]
		}
		out[s.Name] = string(b)
	}
	return out, nil
}

// MemoryBytes converts a Resources.Memory quantity to bytes (0 when unset).
func (r Resources) MemoryBytes() int64 {
	m := memQty.FindStringSubmatch(r.Memory)
	if m == nil {
		return 0
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	switch m[2] {
	case "Ki":
		n <<= 10
	case "Mi":
		n <<= 20
	case "Gi":
		n <<= 30
	}
	return n
}

// SortedKeys lists m's keys in order: what a workflow derives from a map
// must not depend on Go's map order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
