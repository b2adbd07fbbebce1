package cmdb

import (
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
)

// Error types shown in the Web UI for failures a retry cannot fix.
const (
	ErrUnauthorized    = "CMDBUnauthorized"
	ErrRequestRejected = "CMDBRequestRejected"
	ErrInvalidInput    = "InvalidCMDBInput"
	// ErrResourceNotOurs: an active application of the tenant's name was made by
	// another provisioning run (or before runs were stamped, without
	// Adopt).
	ErrResourceNotOurs = "ResourceNotOurs"
)

// iTop's RestResult codes (application/applicationextension.inc.php).
const (
	CodeOK                 = 0
	CodeUnauthorized       = 1
	CodeMissingVersion     = 2
	CodeMissingJSON        = 3
	CodeInvalidJSON        = 4
	CodeMissingAuthUser    = 5
	CodeMissingAuthPwd     = 6
	CodeUnsupportedVersion = 10
	CodeUnknownOperation   = 11
	CodeUnsafe             = 12
	CodeInvalidPage        = 13 // iTop 3.1+: page is not an integer > 0
	CodeInternalError      = 100
)

var codeNames = map[int]string{
	CodeUnauthorized: "UNAUTHORIZED", CodeMissingVersion: "MISSING_VERSION", CodeMissingJSON: "MISSING_JSON",
	CodeInvalidJSON: "INVALID_JSON", CodeMissingAuthUser: "MISSING_AUTH_USER", CodeMissingAuthPwd: "MISSING_AUTH_PWD",
	CodeUnsupportedVersion: "UNSUPPORTED_VERSION", CodeUnknownOperation: "UNKNOWN_OPERATION", CodeUnsafe: "UNSAFE",
	CodeInvalidPage: "INVALID_PAGE", CodeInternalError: "INTERNAL_ERROR",
}

// Error is an iTop answer that reports a failure: a non-zero result code, or
// (Object set) a per-object code in an otherwise successful answer.
type Error struct {
	Operation string // core/get, core/create, …
	Class     string
	Object    string // "Class::id" for a per-object failure
	Code      int
	Message   string // iTop's message, e.g. "Error: Invalid login"
}

func (e *Error) Error() string {
	what := e.Operation
	if e.Object != "" {
		return fmt.Sprintf("iTop %s: %s: per-object code %d: %s", what, e.Object, e.Code, e.Message)
	}
	if e.Class != "" {
		what += " " + e.Class
	}
	name := codeNames[e.Code]
	if name == "" {
		name = "unknown code"
	}
	return fmt.Sprintf("iTop %s: code %d (%s): %s", what, e.Code, name, e.Message)
}

// modelRefusals are messages of code 100 that say the request does not fit
// iTop's datamodel or names nothing that exists. rest.php answers every
// exception without a code of its own as code 100 with "Error: " and the
// exception's message, which RestUtils prefixes with the attribute code for
// a value it could not take ("move2production: Wrong format for date
// attribute move2production, expecting \"Y-m-d\" and got \"…\""). These are
// as permanent as codes 2-13; other code-100 answers (lock timeouts,
// deadlocks, a database gone away) are worth retrying. The texts are iTop
// 3.2's (core/restservices, application/applicationextension, the
// attribute definitions and CoreCannotSaveObjectException).
var modelRefusals = []string{
	"Unexpected value for attribute",  // CheckToWrite: bad enum value, null in a mandatory attribute
	"Wrong format for date attribute", // AttributeDate(Time)::MakeRealValue
	": Unknown attribute",             // RestUtils::MakeValue
	"is not a valid class",            // RestUtils::GetClass
	"invalid attribute code",          // output_fields
	"read-only attribute",
	"Missing parameter",
	"Wrong format for key",
	"No item found",       // FindObjectFromKey / FindObjectFromCriteria
	"Several items found", // idem
	"Invalid object ",     // an id that does not exist
	"finalclass: ",        // an unknown or unrelated finalclass
	"A link set must be defined",
	"A tag set must be defined",
	"Attribute pointing to an object that is either non existing or not readable", // InvalidExternalKeyValueException
}

// permanent says whether retrying cannot change the answer, and how ops
// see the failure in the Web UI.
func (e *Error) permanent() (string, bool) {
	switch {
	case e.Object != "":
		return ErrRequestRejected, true
	case e.Code == CodeUnauthorized:
		return ErrUnauthorized, true
	case e.Code >= CodeMissingVersion && e.Code <= CodeInvalidPage:
		return ErrRequestRejected, true
	case e.Code == CodeInternalError:
		for _, m := range modelRefusals {
			if strings.Contains(e.Message, m) {
				return ErrRequestRejected, true
			}
		}
	}
	return "", false
}

// activityError is what an activity returns for err: a non-retryable
// ApplicationError when iTop's answer cannot change on retry (Temporal only
// sees that flag on the returned error itself, not on a wrapped one), err
// unchanged otherwise so Temporal retries.
func activityError(err error) error {
	if err == nil {
		return nil
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.NonRetryable() {
		if appErr == err { //nolint:errorlint // identity: is the ApplicationError itself the error, unwrapped?
			return err
		}
		return temporal.NewNonRetryableApplicationError(err.Error(), appErr.Type(), err)
	}
	var ie *Error
	if errors.As(err, &ie) {
		if typ, ok := ie.permanent(); ok {
			return temporal.NewNonRetryableApplicationError(err.Error(), typ, err)
		}
	}
	return err
}
