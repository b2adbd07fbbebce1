// Package flow holds what every workflow package shares: the progress a
// query shows, the readable cause of a failure, compensation (Saga) and
// steps run side by side (Group). It is deterministic code only.
package flow

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
)

// Progress of the operation under way, as a workflow's query shows it.
type Progress struct {
	Done  int    `json:"done"`
	Total int    `json:"total"`
	Step  string `json:"step"`
}

// ErrorMessage turns an activity failure into the readable cause ops
// need: the innermost application error's message and type.
func ErrorMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		if appErr.Type() != "" {
			return fmt.Sprintf("%s (%s)", appErr.Message(), appErr.Type())
		}
		return appErr.Message()
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		return "timed out: " + timeoutErr.Error()
	}
	return err.Error()
}

// Refuse is the error an Update validator rejects a request with: an
// application error of type typ (the API maps it to a 4xx).
func Refuse(typ, format string, args ...any) error {
	return temporal.NewApplicationError(fmt.Sprintf(format, args...), typ)
}

// IsApplicationError tells an activity failure whose application error
// has type typ.
func IsApplicationError(err error, typ string) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == typ
}
