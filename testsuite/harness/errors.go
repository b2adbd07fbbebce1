package harness

import (
	"errors"
	"testing"

	"go.temporal.io/sdk/temporal"
)

// RequireRetryable asserts err is an error Temporal will retry: not a
// non-retryable ApplicationError. The SDK reads only the outermost error,
// so a non-retryable one must be returned as is, not wrapped; this checks
// the outermost error for exactly that reason.
func RequireRetryable(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("want a retryable error, got nil")
	}
	//nolint:errorlint // the SDK reads only the outermost error: a wrapped one is retried
	if appErr, ok := err.(*temporal.ApplicationError); ok && appErr.NonRetryable() {
		t.Fatalf("transient failure marked non-retryable: %v", err)
	}
}

// RequireNonRetryable asserts err is a non-retryable ApplicationError of
// the given type (any type when typ is ""), returned unwrapped.
func RequireNonRetryable(t testing.TB, err error, typ string) *temporal.ApplicationError {
	t.Helper()
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("want a non-retryable %s ApplicationError, got %T: %v", typ, err, err)
	}
	//nolint:errorlint // the point: the SDK reads only the outermost error
	if _, outer := err.(*temporal.ApplicationError); !outer {
		t.Fatalf("the ApplicationError is wrapped (Temporal would retry it): %v", err)
	}
	if !appErr.NonRetryable() {
		t.Fatalf("want non-retryable, got retryable: %v", err)
	}
	if typ != "" && appErr.Type() != typ {
		t.Fatalf("want error type %s, got %s: %v", typ, appErr.Type(), err)
	}
	return appErr
}
