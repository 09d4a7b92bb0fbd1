package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // the database/sql driver "sqlite", pure Go
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/result"
)

// SQLite is the embedded store: one file, WAL mode, versioned migrations.
type SQLite struct {
	db    *sql.DB
	path  string
	stmts sync.Map // query text -> *sql.Stmt, for the read paths the website repeats
	docs  *docEncoder
}

// query runs a read query through a prepared statement kept for its text (the text
// is always one of the package's fixed queries, never input): parsing SQL was an
// eighth of a domain page's time.
func (s *SQLite) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := s.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// queryRow is query for one row.
func (s *SQLite) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	st, err := s.prepared(ctx, q)
	if err != nil {
		return s.db.QueryRowContext(ctx, q, args...) // the same error, as a Row
	}
	return st.QueryRowContext(ctx, args...)
}

func (s *SQLite) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(q); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if old, loaded := s.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		return old.(*sql.Stmt), nil
	}
	return st, nil
}

// OpenSQLite opens (creating if needed) the database file and migrates it to the
// current schema. A file that is not a v6matrix database gives an error naming it.
// Several processes may open one file at once: the migrations run in one IMMEDIATE
// transaction (the first process migrates, the others wait and find it done), and every
// write transaction takes the write lock at its start, so that two crawls of one
// database wait for each other instead of failing with "database is locked".
func OpenSQLite(ctx context.Context, path string) (*SQLite, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("database %s: is a directory", path)
	}
	// Opening a new file while another process turns it to WAL can fail at once with
	// SQLITE_BUSY, without waiting for busy_timeout (the journal mode's change needs the
	// file to itself): try again a few times (seen with 8 openers on a loaded machine).
	for wait := 20 * time.Millisecond; ; wait *= 2 {
		s, err := openSQLite(ctx, path)
		if err == nil || !isBusy(err) || wait > 2*time.Second {
			return s, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
	}
}

// isBusy reports whether err is SQLite's "database is locked" (SQLITE_BUSY).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// openSQLite is one attempt of OpenSQLite.
func openSQLite(ctx context.Context, path string) (*SQLite, error) {
	db, err := sql.Open("sqlite", dsn(path, "_txlock=immediate"))
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	s := &SQLite{db: db, path: path, docs: newDocEncoder()}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	return s, nil
}

// OpenSQLiteReadOnly opens an existing database for reading only (runs, export, the
// website): a missing file is an error, not a new empty database, and a file or
// directory the user may not write is still read.
func OpenSQLiteReadOnly(ctx context.Context, path string) (*SQLite, error) {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("database %s: no such database (give --db the file a crawl wrote)", path)
	case err != nil:
		return nil, fmt.Errorf("database %s: %w", path, err)
	case fi.IsDir():
		return nil, fmt.Errorf("database %s: is a directory", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", path, err)
	}
	f.Close()
	s, err := openReadOnly(ctx, path, "mode=ro")
	if err != nil && !walPending(path) {
		// A WAL database in a directory we may not write cannot get its -shm file; with
		// no WAL content pending, reading it as immutable loses nothing.
		if s2, err2 := openReadOnly(ctx, path, "immutable=1"); err2 == nil {
			s, err = s2, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("database %s: not a usable SQLite database (%w)", path, err)
	}
	v, err := s.version(ctx)
	switch {
	case err != nil:
		s.Close()
		return nil, fmt.Errorf("database %s: %w", path, err)
	case v > len(migrations):
		s.Close()
		return nil, fmt.Errorf("database %s: schema version %d is newer than this v6matrix knows (%d): upgrade v6matrix", path, v, len(migrations))
	case v < len(migrations):
		// An older schema: migrate it if we may write it, else say what to do.
		s.Close()
		rw, err := OpenSQLite(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("%w (schema version %d is older than this v6matrix's %d and must be upgraded once by a user who may write it)", err, v, len(migrations))
		}
		return rw, nil
	}
	return s, nil
}

func openReadOnly(ctx context.Context, path, mode string) (*SQLite, error) {
	db, err := sql.Open("sqlite", dsn(path, mode))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(4)
	s := &SQLite{db: db, path: path, docs: newDocEncoder()}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// walPending reports whether the database has a non-empty write-ahead log beside it.
func walPending(path string) bool {
	fi, err := os.Stat(path + "-wal")
	return err == nil && fi.Size() > 0
}

// dsn is the driver's name of the file with our pragmas and extra query parameters.
// busy_timeout comes first so that the pragmas after it wait for a lock too. The WAL
// is checkpointed every 16,000 pages (64 MB), not 1,000: the probe stage's rows land
// on random pages, and every few commits copied them into the file with an fsync
// (BenchmarkSaveMeasurements: 0.67x the time per row at 2,000 rows a transaction).
func dsn(path string, extra ...string) string {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(30000)", "journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)", "wal_autocheckpoint(16000)"} {
		q.Add("_pragma", p)
	}
	for _, e := range extra {
		k, v, _ := strings.Cut(e, "=")
		q.Add(k, v)
	}
	if q.Get("mode") == "ro" || q.Get("immutable") == "1" {
		q["_pragma"] = []string{"busy_timeout(30000)", "foreign_keys(1)"} // no journal change on a file we may not write
	}
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q.Encode()
}

// Close closes the database.
func (s *SQLite) Close() error {
	s.docs.drop.Stop()
	s.stmts.Range(func(_, st any) bool {
		st.(*sql.Stmt).Close()
		return true
	})
	return s.db.Close()
}

// version reads the schema version: 0 for an empty database.
func (s *SQLite) version(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("not a usable SQLite database (%w)", err)
	}
	if n == 0 {
		return 0, nil
	}
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

// migrate brings the schema up to date in one IMMEDIATE transaction on one connection:
// a second process opening the file at the same time waits for the lock (busy_timeout)
// and then finds the migrations done.
func (s *SQLite) migrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("not a usable SQLite database (%w)", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		return fmt.Errorf("not a usable SQLite database (%w)", err)
	}
	committed := false
	defer func() {
		if !committed {
			conn.ExecContext(context.Background(), `ROLLBACK`)
		}
	}()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("not a usable SQLite database (%w)", err)
	}
	var v int
	err = conn.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := conn.ExecContext(ctx, `INSERT INTO schema_version VALUES (0)`); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this v6matrix knows (%d): upgrade v6matrix", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if _, err := conn.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if _, err := conn.ExecContext(ctx, `UPDATE schema_version SET version = ?`, len(migrations)); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, `COMMIT`); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	committed = true
	return nil
}

const timeFormat = time.RFC3339Nano

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeFormat)
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(timeFormat, s)
	return t
}

// CreateRun inserts a run and returns its id.
func (s *SQLite) CreateRun(ctx context.Context, r Run) (int64, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO runs (started, list_name, list_sha256, options, vantage, state)
		VALUES (?, ?, ?, ?, ?, ?)`, formatTime(r.Started), r.ListName, r.ListSHA256, r.Options, r.Vantage, string(r.State))
	if err != nil {
		return 0, fmt.Errorf("create run: %w", err)
	}
	return res.LastInsertId()
}

// UpdateRun writes a run's mutable fields.
func (s *SQLite) UpdateRun(ctx context.Context, r Run) error {
	_, err := s.db.ExecContext(ctx, `UPDATE runs SET finished = ?, list_sha256 = ?, options = ?, state = ?, loaded = ?,
		skipped = ?, duplicates = ? WHERE id = ?`,
		formatTime(r.Finished), r.ListSHA256, r.Options, string(r.State), r.Loaded, r.Skipped, r.Duplicates, r.ID)
	if err != nil {
		return fmt.Errorf("update run %d: %w", r.ID, err)
	}
	return nil
}

const runColumns = `id, started, finished, list_name, list_sha256, options, vantage, state, loaded, skipped, duplicates`

func scanRun(sc rowScanner) (Run, error) {
	var r Run
	var started, finished, state string
	err := sc.Scan(&r.ID, &started, &finished, &r.ListName, &r.ListSHA256, &r.Options, &r.Vantage, &state, &r.Loaded, &r.Skipped, &r.Duplicates)
	r.Started, r.Finished, r.State = parseTime(started), parseTime(finished), RunState(state)
	return r, err
}

// GetRun returns one run.
func (s *SQLite) GetRun(ctx context.Context, id int64) (Run, error) {
	r, err := scanRun(s.queryRow(ctx, `SELECT `+runColumns+` FROM runs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("run %d in %s: %w", id, s.path, ErrNotFound)
	}
	return r, err
}

// LatestRun returns the newest run.
func (s *SQLite) LatestRun(ctx context.Context) (Run, error) {
	r, err := scanRun(s.db.QueryRowContext(ctx, `SELECT `+runColumns+` FROM runs ORDER BY id DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("no run in %s: %w", s.path, ErrNotFound)
	}
	return r, err
}

// ListRuns returns every run, oldest first.
func (s *SQLite) ListRuns(ctx context.Context) ([]Run, error) {
	rows, err := s.query(ctx, `SELECT `+runColumns+` FROM runs ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return collect(rows, scanRun)
}

// Counts summarises a run.
func (s *SQLite) Counts(ctx context.Context, run int64) (Counts, error) {
	c := Counts{ByStatus: map[result.Status]int{}}
	rows, err := s.db.QueryContext(ctx, `SELECT done, status, count(*) FROM domains WHERE run_id = ? GROUP BY done, status`, run)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	if err := readCounts(rows, &c); err != nil {
		return c, err
	}
	err = s.db.QueryRowContext(ctx, `SELECT count(*) FROM addresses WHERE run_id = ?`, run).Scan(&c.Addresses)
	return c, err
}

// AddDomains inserts list entries; a duplicate keeps the better rank.
func (s *SQLite) AddDomains(ctx context.Context, run int64, es []domains.Entry) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO domains (run_id, name, rank, tld, suffix) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (run_id, name) DO UPDATE SET rank = min(rank, excluded.rank)`)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	var before, after int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM domains WHERE run_id = ?`, run).Scan(&before); err != nil {
		return 0, err
	}
	for _, e := range es {
		if _, err := st.ExecContext(ctx, run, e.Name, e.Rank, e.TLD, e.Suffix); err != nil {
			return 0, fmt.Errorf("add domain %s: %w", e.Name, err)
		}
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM domains WHERE run_id = ?`, run).Scan(&after); err != nil {
		return 0, err
	}
	return after - before, tx.Commit()
}

// KeepTop keeps the n best-ranked domains of each TLD.
func (s *SQLite) KeepTop(ctx context.Context, run int64, n int) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM domains WHERE run_id = ? AND name IN (
		SELECT name FROM (SELECT name, row_number() OVER (PARTITION BY tld ORDER BY rank, name) AS rn
			FROM domains WHERE run_id = ?) WHERE rn > ?)`, run, run, n)
	if err != nil {
		return 0, fmt.Errorf("keep top %d: %w", n, err)
	}
	k, err := res.RowsAffected()
	return int(k), err
}
