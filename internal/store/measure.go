package store

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
)

// Measurement is one probe result of one address: Value is the typed result (the
// field of result.Address that Kind names), stored as JSON. Domain is set for a result
// that belongs to one domain rather than to the address (dns53: the domain's SOA asked
// of one of its name server addresses). Vantage is where it was measured from: "" is
// the run's own vantage (Run.Vantage).
type Measurement struct {
	IP      netip.Addr
	Kind    string
	Value   any
	Domain  string
	Vantage string
}

// SaveMeasurements writes measurements in one transaction; a kind measured again
// from the same vantage replaces the earlier value.
func (s *SQLite) SaveMeasurements(ctx context.Context, run int64, ms []Measurement) error {
	own, err := s.vantage(ctx, run, "")
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save measurements: %w", err)
	}
	defer tx.Rollback()
	st, err := tx.PrepareContext(ctx, `INSERT INTO measurements (run_id, vantage, ip, kind, data) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (run_id, vantage, ip, kind) DO UPDATE SET data = excluded.data`)
	if err != nil {
		return err
	}
	defer st.Close()
	nst, err := tx.PrepareContext(ctx, `INSERT INTO ns_checks (run_id, vantage, domain, ip, data) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (run_id, vantage, domain, ip) DO UPDATE SET data = excluded.data`)
	if err != nil {
		return err
	}
	defer nst.Close()
	for _, i := range keyOrder(ms, measurementKey) {
		m := &ms[i]
		js, err := json.Marshal(m.Value)
		if err != nil {
			return fmt.Errorf("save %s of %s: %w", m.Kind, m.IP, err)
		}
		v := cmp.Or(m.Vantage, own)
		if m.Domain != "" {
			_, err = nst.ExecContext(ctx, run, v, m.Domain, m.IP.String(), string(js))
		} else {
			_, err = st.ExecContext(ctx, run, v, m.IP.String(), m.Kind, string(js))
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

// measurementKey orders measurements by the keys of both their tables (a check's
// domain, then the address and kind).
func measurementKey(m *Measurement) string {
	return m.Vantage + "\x00" + m.Domain + "\x00" + m.IP.String() + "\x00" + m.Kind
}

// Measured returns, per address, the kinds a vantage already measured in the run (so
// that a resumed probe stage does not probe them again).
func (s *SQLite) Measured(ctx context.Context, run int64, vantage string) (map[netip.Addr]map[string]bool, error) {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT ip, kind FROM measurements WHERE run_id = ? AND vantage = ?`, run, v)
	if err != nil {
		return nil, fmt.Errorf("read measurements: %w", err)
	}
	defer rows.Close()
	return readMeasured(rows)
}

// NSChecked returns, per domain, the name server addresses whose SOA check a vantage
// already has (so that a resumed probe stage does not ask them again).
func (s *SQLite) NSChecked(ctx context.Context, run int64, vantage string) (map[string]map[netip.Addr]bool, error) {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT domain, ip FROM ns_checks WHERE run_id = ? AND vantage = ?`, run, v)
	if err != nil {
		return nil, fmt.Errorf("read name server checks: %w", err)
	}
	defer rows.Close()
	return readNSChecked(rows)
}

// MeasuredKinds returns the kinds that have at least one measurement of a vantage in
// the run (dns53 when a name server check was saved).
func (s *SQLite) MeasuredKinds(ctx context.Context, run int64, vantage string) (map[string]bool, error) {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT kind FROM measurements WHERE run_id = ?1 AND vantage = ?2
		UNION SELECT 'dns53' FROM ns_checks WHERE run_id = ?1 AND vantage = ?2`, run, v)
	if err != nil {
		return nil, fmt.Errorf("read measurement kinds: %w", err)
	}
	defer rows.Close()
	return readKinds(rows)
}

// Vantages lists the run's vantages, its own first.
func (s *SQLite) Vantages(ctx context.Context, run int64) ([]string, error) {
	return vantages(ctx, s.rows, &sqliteVantages, run)
}

// VantageResults compares two vantages' results (Store.VantageResults).
func (s *SQLite) VantageResults(ctx context.Context, run int64, a, b string, kinds []string, after string, fn func(VantagePair) bool) error {
	return vantageResults(ctx, s.rows, &sqliteVantages, run, a, b, kinds, after, fn)
}

// vantage returns v, or the run's own vantage when v is "".
func (s *SQLite) vantage(ctx context.Context, run int64, v string) (string, error) {
	return vantageOf(ctx, s.rows, &sqliteVantages, run, v)
}

// rows runs a read query (a queryFunc).
func (s *SQLite) rows(ctx context.Context, sql string, args ...any) (rowIter, func(), error) {
	rows, err := s.query(ctx, sql, args...)
	if err != nil {
		return nil, nil, err
	}
	return rows, func() { rows.Close() }, nil
}

// sqliteVantages are the vantage queries. The distinct vantages of a run are found by
// seeking the primary key from one to the next (a recursive query), not by reading
// every measurement of the run.
var sqliteVantages = vantageQueries{
	own: `SELECT vantage FROM runs WHERE id = ?`,
	others: `WITH RECURSIVE
		m(v) AS (SELECT min(vantage) FROM measurements WHERE run_id = ?1
			UNION ALL SELECT (SELECT min(vantage) FROM measurements WHERE run_id = ?1 AND vantage > m.v) FROM m WHERE m.v IS NOT NULL),
		c(v) AS (SELECT min(vantage) FROM ns_checks WHERE run_id = ?1
			UNION ALL SELECT (SELECT min(vantage) FROM ns_checks WHERE run_id = ?1 AND vantage > c.v) FROM c WHERE c.v IS NOT NULL)
		SELECT v FROM m WHERE v IS NOT NULL AND v <> ?2 UNION SELECT v FROM c WHERE v IS NOT NULL AND v <> ?2 ORDER BY 1`,
	pairs: `SELECT a.ip, a.kind, a.data, b.data FROM measurements a
		LEFT JOIN measurements b ON b.run_id = a.run_id AND b.vantage = ?3 AND b.ip = a.ip AND b.kind = a.kind
		WHERE a.run_id = ?1 AND a.vantage = ?2 AND a.ip > ?4 AND a.kind IN (SELECT value FROM json_each(?5))
		ORDER BY a.ip, a.kind`,
	results: `SELECT ip, kind, data, NULL FROM measurements
		WHERE run_id = ?1 AND vantage = ?2 AND ip > ?3 AND kind IN (SELECT value FROM json_each(?4))
		ORDER BY ip, kind`,
	list: func(kinds []string) any {
		js, _ := json.Marshal(kinds)
		return string(js)
	},
}
