package audit

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tenantflow/tenantflow/testsuite/harness"
)

// Both stores answer the same: the conformance below runs on each.
func TestFileStore(t *testing.T) {
	s, err := OpenFileStore(filepath.Join(t.TempDir(), "audit"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	conformance(t, s)
}

func TestPostgresStore(t *testing.T) {
	pg := harness.StartPostgres(t)
	pg.SQL("postgres", "CREATE DATABASE audit OWNER "+pg.Role)
	dsn := fmt.Sprintf("postgres://%s:%s@%s/audit", pg.Role, pg.Password, pg.Addr)
	s, err := OpenPostgres(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	conformance(t, s)
	// Opening again (another replica, a restart) keeps the table.
	require.NoError(t, s.Append(context.Background(), Entry{Role: "ops", Actor: "a", Action: "host.drain", Host: "h1", Outcome: OutcomeAccepted, Status: 202}))
	again, err := OpenPostgres(context.Background(), dsn)
	require.NoError(t, err)
	defer again.Close()
	got, _, err := again.List(context.Background(), Query{Limit: MaxLimit})
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "h1", got[0].Host)
}

func conformance(t *testing.T, s Store) {
	ctx := context.Background()
	start := time.Now().UTC()
	for i := range 7 {
		e := Entry{Role: "ops", Actor: "alice", Action: "tenant.suspend", Tenant: "acme", Reason: fmt.Sprintf("invoice %d", i), Outcome: OutcomeAccepted, Status: 202}
		if i%2 == 1 {
			e.Actor, e.Role, e.Tenant, e.Action = "portal", "distributor", "globex", "tenant.create"
		}
		require.NoError(t, s.Append(ctx, e))
	}
	require.NoError(t, s.Append(ctx, Entry{Role: "developer", Actor: "bob", Action: "release.promote", Release: "r1",
		Reason: strings.Repeat("é", 2000), Outcome: OutcomeRefused, Status: 409, Error: "staging failed"}))

	all, more, err := s.List(ctx, Query{Limit: MaxLimit})
	require.NoError(t, err)
	require.False(t, more)
	require.Len(t, all, 8)
	for i, e := range all {
		require.NotEmpty(t, e.ID)
		require.False(t, e.At.Before(start.Add(-time.Second)), "stamped at append")
		if i > 0 {
			require.Greater(t, e.ID, all[i-1].ID, "in the order they were made")
		}
	}
	require.Equal(t, "invoice 0", all[0].Reason)
	last := all[7]
	require.Equal(t, "release.promote", last.Action)
	require.Equal(t, "r1", last.Release)
	require.Equal(t, 409, last.Status)
	require.LessOrEqual(t, len(last.Reason), maxText, "text is clipped")
	require.True(t, strings.HasSuffix(last.Reason, "…"))

	// Filters: tenant, actor by name or role, action.
	got, _, err := s.List(ctx, Query{Tenant: "acme", Limit: 10})
	require.NoError(t, err)
	require.Len(t, got, 4)
	got, _, err = s.List(ctx, Query{Actor: "distributor", Limit: 10})
	require.NoError(t, err)
	require.Len(t, got, 3)
	got, _, err = s.List(ctx, Query{Actor: "bob", Action: "release.promote", Limit: 10})
	require.NoError(t, err)
	require.Len(t, got, 1)
	got, _, err = s.List(ctx, Query{Since: time.Now().Add(time.Hour), Limit: 10})
	require.NoError(t, err)
	require.Empty(t, got)
	got, _, err = s.List(ctx, Query{Until: start.Add(-time.Hour), Limit: 10})
	require.NoError(t, err)
	require.Empty(t, got)

	// Pages of 3 through the 8, by the last id seen.
	var paged []Entry
	q := Query{Limit: 3}
	for {
		page, more, err := s.List(ctx, q)
		require.NoError(t, err)
		paged = append(paged, page...)
		if !more {
			break
		}
		q.After = page[len(page)-1].ID
	}
	require.Equal(t, all, paged)

	_, _, err = s.List(ctx, Query{Limit: MaxLimit + 1})
	require.ErrorIs(t, err, ErrBadQuery)

	// Pruning at a cutoff before them keeps everything; after them (a
	// day later, as the file store deletes whole days) nothing.
	_, err = s.Prune(ctx, start.Add(-48*time.Hour))
	require.NoError(t, err)
	got, _, err = s.List(ctx, Query{Limit: MaxLimit})
	require.NoError(t, err)
	require.Len(t, got, 8)
	n, err := s.Prune(ctx, time.Now().Add(48*time.Hour))
	require.NoError(t, err)
	require.Positive(t, n)
	got, _, err = s.List(ctx, Query{Limit: MaxLimit})
	require.NoError(t, err)
	require.Empty(t, got)
}

// A line cut by a crash mid-write is skipped, not an error; appends go
// on after it.
func TestFileStoreSkipsATornLine(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenFileStore(dir)
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, s.Append(ctx, Entry{Role: "ops", Actor: "a", Action: "tenant.create", Outcome: OutcomeAccepted, Status: 202}))
	require.NoError(t, s.Close())
	day := time.Now().UTC().Format(dayFormat)
	f, err := os.OpenFile(filepath.Join(dir, day+".jsonl"), os.O_WRONLY|os.O_APPEND, 0)
	require.NoError(t, err)
	_, err = f.WriteString(`{"id":"2026`)
	require.NoError(t, err)
	f.Close()
	require.NoError(t, s.Append(ctx, Entry{Role: "ops", Actor: "b", Action: "tenant.create", Outcome: OutcomeAccepted, Status: 202}))
	got, _, err := s.List(ctx, Query{Limit: 10})
	require.NoError(t, err)
	require.Len(t, got, 2, "the torn line is skipped, the entries before and after it kept")
	require.Equal(t, "a", got[0].Actor)
	require.Equal(t, "b", got[1].Actor)
}

func TestOpenFileStoreNamesAnUnwritableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		// root writes anywhere: use a path under a file instead.
		f := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(f, nil, 0o600))
		_, err := OpenFileStore(filepath.Join(f, "audit"))
		require.ErrorContains(t, err, "audit directory")
		return
	}
	dir := t.TempDir()
	require.NoError(t, os.Chmod(dir, 0o500))
	_, err := OpenFileStore(dir)
	require.ErrorContains(t, err, "is not writable")
}
