package api

import (
	"bytes"
	"encoding"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/activities/runtimes"
	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/internal/audit"
	"github.com/tenantflow/tenantflow/workflows/hosts"
	"github.com/tenantflow/tenantflow/workflows/imagebuild"
	"github.com/tenantflow/tenantflow/workflows/release"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// The schemas of what the API answers (components/schemas with an
// "x-go-type") are generated from the Go types the handlers serialise, by
// reflection, as encoding/json writes them: TestOpenAPISchemas fails when
// one differs from its Go type, and
//
//	go test ./api/ -run TestOpenAPISchemas -update
//
// rewrites them in place, the rest of the file as it was written. A
// field is required when encoding/json always writes it, and may be null
// when it writes a nil pointer, slice or map; the answers' objects stay
// open to new fields (additionalProperties is not set), which
// TestOpenAPISchemas reports. Paths, parameters, request bodies, the
// error body and the answers that wrap generated parts are written by
// hand.

var updateOpenAPI = flag.Bool("update", false, "rewrite the generated schemas of api/openapi.json from the Go types")

const openAPIFile = "openapi.json"

// openAPIAnswers are the Go types the API answers with: each named struct
// type they reach through their JSON fields gets a component.
var openAPIAnswers = []reflect.Type{
	reflect.TypeFor[createTenantResponse](),
	reflect.TypeFor[listTenantsResponse](),
	reflect.TypeFor[tenant.Tenant](),
	reflect.TypeFor[staleTenant](),
	reflect.TypeFor[lastSeenTenant](),
	reflect.TypeFor[tenant.Credentials](),
	reflect.TypeFor[tenant.PlanChange](),
	reflect.TypeFor[tenant.SettingsChange](),
	reflect.TypeFor[decommissionResponse](),
	reflect.TypeFor[tenant.BackupRestore](),
	reflect.TypeFor[backupAccepted](),
	reflect.TypeFor[backupList](),
	reflect.TypeFor[tenant.Domain](),
	reflect.TypeFor[tenant.Move](),
	reflect.TypeFor[tenant.Suspension](),
	reflect.TypeFor[runtimes.LogLine](),
	reflect.TypeFor[releaseCreated](),
	reflect.TypeFor[listReleasesResponse](),
	reflect.TypeFor[releaseView](),
	reflect.TypeFor[release.TenantPage](),
	reflect.TypeFor[hostView](),
	reflect.TypeFor[drainResponse](),
	reflect.TypeFor[hosts.Drain](),
	reflect.TypeFor[reconcileView](),
	reflect.TypeFor[audit.Entry](),
	reflect.TypeFor[buildResponse](),
	reflect.TypeFor[imagebuild.Build](),
}

// selfMarshalers describe the types that write their own JSON: the
// generator knows nothing of a MarshalJSON, so each such type reached
// must be listed here (it fails naming one that is not). spec.Backups
// writes its durations as Go duration strings ("24h0m0s").
var selfMarshalers = map[reflect.Type]map[reflect.Type]map[string]any{
	reflect.TypeFor[spec.Backups](): {reflect.TypeFor[spec.Duration](): {"type": "string"}},
}

var (
	timeType          = reflect.TypeFor[time.Time]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
)

// schemaGen turns Go types into JSON Schemas (OpenAPI 3.1, JSON Schema
// 2020-12) of their encoding/json form.
type schemaGen struct {
	// names are the components of the named struct types; nil: every
	// struct inline (the request field check).
	names map[reflect.Type]string
	err   error
}

// newSchemaGen names a component for every named struct type roots reach.
func newSchemaGen(roots []reflect.Type) (*schemaGen, error) {
	seen := map[reflect.Type]bool{}
	for _, t := range roots {
		if err := collectStructs(t, seen); err != nil {
			return nil, err
		}
	}
	byName := map[string][]reflect.Type{}
	for t := range seen {
		byName[t.Name()] = append(byName[t.Name()], t)
	}
	g := &schemaGen{names: map[reflect.Type]string{}}
	used := map[string]reflect.Type{}
	for name, types := range byName {
		for _, t := range types {
			n := exportedName(name)
			pkg := t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:]
			// Two types of one name: the one its package is named after
			// keeps it (tenant.Tenant), the others take their package's
			// (release.Tenant: ReleaseTenant).
			if len(types) > 1 && !strings.EqualFold(pkg, name) {
				n = exportedName(pkg) + n
			}
			if other, dup := used[n]; dup {
				return nil, fmt.Errorf("schema name %s is both %s and %s", n, other, t)
			}
			used[n] = t
			g.names[t] = n
		}
	}
	return g, nil
}

func exportedName(s string) string {
	r := []rune(s)
	r[0] = unicode.ToUpper(r[0])
	return string(r)
}

// collectStructs adds the named struct types t reaches to seen.
func collectStructs(t reflect.Type, seen map[reflect.Type]bool) error {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == timeType || seen[t] {
		return nil
	}
	if err := checkMarshaler(t); err != nil {
		return err
	}
	if t.Name() != "" {
		if strings.ContainsAny(t.Name(), "[]") {
			return fmt.Errorf("%s: generic types have no schema name", t)
		}
		seen[t] = true
	}
	for _, f := range jsonFields(t) {
		if err := collectStructs(f.typ, seen); err != nil {
			return err
		}
	}
	return nil
}

// checkMarshaler fails for a type that writes its own JSON unless
// selfMarshalers describes it.
func checkMarshaler(t reflect.Type) error {
	if t == timeType || selfMarshalers[t] != nil {
		return nil
	}
	for _, m := range []reflect.Type{jsonMarshalerType, textMarshalerType} {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return fmt.Errorf("%s writes its own JSON (%s): describe it in selfMarshalers", t, m)
		}
	}
	return nil
}

// jsonField is a field as encoding/json writes it.
type jsonField struct {
	name string
	typ  reflect.Type
	// omit: the field may be left out (omitempty on a kind it applies
	// to, omitzero, or promoted from a nil embedded pointer).
	omit bool
	// omitEmpty: encoding/json leaves it out when empty (so it is never
	// null).
	omitEmpty bool
	depth     int
	tagged    bool
}

// jsonFields lists t's fields as encoding/json does: embedded structs'
// fields promoted, the shallowest (then the tagged) of one name winning,
// and none of an ambiguous name.
func jsonFields(t reflect.Type) []jsonField {
	var all []jsonField
	var walk func(t reflect.Type, depth int, viaPtr bool, visited map[reflect.Type]bool)
	walk = func(t reflect.Type, depth int, viaPtr bool, visited map[reflect.Type]bool) {
		if visited[t] {
			return
		}
		visited[t] = true
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, opts, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous && name == "" {
				ptr := ft.Kind() == reflect.Pointer
				if ptr {
					ft = ft.Elem()
				}
				if ft.Kind() == reflect.Struct {
					walk(ft, depth+1, viaPtr || ptr, visited)
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			jf := jsonField{name: name, typ: f.Type, depth: depth, tagged: name != ""}
			if name == "" {
				jf.name = f.Name
			}
			optList := strings.Split(opts, ",")
			omitEmpty := slices.Contains(optList, "omitempty") && ft.Kind() != reflect.Struct
			jf.omitEmpty = omitEmpty
			jf.omit = omitEmpty || slices.Contains(optList, "omitzero") || viaPtr
			all = append(all, jf)
		}
	}
	walk(t, 0, false, map[reflect.Type]bool{})
	byName := map[string][]jsonField{}
	var order []string
	for _, f := range all {
		if _, ok := byName[f.name]; !ok {
			order = append(order, f.name)
		}
		byName[f.name] = append(byName[f.name], f)
	}
	var out []jsonField
	for _, name := range order {
		fs := byName[name]
		minDepth := slices.MinFunc(fs, func(a, b jsonField) int { return a.depth - b.depth }).depth
		var top, tagged []jsonField
		for _, f := range fs {
			if f.depth == minDepth {
				top = append(top, f)
				if f.tagged {
					tagged = append(tagged, f)
				}
			}
		}
		switch {
		case len(top) == 1:
			out = append(out, top[0])
		case len(tagged) == 1:
			out = append(out, tagged[0])
		}
	}
	return out
}

// components are the generated schemas, by name.
func (g *schemaGen) components() map[string]any {
	out := map[string]any{}
	for t, name := range g.names {
		s := g.objectSchema(t, selfMarshalers[t])
		s["x-go-type"] = t.String()
		out[name] = s
	}
	return out
}

// schemaOf is t's schema, a $ref for a named struct type with a component.
func (g *schemaGen) schemaOf(t reflect.Type, overrides map[reflect.Type]map[string]any) map[string]any {
	if s, ok := overrides[t]; ok {
		return maps.Clone(s)
	}
	if t == timeType {
		return map[string]any{"type": "string", "format": "date-time"}
	}
	if t.Kind() == reflect.Pointer {
		return g.schemaOf(t.Elem(), overrides)
	}
	if err := checkMarshaler(t); err != nil && g.err == nil {
		g.err = err
	}
	switch t.Kind() {
	case reflect.Struct:
		if name, ok := g.names[t]; ok {
			return map[string]any{"$ref": "#/components/schemas/" + name}
		}
		return g.objectSchema(t, selfMarshalers[t])
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		return map[string]any{"type": "array", "items": g.elemSchema(t.Elem(), overrides)}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.elemSchema(t.Elem(), overrides)}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Interface:
		return map[string]any{}
	}
	if g.err == nil {
		g.err = fmt.Errorf("%s: no JSON schema for kind %s", t, t.Kind())
	}
	return map[string]any{}
}

// elemSchema is the schema of an element or map value, null allowed
// where encoding/json writes a nil one.
func (g *schemaGen) elemSchema(t reflect.Type, overrides map[reflect.Type]map[string]any) map[string]any {
	s := g.schemaOf(t, overrides)
	if nilable(t) {
		return orNull(s)
	}
	return s
}

// objectSchema is a struct's schema: its JSON fields, those always
// written required.
func (g *schemaGen) objectSchema(t reflect.Type, overrides map[reflect.Type]map[string]any) map[string]any {
	props := map[string]any{}
	var required []string
	for _, f := range jsonFields(t) {
		s := g.schemaOf(f.typ, overrides)
		if !f.omitEmpty && nilable(f.typ) {
			s = orNull(s)
		}
		props[f.name] = s
		if !f.omit {
			required = append(required, f.name)
		}
	}
	out := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		slices.Sort(required)
		out["required"] = required
	}
	return out
}

// nilable says whether encoding/json may write a value of t as null.
func nilable(t reflect.Type) bool {
	if _, custom := selfMarshalers[t]; custom {
		return false
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map:
		return true
	}
	return false
}

// orNull lets a schema also take null.
func orNull(s map[string]any) map[string]any {
	switch typ := s["type"].(type) {
	case string:
		s = maps.Clone(s)
		s["type"] = []any{typ, "null"}
		return s
	case nil:
		if len(s) == 0 {
			return s // any value, null included
		}
	}
	return map[string]any{"anyOf": []any{s, map[string]any{"type": "null"}}}
}

// generatedSchemas are the components the Go types make.
func generatedSchemas() (map[string]any, error) {
	g, err := newSchemaGen(openAPIAnswers)
	if err != nil {
		return nil, err
	}
	out := g.components()
	if g.err != nil {
		return nil, g.err
	}
	return normalizeJSON(out)
}

// normalizeJSON is v as encoding/json reads it back (maps, []any,
// json.Number), for comparisons.
func normalizeJSON[T any](v T) (T, error) {
	var out T
	data, err := json.Marshal(v)
	if err != nil {
		return out, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	err = dec.Decode(&out)
	return out, err
}

// readOpenAPI reads the document as plain JSON values.
func readOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(openAPIFile)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc map[string]any
	require.NoError(t, dec.Decode(&doc))
	return doc
}

// TestOpenAPISchemas checks that the generated schemas of openapi.json
// are those of the Go types today; -update rewrites them.
func TestOpenAPISchemas(t *testing.T) {
	want, err := generatedSchemas()
	require.NoError(t, err)
	if *updateOpenAPI {
		updateSchemas(t, want)
		return
	}
	doc := readOpenAPI(t)
	components, _ := doc["components"].(map[string]any)
	require.NotNil(t, components, "openapi.json has no components")
	have, _ := components["schemas"].(map[string]any)
	require.NotNil(t, have, "openapi.json has no components.schemas")

	var problems []string
	for _, name := range slices.Sorted(maps.Keys(have)) {
		s, _ := have[name].(map[string]any)
		if _, generated := s["x-go-type"]; generated && want[name] == nil {
			problems = append(problems, fmt.Sprintf("schema %s (x-go-type %v) is no longer made by any Go type the API answers with", name, s["x-go-type"]))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if have[name] == nil {
			problems = append(problems, fmt.Sprintf("schema %s of Go type %v is missing", name, want[name].(map[string]any)["x-go-type"]))
			continue
		}
		problems = append(problems, diffJSON("components.schemas."+name, have[name], want[name])...)
	}
	if len(problems) > 0 {
		t.Fatalf("the generated schemas of %s differ from the Go types (document: what the file says; Go: what the types serialise); "+
			"run `go test ./api/ -run TestOpenAPISchemas -update` and review the diff:\n  %s", openAPIFile, strings.Join(problems, "\n  "))
	}
}

// updateSchemas rewrites the generated schemas of the document: each in
// its place, new ones after the others, those no Go type makes any more
// left out. The rest of the document keeps its order; the file is
// written 2-space indented, without HTML escaping.
func updateSchemas(t *testing.T, want map[string]any) {
	data, err := os.ReadFile(openAPIFile)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeOrdered(dec)
	require.NoError(t, err)
	doc, _ := v.(*orderedObject)
	require.NotNil(t, doc, "openapi.json is not an object")
	components, _ := doc.values["components"].(*orderedObject)
	require.NotNil(t, components, "openapi.json has no components")
	schemas, _ := components.values["schemas"].(*orderedObject)
	require.NotNil(t, schemas, "openapi.json has no components.schemas")

	kept := &orderedObject{values: map[string]any{}}
	for _, name := range schemas.keys {
		s := schemas.values[name]
		if o, ok := s.(*orderedObject); ok && slices.Contains(o.keys, "x-go-type") {
			if want[name] == nil {
				continue // no Go type makes it any more
			}
			s = want[name]
		}
		kept.set(name, s)
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if _, ok := kept.values[name]; !ok {
			kept.set(name, want[name])
		}
	}
	components.values["schemas"] = kept

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	require.NoError(t, enc.Encode(doc))
	require.NoError(t, os.WriteFile(openAPIFile, buf.Bytes(), 0o644))
	t.Logf("rewrote the %d generated schemas of %s", len(want), openAPIFile)
}

// orderedObject is a JSON object that keeps its keys' order, so -update
// leaves the hand-written document as it was written.
type orderedObject struct {
	keys   []string
	values map[string]any
}

func (o *orderedObject) set(k string, v any) {
	if _, ok := o.values[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.values[k] = v
}

// MarshalJSON writes the keys in their order.
func (o *orderedObject) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			buf.WriteByte(',')
		}
		key, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		val, err := marshalNoEscape(o.values[k])
		if err != nil {
			return nil, err
		}
		buf.Write(key)
		buf.WriteByte(':')
		buf.Write(val)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// marshalNoEscape is json.Marshal without HTML escaping (the document's
// descriptions have "<name>" and "->").
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// decodeOrdered reads one JSON value, objects as orderedObject.
func decodeOrdered(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		o := &orderedObject{values: map[string]any{}}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := decodeOrdered(dec)
			if err != nil {
				return nil, err
			}
			o.set(k.(string), v)
		}
		_, err := dec.Token() // }
		return o, err
	case json.Delim('['):
		list := []any{}
		for dec.More() {
			v, err := decodeOrdered(dec)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		_, err := dec.Token() // ]
		return list, err
	}
	return tok, nil
}

// diffJSON lists where two JSON values differ, by path.
func diffJSON(path string, doc, gen any) []string {
	dm, dok := doc.(map[string]any)
	gm, gok := gen.(map[string]any)
	if dok && gok {
		var out []string
		for _, k := range slices.Sorted(maps.Keys(dm)) {
			if _, ok := gm[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: in the document, not made by the Go type", path, k))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(gm)) {
			if _, ok := dm[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: made by the Go type, missing from the document", path, k))
				continue
			}
			out = append(out, diffJSON(path+"."+k, dm[k], gm[k])...)
		}
		return out
	}
	if reflect.DeepEqual(doc, gen) {
		return nil
	}
	d, _ := json.Marshal(doc)
	g, _ := json.Marshal(gen)
	return []string{fmt.Sprintf("%s: document %s, Go %s", path, d, g)}
}

// TestOpenAPISchemasTakeWhatGoWrites checks the generator itself: every
// generated schema accepts its Go type's JSON, zero and with every field
// set.
func TestOpenAPISchemasTakeWhatGoWrites(t *testing.T) {
	doc := loadOpenAPI(t)
	g, err := newSchemaGen(openAPIAnswers)
	require.NoError(t, err)
	for typ, name := range g.names {
		ref := doc.Components.Schemas[name]
		require.NotNil(t, ref, "schema %s of %s", name, typ)
		for what, v := range map[string]reflect.Value{"zero": reflect.New(typ).Elem(), "full": fullValue(typ)} {
			data, err := json.Marshal(v.Interface())
			require.NoError(t, err)
			var value any
			require.NoError(t, json.Unmarshal(data, &value))
			if err := ref.Value.VisitJSON(value, openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()); err != nil {
				t.Errorf("schema %s refuses a %s %s: %v\n%s", name, what, typ, err, data)
			}
		}
	}
}

// fullValue is a value of t with every field, element and pointer set,
// but for recursive types' inner levels.
func fullValue(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	fill(v, map[reflect.Type]bool{})
	return v
}

func fill(v reflect.Value, onStack map[reflect.Type]bool) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)))
			return
		}
		if onStack[v.Type()] {
			return
		}
		onStack[v.Type()] = true
		defer delete(onStack, v.Type())
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				fill(f, onStack)
			}
		}
	case reflect.Pointer:
		if onStack[v.Type().Elem()] {
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), onStack)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), onStack)
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i), onStack)
		}
	case reflect.Map:
		k := reflect.New(v.Type().Key()).Elem()
		fill(k, onStack)
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, onStack)
		v.Set(reflect.MakeMap(v.Type()))
		v.SetMapIndex(k, e)
	}
}
