// Package config binds command-line flags whose defaults come from
// environment variables, so every setting can be given either way and a bad
// value is reported with the name the operator actually used.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"
)

// Set registers settings on a FlagSet. Environment values are parsed when
// the setting is registered; parse errors are collected and returned by
// Parse, naming the variable.
type Set struct {
	FS   *flag.FlagSet
	errs []error
}

// New makes a Set for one subcommand.
func New(name string) *Set {
	return &Set{FS: flag.NewFlagSet(name, flag.ContinueOnError)}
}

func (s *Set) usage(usage, env string) string {
	return fmt.Sprintf("%s (env %s)", usage, env)
}

// String registers a string setting.
func (s *Set) String(p *string, name, env, def, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		def = v
	}
	s.FS.StringVar(p, name, def, s.usage(usage, env))
}

// Secret registers a string setting whose value -h never prints (a plain
// String setting shows the environment's value as its default).
func (s *Set) Secret(p *string, name, env, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		*p = v
	}
	s.FS.Var((*secretValue)(p), name, s.usage(usage, env))
}

type secretValue string

func (v *secretValue) String() string {
	if v != nil && *v != "" {
		return "(set)"
	}
	return ""
}
func (v *secretValue) Set(s string) error { *v = secretValue(s); return nil }

// Bool registers a boolean setting.
func (s *Set) Bool(p *bool, name, env string, def bool, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s=%q: not a boolean", env, v))
		}
		def = b
	}
	s.FS.BoolVar(p, name, def, s.usage(usage, env))
}

// Duration registers a duration setting ("5s", "2m").
func (s *Set) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s=%q: not a duration (e.g. 5s, 2m)", env, v))
		}
		def = d
	}
	s.FS.DurationVar(p, name, def, s.usage(usage, env))
}

// Int registers an integer setting.
func (s *Set) Int(p *int, name, env string, def int, usage string) {
	if v, ok := os.LookupEnv(env); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s=%q: not an integer", env, v))
		}
		def = n
	}
	s.FS.IntVar(p, name, def, s.usage(usage, env))
}

// Parse parses args and reports environment and flag errors together.
func (s *Set) Parse(args []string) error {
	if err := s.FS.Parse(args); err != nil {
		return err
	}
	return errors.Join(s.errs...)
}

// Problems collects configuration errors, each naming its variable, so a
// Validate reports every bad setting at once.
type Problems struct{ errs []error }

// Add records a problem with the setting env.
func (p *Problems) Add(env, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", env, fmt.Sprintf(format, args...)))
}

// Append records an error that names its setting already.
func (p *Problems) Append(err error) {
	if err != nil {
		p.errs = append(p.errs, err)
	}
}

// Err joins the problems; nil when there are none.
func (p *Problems) Err() error { return errors.Join(p.errs...) }
