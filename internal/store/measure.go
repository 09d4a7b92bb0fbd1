package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
)

// Measurement is one probe result of one address: Value is the typed result (the
// field of result.Address that Kind names), stored as JSON.
type Measurement struct {
	IP    netip.Addr
	Kind  string
	Value any
}

// SaveMeasurements writes measurements in one transaction; a kind measured again
// replaces the earlier value.
func (s *SQLite) SaveMeasurements(ctx context.Context, run int64, ms []Measurement) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save measurements: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO measurements (run_id, ip, kind, data) VALUES (?, ?, ?, ?)
		ON CONFLICT (run_id, ip, kind) DO UPDATE SET data = excluded.data`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, m := range ms {
		js, err := json.Marshal(m.Value)
		if err != nil {
			return fmt.Errorf("save %s of %s: %w", m.Kind, m.IP, err)
		}
		if _, err := st.ExecContext(ctx, run, m.IP.String(), m.Kind, string(js)); err != nil {
			return fmt.Errorf("save %s of %s: %w", m.Kind, m.IP, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save measurements: %w", err)
	}
	return nil
}

// Measured returns, per address, the kinds already measured in the run (so that a
// resumed probe stage does not probe them again).
func (s *SQLite) Measured(ctx context.Context, run int64) (map[netip.Addr]map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT ip, kind FROM measurements WHERE run_id = ?`, run)
	if err != nil {
		return nil, fmt.Errorf("read measurements: %w", err)
	}
	defer rows.Close()
	return readMeasured(rows)
}

// MeasuredKinds returns the kinds that have at least one measurement in the run.
func (s *SQLite) MeasuredKinds(ctx context.Context, run int64) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT kind FROM measurements WHERE run_id = ?`, run)
	if err != nil {
		return nil, fmt.Errorf("read measurement kinds: %w", err)
	}
	defer rows.Close()
	return readKinds(rows)
}
