package cli

import (
	"context"
	"errors"
	"net/http"
)

// Exit codes of the tenants, releases, builds, hosts and audit commands. This is the one
// place they are decided: scripts branch on them, and `tenantflow help`
// lists them (ExitCodesHelp).
const (
	ExitOK = 0
	// ExitFailure: anything else: the API unreachable or failing (5xx),
	// an answer the CLI cannot read.
	ExitFailure = 1
	// ExitUsage: the command line is wrong (unknown flag, missing
	// argument, bad configuration), or the API refused the input (400).
	ExitUsage = 2
	// ExitNotFound: no such tenant, release or build (404).
	ExitNotFound = 3
	// ExitRefused: the API understood and refused in the object's present
	// state (409), or what was asked is gone (410: credentials already
	// handed out).
	ExitRefused = 4
	// ExitDenied: no valid token (401), or the token's role may not do
	// this (403).
	ExitDenied = 5
	// ExitUnsuccessful: a watched release or build ended without success
	// (failed, aborted, not promoted, completed with failures) or paused;
	// a tenant created with --wait failed, or an operation followed with
	// --wait (suspend, resume, move, set).
	ExitUnsuccessful = 6
	// ExitInterrupted: Ctrl-C (the conventional 128+SIGINT).
	ExitInterrupted = 130
)

// ExitCodesHelp is the exit code table as `tenantflow help` prints it.
const ExitCodesHelp = `exit codes (tenants, releases, builds, hosts, audit):
  0  ok (a watch: the release completed, or awaits promotion; the build succeeded)
  1  failure: API unreachable or failing (5xx), unreadable answer
  2  usage: bad flags or arguments, bad configuration, or input the API refused (400)
  3  not found (404)
  4  refused in the present state (409), or gone (410: credentials already taken)
  5  denied: no valid token (401), or the token's role may not (403)
  6  a watched release or build ended without success (failed, aborted,
     not promoted, completed with failures) or paused; a tenant created,
     or an operation followed, with --wait failed
  130 interrupted (Ctrl-C)`

// exitForStatus maps an API answer's HTTP status to an exit code.
func exitForStatus(status int) int {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge:
		return ExitUsage
	case http.StatusNotFound:
		return ExitNotFound
	case http.StatusConflict, http.StatusGone:
		return ExitRefused
	case http.StatusUnauthorized, http.StatusForbidden:
		return ExitDenied
	default:
		return ExitFailure
	}
}

// exitError ends a command with code after printing message (when not
// empty) on stderr.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageError(msg string) error { return &exitError{code: ExitUsage, msg: msg} }

// unsuccessful ends a watch (or a wait) whose operation did not succeed;
// the watch has already said how it ended.
func unsuccessful() error { return &exitError{code: ExitUnsuccessful} }

// exitCode is the exit code of a command's error.
func exitCode(err error) int {
	var (
		apiErr  *APIError
		exitErr *exitError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &exitErr):
		return exitErr.code
	case errors.As(err, &apiErr):
		return exitForStatus(apiErr.Status)
	case errors.Is(err, context.Canceled):
		return ExitInterrupted
	default:
		return ExitFailure
	}
}
