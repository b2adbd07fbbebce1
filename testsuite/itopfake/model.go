package itopfake

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// attrType is the kind of an iTop attribute, reduced to what changes the
// REST behaviour: how a value is read from JSON, checked before writing and
// reported in "fields".
type attrType int

const (
	attString attrType = iota
	attText
	attEnum
	attDate
	attExtKey             // AttributeExternalKey: the target's id, "0" when empty
	attExtField           // AttributeExternalField: read-only copy of a target attribute
	attFriendlyName       // friendlyname of the object itself
	attExtKeyFriendlyName // <extkey>_friendlyname: friendlyname of the target
)

// On-target-delete options of external keys (iTop's DEL_MANUAL, DEL_AUTO).
const (
	delManual = iota
	delAuto
)

type attrDef struct {
	code      string
	typ       attrType
	label     string
	nullable  bool
	values    []string // enum values
	def       string   // default value on creation
	target    string   // external key: target class
	onDelete  int      // external key: what deleting the target does
	extKey    string   // external field / key friendlyname: the external key
	targetAtt string   // external field: attribute of the target
}

func (a *attrDef) writable() bool { return a.typ <= attExtKey }

type classDef struct {
	name  string
	attrs []*attrDef
}

func (c *classDef) attr(code string) *attrDef {
	for _, a := range c.attrs {
		if a.code == code {
			return a
		}
	}
	return nil
}

// standardModel is the part of iTop's standard datamodel (itop-structure and
// itop-config-mgmt) Tenantflow touches: an Organization and the
// ApplicationSolution (a FunctionalCI) that belongs to it. Enum values,
// defaults, mandatory flags and on-delete behaviours are those of the real
// datamodel, so a client sending a value iTop would refuse is refused here
// too. OtherSoftware is deliberately absent: a real SoftwareInstance needs a
// mandatory system_id (a Server, VirtualMachine or PC).
func standardModel() map[string]*classDef {
	org := &classDef{name: "Organization", attrs: []*attrDef{
		{code: "name", typ: attString, label: "Name"},
		{code: "code", typ: attString, label: "Code", nullable: true},
		{code: "status", typ: attEnum, label: "Status", nullable: true, values: []string{"active", "inactive"}, def: "active"},
		{code: "parent_id", typ: attExtKey, label: "Parent", nullable: true, target: "Organization", onDelete: delManual},
		{code: "parent_name", typ: attExtField, label: "Parent name", extKey: "parent_id", targetAtt: "name"},
		{code: "friendlyname", typ: attFriendlyName, label: "Full name"},
		{code: "parent_id_friendlyname", typ: attExtKeyFriendlyName, label: "Parent friendly name", extKey: "parent_id"},
	}}
	app := &classDef{name: "ApplicationSolution", attrs: []*attrDef{
		{code: "name", typ: attString, label: "Name"},
		{code: "description", typ: attText, label: "Description", nullable: true},
		{code: "org_id", typ: attExtKey, label: "Organization", target: "Organization", onDelete: delManual},
		{code: "organization_name", typ: attExtField, label: "Organization name", extKey: "org_id", targetAtt: "name"},
		{code: "business_criticity", typ: attEnum, label: "Business criticality", nullable: true, values: []string{"high", "medium", "low"}, def: "low"},
		{code: "move2production", typ: attDate, label: "Move to production date", nullable: true},
		{code: "status", typ: attEnum, label: "Status", nullable: true, values: []string{"active", "inactive"}, def: "active"},
		{code: "friendlyname", typ: attFriendlyName, label: "Full name"},
		{code: "org_id_friendlyname", typ: attExtKeyFriendlyName, label: "Organization friendly name", extKey: "org_id"},
	}}
	return map[string]*classDef{org.name: org, app.name: app}
}

// restErr is an exception thrown while serving a request: rest.php turns it
// into {"code": code (100 when the exception has none), "message": "Error: "+msg}.
type restErr struct {
	code int
	msg  string
}

func (e *restErr) Error() string { return e.msg }

func internal(format string, args ...any) *restErr {
	return &restErr{code: codeInternalError, msg: fmt.Sprintf(format, args...)}
}

var dateFormat = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

// scalar converts a JSON value to the string iTop would store, the way PHP
// would: numbers keep their text, true is "1", false and null are empty.
func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case nil:
		return "", true
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		if x {
			return "1", true
		}
		return "", true
	}
	return "", false
}

// isNumeric is PHP's is_numeric for the key forms rest.php accepts.
func isNumeric(v any) (int, bool) {
	switch x := v.(type) {
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return int(f), true
		}
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(x), 64); err == nil && strings.TrimSpace(x) != "" {
			return int(f), true
		}
	}
	return 0, false
}
