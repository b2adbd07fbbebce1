package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// schema is what the app keeps in PostgreSQL: the mirrored counter (kv)
// and the rows tests write and read back (rows).
const schema = `
CREATE TABLE IF NOT EXISTS kv (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS rows (id bigserial PRIMARY KEY, value text NOT NULL);
`

// pgStore keeps the app's data in PostgreSQL. The schema is created on
// first use, not at start-up: the app may start before the database
// accepts connections, and a failed attempt is tried again.
type pgStore struct {
	pool *pgxpool.Pool

	mu     sync.Mutex
	schema bool // created
}

// isPostgresURL tells whether DB_URL names a PostgreSQL database.
func isPostgresURL(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// newPGStore connects lazily to url; password (DB_PASSWORD) is used when
// the URL has none, so a generated password needs no URL escaping.
func newPGStore(url, password string) (*pgStore, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("DB_URL: %w", err)
	}
	if cfg.ConnConfig.Password == "" {
		cfg.ConnConfig.Password = password
	}
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	cfg.MaxConns = 4 // one database process each, in a db with few pids
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("DB_URL: %w", err)
	}
	return &pgStore{pool: pool}, nil
}

func (s *pgStore) close() { s.pool.Close() }

// ensureSchema creates the tables once per process.
func (s *pgStore) ensureSchema(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.schema {
		return nil
	}
	if _, err := s.pool.Exec(ctx, schema); err != nil {
		return fmt.Errorf("db: create tables: %w", err)
	}
	s.schema = true
	return nil
}

func (s *pgStore) get(ctx context.Context, key string) (string, error) {
	if err := s.ensureSchema(ctx); err != nil {
		return "", err
	}
	var v string
	err := s.pool.QueryRow(ctx, `SELECT value FROM kv WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("db: read %s: %w", key, err)
	}
	return v, nil
}

func (s *pgStore) put(ctx context.Context, key, value string) error {
	if err := s.ensureSchema(ctx); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx,
		`INSERT INTO kv (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, key, value)
	if err != nil {
		return fmt.Errorf("db: write %s: %w", key, err)
	}
	return nil
}

func (s *pgStore) addRow(ctx context.Context, value string) (row, error) {
	if err := s.ensureSchema(ctx); err != nil {
		return row{}, err
	}
	r := row{Value: value}
	if err := s.pool.QueryRow(ctx, `INSERT INTO rows (value) VALUES ($1) RETURNING id`, value).Scan(&r.ID); err != nil {
		return row{}, fmt.Errorf("db: insert row: %w", err)
	}
	return r, nil
}

func (s *pgStore) rows(ctx context.Context) ([]row, error) {
	if err := s.ensureSchema(ctx); err != nil {
		return nil, err
	}
	rs, err := s.pool.Query(ctx, `SELECT id, value FROM rows ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("db: read rows: %w", err)
	}
	out, err := pgx.CollectRows(rs, pgx.RowToStructByPos[row])
	if err != nil {
		return nil, fmt.Errorf("db: read rows: %w", err)
	}
	if out == nil {
		out = []row{}
	}
	return out, nil
}
