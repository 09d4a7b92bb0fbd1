package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/result"
)

// Postgres is the store on a PostgreSQL server (pgx, a connection pool), for runs
// that outgrow one file or one machine. It holds the same tables as SQLite, in
// PostgreSQL's dialect (pgMigrations), and answers every call the same way.
type Postgres struct {
	pool pgDB          // the pool, or the transaction of a Within view
	own  *pgxpool.Pool // the pool Close closes; nil in a Within view
	name string        // the DSN without its password, for errors
	docs *docEncoder
}

// pgDB is what the store asks of a connection pool, and what a transaction also does
// (its Begin opens a savepoint): a Within view runs every call in the caller's
// transaction.
type pgDB interface {
	Begin(ctx context.Context) (pgx.Tx, error)
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Within returns a view of the store whose every call runs in tx, the caller's
// transaction (a transaction of the store's own database): its writes commit or roll
// back with tx. The job queue uses it to save a job's results in the transaction that
// completes the job. The view must not be used once tx ends; closing it does nothing.
func (s *Postgres) Within(tx pgx.Tx) *Postgres {
	return &Postgres{pool: tx, name: s.name, docs: s.docs}
}

// Pool returns the store's connection pool (nil for a Within view), for the job queue
// that shares the database.
func (s *Postgres) Pool() *pgxpool.Pool { return s.own }

// connectTimeout bounds a connection attempt when the URL sets no connect_timeout.
const connectTimeout = 15 * time.Second

// migrationLock is the advisory lock key under which the schema is migrated, so that
// processes opening a fresh database at once do not race ("v6mx" in ASCII).
const migrationLock = 0x76366d78

// IsPostgres tells whether a --db value is a PostgreSQL URL rather than a file path.
func IsPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// Open opens the store a --db value names: a postgres:// or postgresql:// URL opens
// PostgreSQL, anything else is a SQLite file.
func Open(ctx context.Context, dsn string) (Store, error) {
	if IsPostgres(dsn) {
		return OpenPostgres(ctx, dsn)
	}
	return OpenSQLite(ctx, dsn)
}

// Name returns how messages name the database a --db value opens: the file, or the
// URL without its password.
func Name(dsn string) string {
	if IsPostgres(dsn) {
		return redact(dsn)
	}
	return dsn
}

// OpenReadOnly opens the store a --db value names for reading (runs, export, the
// website): a SQLite file must exist and may be read-only (OpenSQLiteReadOnly); a
// PostgreSQL database is opened as by Open (its roles decide who may write).
func OpenReadOnly(ctx context.Context, dsn string) (Store, error) {
	if IsPostgres(dsn) {
		return OpenPostgres(ctx, dsn)
	}
	return OpenSQLiteReadOnly(ctx, dsn)
}

// redact returns a DSN without its password, to name the database in errors.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres database (unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if q.Has("password") {
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// OpenPostgres connects to the database a postgres:// URL names and migrates it to the
// current schema.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	name := redact(dsn)
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", name, err) // pgconn redacts the password itself
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// Without connect_timeout in the URL, a server that drops packets would hold
		// every command for the system's TCP timeout (minutes).
		cfg.ConnConfig.ConnectTimeout = connectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", name, err)
	}
	s := &Postgres{pool: pool, own: pool, name: name, docs: newDocEncoder()}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("database %s: %w", name, err)
	}
	return s, nil
}

// Close closes the pool (a Within view has none to close).
func (s *Postgres) Close() error {
	if s.own != nil {
		s.docs.drop.Stop()
		s.own.Close()
	}
	return nil
}

// migrate applies the missing migrations in one transaction under an advisory lock.
func (s *Postgres) migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("lock for migration: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("not a usable database (%w)", err)
	}
	var v int
	err = tx.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&v)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if _, err := tx.Exec(ctx, `INSERT INTO schema_version VALUES (0)`); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(pgMigrations) {
		return fmt.Errorf("schema version %d is newer than this v6matrix knows (%d): upgrade v6matrix", v, len(pgMigrations))
	}
	for i := v; i < len(pgMigrations); i++ {
		if _, err := tx.Exec(ctx, pgMigrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE schema_version SET version = $1`, len(pgMigrations)); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// CreateRun inserts a run and returns its id.
func (s *Postgres) CreateRun(ctx context.Context, r Run) (int64, error) {
	var id int64
	err := s.pool.QueryRow(ctx, `INSERT INTO runs (started, list_name, list_sha256, options, vantage, state)
		VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
		formatTime(r.Started), r.ListName, r.ListSHA256, r.Options, r.Vantage, string(r.State)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("create run: %w", err)
	}
	return id, nil
}

// UpdateRun writes a run's mutable fields.
func (s *Postgres) UpdateRun(ctx context.Context, r Run) error {
	_, err := s.pool.Exec(ctx, `UPDATE runs SET finished = $1, list_sha256 = $2, options = $3, state = $4, loaded = $5,
		skipped = $6, duplicates = $7 WHERE id = $8`,
		formatTime(r.Finished), r.ListSHA256, r.Options, string(r.State), r.Loaded, r.Skipped, r.Duplicates, r.ID)
	if err != nil {
		return fmt.Errorf("update run %d: %w", r.ID, err)
	}
	return nil
}

// GetRun returns one run.
func (s *Postgres) GetRun(ctx context.Context, id int64) (Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM runs WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("run %d in %s: %w", id, s.name, ErrNotFound)
	}
	return r, err
}

// LatestRun returns the newest run.
func (s *Postgres) LatestRun(ctx context.Context) (Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, `SELECT `+runColumns+` FROM runs ORDER BY id DESC LIMIT 1`))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, fmt.Errorf("no run in %s: %w", s.name, ErrNotFound)
	}
	return r, err
}

// ListRuns returns every run, oldest first.
func (s *Postgres) ListRuns(ctx context.Context) ([]Run, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+runColumns+` FROM runs ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return collect(rows, scanRun)
}

// Counts summarises a run.
func (s *Postgres) Counts(ctx context.Context, run int64) (Counts, error) {
	c := Counts{ByStatus: map[result.Status]int{}}
	rows, err := s.pool.Query(ctx, `SELECT done, status, count(*) FROM domains WHERE run_id = $1 GROUP BY done, status`, run)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	if err := readCounts(rows, &c); err != nil {
		return c, err
	}
	err = s.pool.QueryRow(ctx, `SELECT count(*) FROM addresses WHERE run_id = $1`, run).Scan(&c.Addresses)
	return c, err
}

// AddDomains inserts list entries; a duplicate keeps the better rank. Entries are
// folded by name first, so that one statement inserts them all.
func (s *Postgres) AddDomains(ctx context.Context, run int64, es []domains.Entry) (int, error) {
	at := map[string]int{}
	var names, tlds, suffixes []string
	var ranks []int64
	for _, e := range es {
		if i, ok := at[e.Name]; ok {
			ranks[i] = min(ranks[i], int64(e.Rank))
			continue
		}
		at[e.Name] = len(names)
		names, tlds, suffixes = append(names, e.Name), append(tlds, e.TLD), append(suffixes, e.Suffix)
		ranks = append(ranks, int64(e.Rank))
	}
	// xmax is 0 on a row this statement inserted and set on one it updated.
	var n int
	err := s.pool.QueryRow(ctx, `WITH ins AS (
		INSERT INTO domains (run_id, name, rank, tld, suffix)
		SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::text[], $5::text[])
		ON CONFLICT (run_id, name) DO UPDATE SET rank = LEAST(domains.rank, excluded.rank)
		RETURNING xmax = 0 AS new)
		SELECT count(*) FILTER (WHERE new) FROM ins`, run, names, ranks, tlds, suffixes).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("add %d domains: %w", len(names), err)
	}
	return n, nil
}

// KeepTop keeps the n best-ranked domains of each TLD.
func (s *Postgres) KeepTop(ctx context.Context, run int64, n int) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM domains WHERE run_id = $1 AND name IN (
		SELECT name FROM (SELECT name, row_number() OVER (PARTITION BY tld ORDER BY rank, name) AS rn
			FROM domains WHERE run_id = $1) t WHERE rn > $2)`, run, n)
	if err != nil {
		return 0, fmt.Errorf("keep top %d: %w", n, err)
	}
	return int(tag.RowsAffected()), nil
}

// batch is a pgx.Batch whose statements carry a label for their errors.
type batch struct {
	b      pgx.Batch
	labels []string
}

func (b *batch) add(label, sql string, args ...any) {
	b.b.Queue(sql, args...)
	b.labels = append(b.labels, label)
}

// run sends the batch in the transaction and checks every statement.
func (b *batch) run(ctx context.Context, tx pgx.Tx) error {
	if len(b.labels) == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, &b.b)
	for _, l := range b.labels {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("%s: %w", l, err)
		}
	}
	return br.Close()
}

// inTx runs fn in a transaction, committed when fn succeeds.
func (s *Postgres) inTx(ctx context.Context, what string, fn func(pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback(ctx)
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}
