package cli

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/internal/audit"
	"github.com/tenantflow/tenantflow/workflows/flow"
	"github.com/tenantflow/tenantflow/workflows/imagebuild"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// Every field the CLI reads is a field of the type the API answers with:
// a field renamed in a workflow's contract fails here, not in front of a
// person. (The lists of GET /v1/tenants and /v1/releases are the API's
// own unexported types: the end-to-end test reads them from the real API.
// The wrappers the API builds as gin.H around a workflow's answer,
// suspensionAnswer, tenantChanges and auditPage, have no Go type to check:
// api/openapi.json names their fields.)
func TestViewsReadTheAPIsFields(t *testing.T) {
	for _, tc := range []struct {
		view, api any
		extra     []string // the API adds these to the workflow's type
	}{
		{tenantView{}, tenant.Tenant{}, []string{"stale", "staleReason"}},
		{decommissionView{}, tenant.Decommission{}, nil},
		{credentialsView{}, tenant.Credentials{}, nil},
		{releaseView{}, release.Release{}, nil},
		{releaseTenant{}, release.Tenant{}, nil},
		{buildView{}, imagebuild.Build{}, nil},
		{progressView{}, flow.Progress{}, nil},
		{suspensionView{}, tenant.Suspension{}, nil},
		{moveView{}, tenant.Move{}, nil},
		{planChangeView{}, tenant.PlanChange{}, nil},
		{settingsChangeView{}, tenant.SettingsChange{}, nil},
		{domainView{}, tenant.Domain{}, nil},
		{logLine{}, runtimes.LogLine{}, nil},
		{auditEntry{}, audit.Entry{}, nil},
	} {
		t.Run(reflect.TypeOf(tc.view).Name(), func(t *testing.T) {
			requireFields(t, reflect.TypeOf(tc.view), reflect.TypeOf(tc.api), reflect.TypeOf(tc.api).Name(), tc.extra)
		})
	}
}

var timeType = reflect.TypeOf(time.Time{})

// requireFields checks that each JSON field of view is one of api's, down
// through nested structs.
func requireFields(t *testing.T, view, api reflect.Type, path string, extra []string) {
	t.Helper()
	view, api = elem(view), elem(api)
	for i := range view.NumField() {
		f := view.Field(i)
		name := jsonName(f)
		if name == "" || slices.Contains(extra, name) {
			continue
		}
		af, ok := fieldByJSON(api, name)
		if !ok {
			t.Errorf("%s has no JSON field %q (the CLI's %s.%s reads it)", path, name, view.Name(), f.Name)
			continue
		}
		if v := elem(f.Type); v.Kind() == reflect.Struct && v != timeType {
			requireFields(t, f.Type, af.Type, path+"."+name, nil)
		}
	}
}

// elem is the struct behind pointers, slices and maps.
func elem(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	return t
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

// fieldByJSON finds the field JSON calls name, in embedded structs too.
func fieldByJSON(t reflect.Type, name string) (reflect.StructField, bool) {
	t = elem(t)
	if t.Kind() != reflect.Struct {
		return reflect.StructField{}, false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Tag.Get("json") == "" {
			if g, ok := fieldByJSON(f.Type, name); ok {
				return g, true
			}
			continue
		}
		if jsonName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}
