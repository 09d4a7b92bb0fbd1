package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
)

// Measurement is one probe result of one address: Value is the typed result (the
// field of result.Address that Kind names), stored as JSON. Domain is set for a result
// that belongs to one domain rather than to the address (dns53: the domain's SOA asked
// of one of its name server addresses).
type Measurement struct {
	IP     netip.Addr
	Kind   string
	Value  any
	Domain string
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
	nst, err := tx.PrepareContext(ctx, `INSERT INTO ns_checks (run_id, domain, ip, data) VALUES (?, ?, ?, ?)
		ON CONFLICT (run_id, domain, ip) DO UPDATE SET data = excluded.data`)
	if err != nil {
		return err
	}
	defer nst.Close()
	for _, m := range ms {
		js, err := json.Marshal(m.Value)
		if err != nil {
			return fmt.Errorf("save %s of %s: %w", m.Kind, m.IP, err)
		}
		if m.Domain != "" {
			_, err = nst.ExecContext(ctx, run, m.Domain, m.IP.String(), string(js))
		} else {
			_, err = st.ExecContext(ctx, run, m.IP.String(), m.Kind, string(js))
		}
		if err != nil {
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

// NSChecked returns, per domain, the name server addresses whose SOA check the run
// already has (so that a resumed probe stage does not ask them again).
func (s *SQLite) NSChecked(ctx context.Context, run int64) (map[string]map[netip.Addr]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT domain, ip FROM ns_checks WHERE run_id = ?`, run)
	if err != nil {
		return nil, fmt.Errorf("read name server checks: %w", err)
	}
	defer rows.Close()
	return readNSChecked(rows)
}

// MeasuredKinds returns the kinds that have at least one measurement in the run (dns53
// when a name server check was saved).
func (s *SQLite) MeasuredKinds(ctx context.Context, run int64) (map[string]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT kind FROM measurements WHERE run_id = ?
		UNION SELECT 'dns53' FROM ns_checks WHERE run_id = ?`, run, run)
	if err != nil {
		return nil, fmt.Errorf("read measurement kinds: %w", err)
	}
	defer rows.Close()
	return readKinds(rows)
}
