package store

import (
	"context"
	"fmt"
	"strings"
)

// runColumnNames are the columns that tie a row to a run: every table with one of them
// holds rows DeleteRun removes. New tables are covered without a change here.
var runColumnNames = []string{"run_id", "run_a", "run_b"}

// runTable is one (table, run column) pair.
type runTable struct{ table, column string }

// tableRows is what scanRunTables reads: database/sql's and pgx's rows alike.
type tableRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// scanRunTables reads the (table, column) rows of a catalogue query.
func scanRunTables(rows tableRows) ([]runTable, error) {
	var ts []runTable
	for rows.Next() {
		var t runTable
		if err := rows.Scan(&t.table, &t.column); err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	return ts, rows.Err()
}

// DeleteRun removes a run and every row of it (domains, hosts, addresses,
// measurements, its list, its summary, its diffs with other runs), in one transaction.
// It does not look at the run's state: callers refuse a run still in progress.
func (s *SQLite) DeleteRun(ctx context.Context, id int64) error {
	if _, err := s.GetRun(ctx, id); err != nil {
		return err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND p.name IN ('`+strings.Join(runColumnNames, "','")+`') ORDER BY m.name, p.name`)
	if err != nil {
		return fmt.Errorf("delete run %d: %w", id, err)
	}
	ts, err := scanRunTables(rows)
	rows.Close()
	if err != nil {
		return fmt.Errorf("delete run %d: %w", id, err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, t := range ts {
		if _, err := tx.ExecContext(ctx, `DELETE FROM "`+t.table+`" WHERE "`+t.column+`" = ?`, id); err != nil {
			return fmt.Errorf("delete run %d from %s: %w", id, t.table, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM runs WHERE id = ?`, id); err != nil {
		return fmt.Errorf("delete run %d: %w", id, err)
	}
	return tx.Commit()
}

// DeleteRun removes a run and every row of it, in one transaction (see SQLite.DeleteRun).
func (s *Postgres) DeleteRun(ctx context.Context, id int64) error {
	if _, err := s.GetRun(ctx, id); err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND column_name = ANY($1) ORDER BY table_name, column_name`, runColumnNames)
	if err != nil {
		return fmt.Errorf("delete run %d: %w", id, err)
	}
	ts, err := scanRunTables(rows)
	rows.Close()
	if err != nil {
		return fmt.Errorf("delete run %d: %w", id, err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	for _, t := range ts {
		if _, err := tx.Exec(ctx, `DELETE FROM "`+t.table+`" WHERE "`+t.column+`" = $1`, id); err != nil {
			return fmt.Errorf("delete run %d from %s: %w", id, t.table, err)
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM runs WHERE id = $1`, id); err != nil {
		return fmt.Errorf("delete run %d: %w", id, err)
	}
	return tx.Commit(ctx)
}
