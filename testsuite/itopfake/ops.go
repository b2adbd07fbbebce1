package itopfake

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// objectResult is iTop's ObjectResult: one entry of "objects".
type objectResult struct {
	Code    int               `json:"code"`
	Message string            `json:"message"`
	Class   string            `json:"class"`
	Key     string            `json:"key,omitempty"` // since version 1.1
	Fields  map[string]string `json:"fields"`
}

type resultObjects map[string]*objectResult

func (s *Server) exec(version, op string, p map[string]any) (map[string]any, *restErr) {
	switch op {
	case "list_operations":
		return s.listOperations(version), nil
	case "core/get":
		return s.get(version, p)
	case "core/create":
		return s.create(version, p)
	case "core/update":
		return s.update(version, p)
	case "core/delete":
		return s.delete(version, p)
	case "core/check_credentials":
		user, e := mandatory(p, "user")
		if e != nil {
			return nil, e
		}
		pwd, e := mandatory(p, "password")
		if e != nil {
			return nil, e
		}
		return map[string]any{"code": codeOK, "message": nil, "authorized": user == s.user && pwd == s.password}, nil
	case "core/apply_stimulus", "core/get_related":
		return nil, internal("itopfake does not implement %s", op)
	}
	return nil, &restErr{codeUnknownOperation, fmt.Sprintf("Unknown verb '%s' in version '%s'", op, version)}
}

var operations = [][2]string{
	{"core/create", "Create an object"},
	{"core/update", "Update an object"},
	{"core/apply_stimulus", "Apply a stimulus to change the state of an object"},
	{"core/get", "Search for objects"},
	{"core/delete", "Delete objects"},
	{"core/get_related", "Get related objects through the specified relation"},
	{"core/check_credentials", "Check user credentials"},
}

func (s *Server) listOperations(version string) map[string]any {
	var ops []map[string]string
	for _, o := range operations {
		ops = append(ops, map[string]string{"verb": o[0], "description": o[1], "extension": "CoreServices"})
	}
	return map[string]any{"code": codeOK, "message": fmt.Sprintf("Operations: %d", len(ops)), "version": version, "operations": ops}
}

// mandatory is RestUtils::GetMandatoryParam (isset: present and not null).
func mandatory(p map[string]any, name string) (any, *restErr) {
	v, ok := p[name]
	if !ok || v == nil {
		return nil, internal("Missing parameter '%s'", name)
	}
	return v, nil
}

// class is RestUtils::GetClass.
func (s *Server) class(p map[string]any) (*classDef, *restErr) {
	v, e := mandatory(p, "class")
	if e != nil {
		return nil, e
	}
	name, _ := scalar(v)
	c := s.classes[name]
	if c == nil {
		return nil, internal("class: '%s' is not a valid class'", name)
	}
	return c, nil
}

// fieldList is RestUtils::GetFieldList: "*" (the default) and "*+" list
// every attribute (not "id"), otherwise a comma-separated list of codes.
func fieldList(c *classDef, p map[string]any) ([]string, *restErr) {
	spec := "*"
	if v, ok := p["output_fields"]; ok && v != nil {
		spec, _ = scalar(v)
	}
	var out []string
	if spec == "*" || spec == "*+" {
		for _, a := range c.attrs {
			out = append(out, a.code)
		}
		return out, nil
	}
	for _, code := range strings.Split(spec, ",") {
		code = strings.TrimSpace(code)
		if code != "id" && c.attr(code) == nil {
			return nil, internal("output_fields: invalid attribute code '%s' for class '%s'", code, c.name)
		}
		out = append(out, code)
	}
	return out, nil
}

func (s *Server) report(version string, objs resultObjects, code int, msg string, class string, id int, fields []string) {
	res := &objectResult{Code: code, Message: msg, Class: class, Fields: map[string]string{}}
	if version != "1.0" {
		res.Key = strconv.Itoa(id)
	}
	for _, f := range fields {
		res.Fields[f] = s.value(class, id, f)
	}
	objs[class+"::"+strconv.Itoa(id)] = res
}

// withObjects is RestResultWithObjects: "objects" is null when empty.
func withObjects(objs resultObjects, code int, msg any) map[string]any {
	var o any
	if len(objs) > 0 {
		o = objs
	}
	return map[string]any{"objects": o, "code": code, "message": msg}
}

// value is an attribute as the REST API reports it (GetForJSON): strings,
// ids as strings, external keys "0" when empty.
func (s *Server) value(class string, id int, code string) string {
	if code == "id" {
		return strconv.Itoa(id)
	}
	c := s.classes[class]
	obj := s.objects[class][id]
	a := c.attr(code)
	switch a.typ {
	case attFriendlyName:
		return obj["name"]
	case attExtField, attExtKeyFriendlyName:
		key := c.attr(a.extKey)
		tid, _ := strconv.Atoi(obj[a.extKey])
		target := s.objects[key.target][tid]
		if target == nil {
			return ""
		}
		if a.typ == attExtField {
			return s.value(key.target, tid, a.targetAtt)
		}
		return target["name"]
	}
	return obj[code]
}

// makeValue is RestUtils::MakeValue: the value to store for one attribute,
// resolving external keys given as id, OQL or criteria.
func (s *Server) makeValue(c *classDef, code string, v any) (string, *restErr) {
	a := c.attr(code)
	if a == nil {
		return "", internal("%s: Unknown attribute", code)
	}
	if a.typ == attExtKey {
		id, e := s.findObject(a.target, v, true)
		if e != nil {
			return "", internal("%s: %s", code, e.msg)
		}
		return strconv.Itoa(id), nil
	}
	str, ok := scalar(v)
	if !ok {
		return "", internal("%s: Wrong format for value", code)
	}
	return str, nil
}

// findObject is RestUtils::FindObjectFromKey: exactly one object, or 0 when
// allowNull and the key is 0 or null.
func (s *Server) findObject(class string, key any, allowNull bool) (int, *restErr) {
	if crit, ok := key.(map[string]any); ok {
		ids, report, e := s.searchCriteria(s.classes[class], crit)
		if e != nil {
			return 0, e
		}
		switch len(ids) {
		case 0:
			return 0, internal("No item found with criteria: %s", report)
		case 1:
			return ids[0], nil
		}
		return 0, internal("Several items found (%d) with criteria: %s", len(ids), report)
	}
	if key == nil && allowNull {
		return 0, nil
	}
	if n, ok := isNumeric(key); ok {
		if n == 0 && allowNull {
			return 0, nil
		}
		if s.objects[class][n] == nil {
			return 0, internal("Invalid object %s::%d", class, n)
		}
		return n, nil
	}
	if q, ok := key.(string); ok {
		_, ids, e := s.searchOQL(q)
		if e != nil {
			return 0, e
		}
		switch len(ids) {
		case 0:
			return 0, internal("No item found for query: %s", q)
		case 1:
			return ids[0], nil
		}
		return 0, internal("Several items found (%d) for query: %s", len(ids), q)
	}
	return 0, internal("Wrong format for key")
}

// objectSet is RestUtils::GetObjectSetFromKey: any number of objects, and
// the class actually searched (an OQL query names its own).
func (s *Server) objectSet(c *classDef, key any) (string, []int, *restErr) {
	if crit, ok := key.(map[string]any); ok {
		ids, _, e := s.searchCriteria(c, crit)
		return c.name, ids, e
	}
	if n, ok := isNumeric(key); ok {
		if s.objects[c.name][n] != nil {
			return c.name, []int{n}, nil
		}
		return c.name, nil, nil
	}
	if q, ok := key.(string); ok {
		return s.searchOQL(q)
	}
	return "", nil, internal("Wrong format for key")
}

// matches compares like MySQL with iTop's case-insensitive collation.
func (s *Server) matches(class string, id int, field, want string) bool {
	got := s.value(class, id, field)
	if a := s.classes[class].attr(field); field == "id" || (a != nil && a.typ == attExtKey) {
		g, _ := strconv.Atoi(got)
		w, err := strconv.Atoi(strings.TrimSpace(want))
		return err == nil && g == w
	}
	return strings.EqualFold(got, want)
}

func (s *Server) searchCriteria(c *classDef, crit map[string]any) ([]int, string, *restErr) {
	type cond struct{ field, value string }
	var conds []cond
	var report []string
	keys := make([]string, 0, len(crit))
	for k := range crit {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if k == "finalclass" {
			continue
		}
		v, e := s.makeValue(c, k, crit[k])
		if e != nil {
			return nil, "", e
		}
		raw, _ := scalar(crit[k])
		if _, isObj := crit[k].(map[string]any); isObj {
			b, _ := json.Marshal(crit[k])
			raw = string(b)
		}
		conds = append(conds, cond{k, v})
		report = append(report, fmt.Sprintf("%s: %s (%s)", k, raw, v))
	}
	var ids []int
	for _, id := range s.ids(c.name) {
		ok := true
		for _, cd := range conds {
			if !s.matches(c.name, id, cd.field, cd.value) {
				ok = false
				break
			}
		}
		if ok {
			ids = append(ids, id)
		}
	}
	return ids, strings.Join(report, ", "), nil
}

func (s *Server) searchOQL(q string) (string, []int, *restErr) {
	parsed, err := parseOQL(q)
	if err != nil {
		return "", nil, internal("itopfake only supports OQL of the form SELECT <Class> WHERE <field> = <literal> [AND <field> = <literal>]: %v: %s", err, q)
	}
	c := s.classes[parsed.class]
	if c == nil {
		return "", nil, internal("Query failed to execute: query = %s, exception_class = OqlNormalizeException, exception_message = Unknown class '%s'", q, parsed.class)
	}
	for _, cd := range parsed.conds {
		if cd.field != "id" && c.attr(cd.field) == nil {
			return "", nil, internal("Query failed to execute: query = %s, exception_class = OqlNormalizeException, exception_message = Unknown attribute '%s' of class '%s'", q, cd.field, c.name)
		}
	}
	var ids []int
	for _, id := range s.ids(c.name) {
		ok := true
		for _, cd := range parsed.conds {
			if !s.matches(c.name, id, cd.field, cd.value) {
				ok = false
				break
			}
		}
		if ok {
			ids = append(ids, id)
		}
	}
	return c.name, ids, nil
}

func (s *Server) get(version string, p map[string]any) (map[string]any, *restErr) {
	c, e := s.class(p)
	if e != nil {
		return nil, e
	}
	key, e := mandatory(p, "key")
	if e != nil {
		return nil, e
	}
	fields, e := fieldList(c, p)
	if e != nil {
		return nil, e
	}
	target, ids, e := s.objectSet(c, key)
	if e != nil {
		return nil, e
	}
	if limit, _ := isNumeric(p["limit"]); limit > 0 {
		page, _ := isNumeric(p["page"])
		off := min(limit*max(0, page-1), len(ids))
		ids = ids[off:min(off+limit, len(ids))]
	}
	if target != c.name {
		fields = []string{"id", "friendlyname"} // no field spec for that class
	}
	objs := resultObjects{}
	for _, id := range ids {
		s.report(version, objs, codeOK, "", target, id, fields)
	}
	return withObjects(objs, codeOK, fmt.Sprintf("Found: %d", len(ids))), nil
}

// insert is MakeObjectFromFields + DBInsert.
func (s *Server) insert(class string, fields map[string]any) (int, *restErr) {
	c := s.classes[class]
	if c == nil {
		return 0, internal("class: '%s' is not a valid class'", class)
	}
	obj := map[string]string{}
	for _, a := range c.attrs {
		switch {
		case a.typ == attExtKey:
			obj[a.code] = "0"
		case a.writable():
			obj[a.code] = a.def
		}
	}
	if e := s.setFields(c, obj, fields); e != nil {
		return 0, e
	}
	var all []string
	for _, a := range c.attrs {
		if a.writable() {
			all = append(all, a.code)
		}
	}
	if e := checkToWrite(c, obj, all, -1); e != nil {
		return 0, e
	}
	if s.objects[class] == nil {
		s.objects[class] = map[int]map[string]string{}
	}
	s.nextID[class]++
	id := s.nextID[class]
	s.objects[class][id] = obj
	return id, nil
}

func (s *Server) setFields(c *classDef, obj map[string]string, fields map[string]any) *restErr {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, e := s.makeValue(c, k, fields[k])
		if e != nil {
			return e
		}
		if !c.attr(k).writable() {
			return internal("%s: Attempting to set the value on the read-only attribute %s::%s", k, c.name, k)
		}
		if c.attr(k).typ == attDate {
			if v, e = realDate(k, fields[k], v); e != nil {
				return e
			}
		}
		obj[k] = v
	}
	return nil
}

// realDate is AttributeDate::MakeRealValue, which DBObject::Set calls: a
// number is a Unix time, a string must be "Y-m-d" (empty is null). iTop
// 3.2 throws CoreUnexpectedValue (no code: 100 in the answer), and RestUtils
// prefixes the attribute code to its message.
func realDate(code string, raw any, v string) (string, *restErr) {
	if n, ok := raw.(json.Number); ok {
		if f, err := n.Float64(); err == nil {
			return time.Unix(int64(f), 0).UTC().Format(time.DateOnly), nil
		}
	}
	if v == "" || dateFormat.MatchString(v) {
		return v, nil
	}
	return "", internal(`%s: Wrong format for date attribute %s, expecting "Y-m-d" and got "%s"`, code, code, v)
}

// checkToWrite is DBObject::DoCheckToWrite on the changed attributes; a
// failure is CoreCannotSaveObjectException (code 100).
func checkToWrite(c *classDef, obj map[string]string, changed []string, id int) *restErr {
	var issues []string
	for _, a := range c.attrs {
		if !slices.Contains(changed, a.code) {
			continue
		}
		v := obj[a.code]
		empty := v == "" || (a.typ == attExtKey && v == "0")
		switch {
		case empty && !a.nullable:
			issues = append(issues, fmt.Sprintf("Unexpected value for attribute '%s': Null not allowed", a.code))
		case a.typ == attEnum && v != "" && !slices.Contains(a.values, v):
			issues = append(issues, fmt.Sprintf("Unexpected value for attribute '%s': Value not allowed [%s]", a.code, v))
		}
	}
	if len(issues) == 0 {
		return nil
	}
	var ctx []string
	for i, is := range issues {
		ctx = append(ctx, fmt.Sprintf("%d=>%s", i, is))
	}
	return internal("%s: issues = {%s}, id = %d, class = %s", strings.Join(issues, ", "), strings.Join(ctx, "; "), id, c.name)
}

func (s *Server) create(version string, p map[string]any) (map[string]any, *restErr) {
	if _, e := mandatory(p, "comment"); e != nil {
		return nil, e
	}
	c, e := s.class(p)
	if e != nil {
		return nil, e
	}
	f, e := mandatory(p, "fields")
	if e != nil {
		return nil, e
	}
	fields, ok := f.(map[string]any)
	if !ok {
		return nil, internal("fields: must be a structure of attribute code => value")
	}
	out, e := fieldList(c, p)
	if e != nil {
		return nil, e
	}
	id, e := s.insert(c.name, fields)
	if e != nil {
		return nil, e
	}
	objs := resultObjects{}
	s.report(version, objs, codeOK, "created", c.name, id, out)
	return withObjects(objs, codeOK, nil), nil
}

func (s *Server) update(version string, p map[string]any) (map[string]any, *restErr) {
	if _, e := mandatory(p, "comment"); e != nil {
		return nil, e
	}
	c, e := s.class(p)
	if e != nil {
		return nil, e
	}
	key, e := mandatory(p, "key")
	if e != nil {
		return nil, e
	}
	f, e := mandatory(p, "fields")
	if e != nil {
		return nil, e
	}
	fields, ok := f.(map[string]any)
	if !ok {
		return nil, internal("fields: must be a structure of attribute code => value")
	}
	out, e := fieldList(c, p)
	if e != nil {
		return nil, e
	}
	id, e := s.findObject(c.name, key, false)
	if e != nil {
		return nil, e
	}
	obj := map[string]string{}
	for k, v := range s.objects[c.name][id] {
		obj[k] = v
	}
	if e := s.setFields(c, obj, fields); e != nil {
		return nil, e
	}
	var changed []string
	for k, v := range obj {
		if s.objects[c.name][id][k] != v {
			changed = append(changed, k)
		}
	}
	if e := checkToWrite(c, obj, changed, id); e != nil {
		return nil, e
	}
	s.objects[c.name][id] = obj
	objs := resultObjects{}
	s.report(version, objs, codeOK, "updated", c.name, id, out)
	return withObjects(objs, codeOK, nil), nil
}
