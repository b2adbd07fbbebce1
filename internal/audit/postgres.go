package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgresStore keeps the trail in one PostgreSQL table that every API
// replica shares; Prune deletes the rows before the cutoff.
type PostgresStore struct {
	pool *pgxpool.Pool
}

const schema = `
CREATE TABLE IF NOT EXISTS tenantflow_audit (
	id         text PRIMARY KEY,
	at         timestamptz NOT NULL,
	role       text NOT NULL,
	actor      text NOT NULL,
	action     text NOT NULL,
	tenant     text NOT NULL DEFAULT '',
	release_id text NOT NULL DEFAULT '',
	host       text NOT NULL DEFAULT '',
	reason     text NOT NULL DEFAULT '',
	detail     text NOT NULL DEFAULT '',
	outcome    text NOT NULL,
	status     integer NOT NULL,
	error      text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tenantflow_audit_tenant ON tenantflow_audit (tenant, id);
CREATE INDEX IF NOT EXISTS tenantflow_audit_actor ON tenantflow_audit (actor, id);
CREATE INDEX IF NOT EXISTS tenantflow_audit_at ON tenantflow_audit (at);
`

// OpenPostgres connects to dsn and makes the table if it is missing.
func OpenPostgres(ctx context.Context, dsn string) (*PostgresStore, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("audit database: %w", err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("audit database: %w", err)
	}
	// Replicas starting together make the table one at a time.
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('tenantflow_audit'))`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schema)
		return err
	})
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("audit database %s: %w", cfg.ConnConfig.Host, err)
	}
	return &PostgresStore{pool: pool}, nil
}

// Append inserts e, stamped with the time and an id.
func (s *PostgresStore) Append(ctx context.Context, e Entry) error {
	e.At, e.ID = time.Time{}, ""
	e.Normalize(time.Now())
	_, err := s.pool.Exec(ctx, `INSERT INTO tenantflow_audit
		(id, at, role, actor, action, tenant, release_id, host, reason, detail, outcome, status, error)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		e.ID, e.At, e.Role, e.Actor, e.Action, e.Tenant, e.Release, e.Host, e.Reason, e.Detail, e.Outcome, e.Status, e.Error)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// List selects a page in id order.
func (s *PostgresStore) List(ctx context.Context, q Query) ([]Entry, bool, error) {
	if q.Limit < 1 || q.Limit > MaxLimit {
		return nil, false, fmt.Errorf("%w: limit must be 1 to %d", ErrBadQuery, MaxLimit)
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if q.Tenant != "" {
		add("tenant = $%d", q.Tenant)
	}
	if q.Actor != "" {
		args = append(args, q.Actor)
		where = append(where, fmt.Sprintf("(actor = $%d OR role = $%[1]d)", len(args)))
	}
	if q.Action != "" {
		add("action = $%d", q.Action)
	}
	if !q.Since.IsZero() {
		add("at >= $%d", q.Since)
	}
	if !q.Until.IsZero() {
		add("at < $%d", q.Until)
	}
	if q.After != "" {
		add("id > $%d", q.After)
	}
	sql := `SELECT id, at, role, actor, action, tenant, release_id, host, reason, detail, outcome, status, error FROM tenantflow_audit`
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, q.Limit+1)
	sql += fmt.Sprintf(" ORDER BY id LIMIT $%d", len(args))
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, false, fmt.Errorf("audit: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := r.Scan(&e.ID, &e.At, &e.Role, &e.Actor, &e.Action, &e.Tenant, &e.Release, &e.Host, &e.Reason, &e.Detail, &e.Outcome, &e.Status, &e.Error)
		e.At = e.At.UTC()
		return e, err
	})
	if err != nil {
		return nil, false, fmt.Errorf("audit: %w", err)
	}
	if len(out) > q.Limit {
		return out[:q.Limit], true, nil
	}
	return out, false, nil
}

// Prune deletes the rows before cutoff.
func (s *PostgresStore) Prune(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM tenantflow_audit WHERE at < $1`, cutoff)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Close closes the pool.
func (s *PostgresStore) Close() error {
	s.pool.Close()
	return nil
}
