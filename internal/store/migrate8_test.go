package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/v6matrix/v6matrix/internal/store/pgtest"
)

// version7Rows is how many measurements (and as many name server checks) each run
// of the version-7 store holds; V6MATRIX_MIGRATE_ROWS sets another number (the figure
// in docs/POSTGRES.md was measured with 1000000).
func version7Rows(t *testing.T) int {
	n := 3000
	if v := os.Getenv("V6MATRIX_MIGRATE_ROWS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatalf("V6MATRIX_MIGRATE_ROWS=%q: %v", v, err)
		}
	}
	return n
}

// version7 is what fillVersion7 writes: statements of the schema at version 7 and of
// its rows, for two runs (vantages "east" and "").
func version7(migs []string, rows int) []string {
	stmts := append([]string{`CREATE TABLE schema_version (version INTEGER NOT NULL)`, `INSERT INTO schema_version VALUES (7)`}, migs[:7]...)
	stmts = append(stmts, `INSERT INTO runs (id, started, list_name, vantage, state) VALUES
		(1, '2026-11-01T00:00:00Z', 'l.csv', 'east', 'done'), (2, '2026-12-01T00:00:00Z', 'l.csv', '', 'done')`)
	for run := 1; run <= 2; run++ {
		for start := 0; start < rows; start += 1000 {
			var ms, cs []string
			for i := start; i < min(start+1000, rows); i++ {
				ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
				ms = append(ms, fmt.Sprintf("(%d, '%s', 'ping', '{\"Sent\":%d}')", run, ip, i))
				cs = append(cs, fmt.Sprintf("(%d, 'd%d.example', '%s', '{\"Status\":\"ok\"}')", run, i, ip))
			}
			stmts = append(stmts, `INSERT INTO measurements (run_id, ip, kind, data) VALUES `+strings.Join(ms, ", "),
				`INSERT INTO ns_checks (run_id, domain, ip, data) VALUES `+strings.Join(cs, ", "))
		}
	}
	return stmts
}

// checkMigrated requires every row of the version-7 store, under its run's vantage,
// with its data, and the new key in force.
func checkMigrated(t *testing.T, s Store, rows int) {
	t.Helper()
	ctx := context.Background()
	for run, v := range map[int64]string{1: "east", 2: ""} {
		m, err := s.Measured(ctx, run, v)
		if err != nil || len(m) != rows {
			t.Errorf("run %d: %d addresses measured from %q, %v; want %d", run, len(m), v, err, rows)
		}
		c, err := s.NSChecked(ctx, run, "")
		if err != nil || len(c) != rows {
			t.Errorf("run %d: %d domains checked, %v; want %d", run, len(c), err, rows)
		}
		if vs, err := s.Vantages(ctx, run); err != nil || len(vs) != 1 || vs[0] != v {
			t.Errorf("run %d: vantages %q, %v; want [%q]", run, vs, err, v)
		}
	}
	var sent []int
	ip := netip.MustParseAddr("10.0.0.7")
	if err := s.VantageResults(ctx, 1, "", "", []string{"ping"}, "", func(p VantagePair) bool {
		if p.A.IP == ip {
			sent = append(sent, p.A.Ping.Sent)
		}
		return true
	}); err != nil || len(sent) != 1 || sent[0] != 7 {
		t.Errorf("run 1's ping of %s after the migration: %v, %v; want Sent 7", ip, sent, err)
	}
	// The same address and kind from a second vantage is a second row.
	if err := s.SaveMeasurements(ctx, 1, []Measurement{{IP: ip, Kind: "ping", Value: map[string]int{"Sent": 1}, Vantage: "west"}}); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Measured(ctx, 1, "west"); err != nil || len(m) != 1 {
		t.Errorf("measured from west after the migration: %v, %v", m, err)
	}
}

// TestMigrate8SQLite: a store at version 7 keeps every measurement and check, under
// its run's vantage.
func TestMigrate8SQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v7.db")
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		t.Fatal(err)
	}
	rows := version7Rows(t)
	for _, st := range version7(migrations, rows) {
		if _, err := db.ExecContext(ctx, st); err != nil {
			t.Fatalf("%.80s: %v", st, err)
		}
	}
	db.Close()
	t0 := time.Now()
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Logf("migration 8 of %d measurements and %d checks: %v", 2*rows, 2*rows, time.Since(t0))
	if v, err := s.version(ctx); err != nil || v != len(migrations) {
		t.Fatalf("version %d, %v", v, err)
	}
	checkMigrated(t, s, rows)
}

// TestMigrate8Postgres is TestMigrate8SQLite on PostgreSQL.
func TestMigrate8Postgres(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	rows := version7Rows(t)
	for _, st := range version7(pgMigrations, rows) {
		if _, err := conn.Exec(ctx, st); err != nil {
			t.Fatalf("%.80s: %v", st, err)
		}
	}
	conn.Close(ctx)
	t0 := time.Now()
	s, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t.Logf("migration 8 of %d measurements and %d checks: %v", 2*rows, 2*rows, time.Since(t0))
	checkMigrated(t, s, rows)
}
