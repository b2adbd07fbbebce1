// Package audit is Tenantflow's audit trail: every change asked of the
// REST API (create, release and promote, pause and abort, suspend and
// resume, decommission request and confirmation, restore, credentials
// fetch, settings, window overrides, hosts), who asked (the token's role
// and caller name), when, why, and how it ended.
//
// The trail does not live in the workflows: a tenant's state would grow
// with every entry, forever, and a release's would not outlive the
// namespace's retention. It lives in a Store of its own, append-only and
// bounded by age (Prune): PostgreSQL for a deployment whose API runs as
// several replicas (one table, shared), or a directory of daily JSON-lines
// files for one API process (make run). Each entry also goes to the JSON
// log.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/tenantflow/tenantflow/internal/textclip"
)

// Outcomes of an entry.
const (
	OutcomeAccepted = "accepted" // 2xx: done, or accepted to run
	OutcomeRefused  = "refused"  // 4xx: bad input, forbidden, or the workflow refused
	OutcomeFailed   = "failed"   // 5xx: the API could not carry it out
	// OutcomeUnknown: no worker answered in time; the change may still
	// be carried out (the workflow's state tells).
	OutcomeUnknown = "unknown"
)

// Entry is one change asked of the API.
type Entry struct {
	// ID orders entries: the time to the nanosecond, then random hex, so
	// it sorts as the entries were made and pages by it are stable.
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Role   string    `json:"role"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"` // tenant.create, release.promote, …
	// What it was about: a tenant, a release, a host (as applies).
	Tenant  string `json:"tenant,omitempty"`
	Release string `json:"release,omitempty"`
	Host    string `json:"host,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Detail is what was asked beyond the reason (a window, an image).
	Detail  string `json:"detail,omitempty"`
	Outcome string `json:"outcome"`
	Status  int    `json:"status"`
	Error   string `json:"error,omitempty"`
}

// Text fields are clipped to this many bytes: the trail stays bounded
// whatever a request carries.
const maxText = 1024

// NewID is an entry id for at.
func NewID(at time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return at.UTC().Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(b[:])
}

// Normalize fills in the id and the time, and clips the text fields.
func (e *Entry) Normalize(now time.Time) {
	if e.At.IsZero() {
		e.At = now
	}
	e.At = e.At.UTC()
	if e.ID == "" {
		e.ID = NewID(e.At)
	}
	for _, p := range []*string{&e.Role, &e.Actor, &e.Action, &e.Tenant, &e.Release, &e.Host, &e.Reason, &e.Detail, &e.Error} {
		*p = clip(*p)
	}
}

func clip(s string) string { return textclip.Clip(s, maxText) }

// Query selects entries: those at or after Since and before Until (zero:
// no bound), of a tenant, an actor (caller name or role) and an action
// when set, after the entry whose id is After (the previous page's
// last), at most Limit (1 to MaxLimit) in id order.
type Query struct {
	Tenant string
	Actor  string
	Action string
	Since  time.Time
	Until  time.Time
	After  string
	Limit  int
}

// MaxLimit is the largest page.
const MaxLimit = 1000

// ErrBadQuery is wrapped by a store's answer to a query it cannot take.
var ErrBadQuery = errors.New("bad audit query")

// Matches tells whether e is selected by q (the cursor and the limit
// aside).
func (q Query) Matches(e Entry) bool {
	return (q.Tenant == "" || e.Tenant == q.Tenant) &&
		(q.Actor == "" || e.Actor == q.Actor || e.Role == q.Actor) &&
		(q.Action == "" || e.Action == q.Action) &&
		(q.Since.IsZero() || !e.At.Before(q.Since)) &&
		(q.Until.IsZero() || e.At.Before(q.Until)) &&
		(q.After == "" || e.ID > q.After)
}

// Store keeps the trail.
type Store interface {
	// Append records e durably before it returns.
	Append(ctx context.Context, e Entry) error
	// List answers a page of q, and whether more follow.
	List(ctx context.Context, q Query) (entries []Entry, more bool, err error)
	// Prune deletes what was recorded before cutoff, returning how many
	// entries (or, for a store that deletes whole days, how many days).
	Prune(ctx context.Context, cutoff time.Time) (int64, error)
	Close() error
}
