package spec

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// SettingTemplate declares an env setting of the public service a tenant
// may choose (POST /v1/tenants {"settings"}, PATCH /v1/tenants/{name}):
// a variable of the public service, with a default and what values it
// takes. The public service is the one a cut-over replaces without
// downtime, so only it has settings.
type SettingTemplate struct {
	// Name is the environment variable.
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
	// Default is the value of a tenant that did not choose one.
	Default string `yaml:"default,omitempty" json:"default,omitempty"`
	// Values, when set, are the only values allowed.
	Values []string `yaml:"values,omitempty" json:"values,omitempty"`
	// Pattern, when set, is a regular expression the whole value must
	// match (RE2 syntax, anchored).
	Pattern string `yaml:"pattern,omitempty" json:"pattern,omitempty"`
	// MaxLength bounds a value in bytes (0: DefaultSettingLength).
	MaxLength int `yaml:"maxLength,omitempty" json:"maxLength,omitempty"`
}

// Bounds of settings.
const (
	DefaultSettingLength = 256
	MaxSettingLength     = 4096
	MaxSettings          = 50
)

// SettingNames are the template's settings, in the template's order.
func (t *Template) SettingNames() []string {
	names := make([]string, len(t.Settings))
	for i, s := range t.Settings {
		names[i] = s.Name
	}
	return names
}

// setting finds the template's setting name.
func (t *Template) setting(name string) (SettingTemplate, bool) {
	i := slices.IndexFunc(t.Settings, func(s SettingTemplate) bool { return s.Name == name })
	if i < 0 {
		return SettingTemplate{}, false
	}
	return t.Settings[i], true
}

// CheckSetting says what is wrong with value for the template's setting
// name ("" when it may be set).
func (t *Template) CheckSetting(name, value string) string {
	s, ok := t.setting(name)
	if !ok {
		if len(t.Settings) == 0 {
			return fmt.Sprintf("template %s has no settings", t.Name)
		}
		return fmt.Sprintf("template %s has no setting %q (settings: %s)", t.Name, name, strings.Join(t.SettingNames(), ", "))
	}
	return s.check(value)
}

// check says what is wrong with value for s ("" when nothing).
func (s SettingTemplate) check(value string) string {
	limit := cmpOr(s.MaxLength, DefaultSettingLength)
	switch {
	case len(value) > limit:
		return fmt.Sprintf("%s must be at most %d bytes", s.Name, limit)
	case !utf8.ValidString(value) || strings.ContainsFunc(value, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return fmt.Sprintf("%s must be printable text on one line", s.Name)
	case len(s.Values) > 0 && !slices.Contains(s.Values, value):
		return fmt.Sprintf("%s must be one of %s", s.Name, strings.Join(s.Values, ", "))
	case s.Pattern != "" && !regexp.MustCompile(`^(?:`+s.Pattern+`)$`).MatchString(value):
		return fmt.Sprintf("%s must match %s", s.Name, s.Pattern)
	}
	return ""
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// CheckSettings says which of the settings to set (a nil value: back to
// the default) the template does not allow, and why ("" when it allows
// them all), in name order: the first one named does not depend on map
// order.
func (t *Template) CheckSettings(set map[string]*string) (name, problem string) {
	for _, name := range SortedKeys(set) {
		v := set[name]
		if v == nil {
			if _, ok := t.setting(name); ok {
				continue
			}
			return name, t.CheckSetting(name, "")
		}
		if problem := t.CheckSetting(name, *v); problem != "" {
			return name, problem
		}
	}
	return "", ""
}

// WithSettings is the template with the tenant's chosen settings: values
// set (a nil value goes back to the default). The template is not
// changed; an error names what is wrong.
func (t *Template) WithSettings(set map[string]*string) (*Template, error) {
	if _, problem := t.CheckSettings(set); problem != "" {
		return nil, errors.New(problem)
	}
	out := *t
	out.Values = nil
	for _, s := range t.Settings {
		v, own := t.Values[s.Name]
		if nv, ok := set[s.Name]; ok {
			v, own = "", nv != nil
			if own {
				v = *nv
			}
		}
		if !own {
			continue
		}
		if out.Values == nil {
			out.Values = map[string]string{}
		}
		out.Values[s.Name] = v
	}
	return &out, nil
}

// SettingValues are every setting's value for the tenant: its own or the
// default.
func (t *Template) SettingValues() map[string]string {
	if len(t.Settings) == 0 {
		return nil
	}
	out := make(map[string]string, len(t.Settings))
	for _, s := range t.Settings {
		out[s.Name] = t.settingValue(s)
	}
	return out
}

// SameSettings tells whether the app sees the same settings in t and o
// (two copies of one tenant's template).
func (t *Template) SameSettings(o *Template) bool {
	if len(t.Settings) != len(o.Settings) {
		return false
	}
	for i, s := range t.Settings {
		if o.Settings[i].Name != s.Name || t.settingValue(s) != o.settingValue(s) {
			return false
		}
	}
	return true
}

// settingValue is the tenant's value of s, or its default.
func (t *Template) settingValue(s SettingTemplate) string {
	if v, ok := t.Values[s.Name]; ok {
		return v
	}
	return s.Default
}

// validateSettings checks the settings against the public service.
func (t *Template) validateSettings() error {
	if len(t.Settings) > MaxSettings {
		return fmt.Errorf("at most %d settings", MaxSettings)
	}
	var public *ServiceTemplate
	for i, s := range t.Services {
		if slices.ContainsFunc(s.Ports, func(p Port) bool { return p.Public }) {
			public = &t.Services[i]
		}
	}
	seen := map[string]bool{}
	for _, s := range t.Settings {
		where := fmt.Sprintf("setting %q", s.Name)
		switch {
		case !envName.MatchString(s.Name):
			return fmt.Errorf("%s: the name is an environment variable's (letters, digits, _)", where)
		case seen[s.Name]:
			return fmt.Errorf("%s: declared twice", where)
		case s.MaxLength < 0 || s.MaxLength > MaxSettingLength:
			return fmt.Errorf("%s: maxLength must be from 1 to %d (0: %d)", where, MaxSettingLength, DefaultSettingLength)
		case len(s.Values) > 0 && s.Pattern != "":
			return fmt.Errorf("%s: values or pattern, not both", where)
		case public != nil && hasKey(public.Env, s.Name):
			return fmt.Errorf("%s: service %s sets it in its env too: a setting's default is its default", where, public.Name)
		}
		seen[s.Name] = true
		if s.Pattern != "" {
			if _, err := regexp.Compile(`^(?:` + s.Pattern + `)$`); err != nil {
				return fmt.Errorf("%s: pattern: %w", where, err)
			}
		}
		for _, v := range s.Values {
			if problem := (SettingTemplate{Name: s.Name, MaxLength: s.MaxLength}).check(v); problem != "" {
				return fmt.Errorf("%s: value %q: %s", where, v, problem)
			}
		}
		if problem := s.check(s.Default); problem != "" {
			return fmt.Errorf("%s: default %q: %s", where, s.Default, problem)
		}
	}
	for _, name := range SortedKeys(t.Values) {
		if !seen[name] {
			return fmt.Errorf("value of %q: no such setting", name)
		}
	}
	return nil
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}
