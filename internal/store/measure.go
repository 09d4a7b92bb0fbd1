package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/v6matrix/v6matrix/internal/result"
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
	out := map[netip.Addr]map[string]bool{}
	for rows.Next() {
		var ip, kind string
		if err := rows.Scan(&ip, &kind); err != nil {
			return nil, err
		}
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, fmt.Errorf("damaged measurement address %q: %w", ip, err)
		}
		if out[a] == nil {
			out[a] = map[string]bool{}
		}
		out[a][kind] = true
	}
	return out, rows.Err()
}

// MeasuredKinds returns the kinds that have at least one measurement in the run.
func (s *SQLite) MeasuredKinds(ctx context.Context, run int64) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT kind FROM measurements WHERE run_id = ?`, run)
	if err != nil {
		return nil, fmt.Errorf("read measurement kinds: %w", err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		out[k] = true
	}
	return out, rows.Err()
}

// loadMeasurements fills the addresses' measurement fields.
func (s *SQLite) loadMeasurements(ctx context.Context, run int64, ipsJSON string, addrs map[netip.Addr]result.Address) error {
	rows, err := s.query(ctx, `SELECT ip, kind, data FROM measurements
		WHERE run_id = ? AND ip IN (SELECT value FROM json_each(?))`, run, ipsJSON)
	if err != nil {
		return fmt.Errorf("read measurements: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var ip, kind, data string
		if err := rows.Scan(&ip, &kind, &data); err != nil {
			return err
		}
		if err := addMeasurement(addrs, ip, kind, data); err != nil {
			return err
		}
	}
	return rows.Err()
}
