package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tenantflow/tenantflow/activities/spec"
	"github.com/tenantflow/tenantflow/workflows/tenant"
)

// fieldError is a client error about one field of the request; it becomes
// 400 {"error": ..., "field": ...} so a form can point at the culprit.
type fieldError struct {
	Field string
	Msg   string
}

func (e *fieldError) Error() string { return e.Field + ": " + e.Msg }

func badField(field, format string, args ...any) *fieldError {
	return &fieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// respondFieldError writes a fieldError as 400.
func respondFieldError(c *gin.Context, err *fieldError) {
	c.AbortWithStatusJSON(http.StatusBadRequest, gin.H{"error": err.Msg, "field": err.Field})
}

// respondError writes {"error": msg} with status.
func respondError(c *gin.Context, status int, msg string) {
	c.AbortWithStatusJSON(status, gin.H{"error": msg})
}

// Tenant names become DNS labels, container and network names, so they are
// held to the strictest of those rules. The lower bound keeps names
// meaningful in listings and URLs.
const (
	minNameLen = 3
	maxNameLen = 40
)

func validateName(name string) *fieldError {
	if name == "" {
		return badField("name", "name is required")
	}
	if len(name) < minNameLen || !spec.IsDNSLabel(name, maxNameLen) {
		return badField("name", "name %q is invalid: use %d–%d lowercase letters, digits and hyphens, starting and ending with a letter or digit",
			name, minNameLen, maxNameLen)
	}
	return nil
}

// validateNewName is validateName for a tenant about to be created. A DNS
// label with "--" as its third and fourth characters is reserved for
// encoded Unicode names ("xn--", RFC 5891 4.2.3.1): such a host name would
// be shown, or refused, as an internationalized name. Existing tenants
// are looked up with validateName alone, so none becomes unreachable.
func validateNewName(name string) *fieldError {
	if err := validateName(name); err != nil {
		return err
	}
	if len(name) >= 4 && name[2:4] == "--" {
		return badField("name", "name %q is reserved: a DNS label must not have \"--\" as its 3rd and 4th characters (xn--…: internationalized names)", name)
	}
	return nil
}

func validateStage(field, stage string, required bool) *fieldError {
	if stage == "" && !required {
		return nil
	}
	if !slices.Contains(tenant.Stages, stage) {
		if stage == "" {
			return badField(field, "%s is required (one of: %s)", field, strings.Join(tenant.Stages, ", "))
		}
		return badField(field, "unknown %s %q (one of: %s)", field, stage, strings.Join(tenant.Stages, ", "))
	}
	return nil
}

// decodeJSONBody reads exactly one JSON object of at most limit bytes into v,
// strictly: unknown fields, wrong types, null and trailing data are errors
// naming the field (or "body") at fault. The members of the top-level
// objects named nullable may be null (a value there: PATCH's "back to
// the default").
func decodeJSONBody(c *gin.Context, limit int64, v any, nullable ...string) *fieldError {
	data, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		return jsonFieldError(err, limit)
	}
	return decodeJSON(data, limit, v, nullable...)
}

// decodeOptionalJSONBody is decodeJSONBody for a body that may be left out:
// an empty body leaves v as it is.
func decodeOptionalJSONBody(c *gin.Context, limit int64, v any) *fieldError {
	data, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		return jsonFieldError(err, limit)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	return decodeJSON(data, limit, v)
}

// decodeJSON is decodeJSONBody's check of a body already read.
func decodeJSON(data []byte, limit int64, v any, nullable ...string) *fieldError {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonFieldError(err, limit)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return badField("body", "unexpected data after the JSON object")
	}
	if field := nullField(data, nullable); field != "" {
		return badField(field, "%s must not be null: leave it out for its default", field)
	}
	return nil
}

// nullField names the first field of a JSON object given as null, "" if
// none. encoding/json takes null as "absent", which would silently mean a
// default the client may not have meant. Nested objects are searched too,
// their fields named with dots ("tenants.stage"), but for the members of
// the top-level objects named nullable.
func nullField(data []byte, nullable []string) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return ""
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		v := bytes.TrimSpace(obj[k])
		if string(v) == "null" {
			return k
		}
		if len(v) > 0 && v[0] == '{' && !slices.Contains(nullable, k) {
			if f := nullField(v, nil); f != "" {
				return k + "." + f
			}
		}
	}
	return ""
}

// jsonFieldError maps an encoding/json error to the field it is about.
func jsonFieldError(err error, limit int64) *fieldError {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		policyErr *spec.FieldError
	)
	switch {
	case errors.As(err, &maxErr):
		return badField("body", "request body is larger than %d bytes", limit)
	case errors.Is(err, io.EOF):
		return badField("body", "request body is empty: want a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badField("body", "malformed JSON: unexpected end of the body")
	case errors.As(err, &syntaxErr):
		return badField("body", "malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case errors.As(err, &policyErr):
		// Only the backup policy decodes itself (durations as "24h").
		field := "backups." + policyErr.Field
		return badField(field, "%s: %s", field, policyErr.Message)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return badField("body", "request body must be a JSON object, not %s", typeErr.Value)
		}
		return badField(typeErr.Field, "%s must be a %s, not %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	}
	// encoding/json has no error type for unknown fields, only this message.
	if rest, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if field, uerr := strconv.Unquote(rest); uerr == nil {
			if field == "" { // {"": …}: no field to point at
				return badField("body", "unknown field \"\"")
			}
			return badField(field, "unknown field %q", field)
		}
	}
	return badField("body", "malformed JSON: %v", err)
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	default:
		return "number"
	}
}

// boolQuery reads the optional boolean query parameter name (false when
// absent); an error names it.
func boolQuery(c *gin.Context, name string) (bool, *fieldError) {
	v, ok := c.GetQuery(name)
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badField(name, "%s must be true or false, not %q", name, v)
	}
	return b, nil
}
