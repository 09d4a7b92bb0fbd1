package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/v6matrix/v6matrix/internal/probe/dns53"
	"github.com/v6matrix/v6matrix/internal/result"
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

// NSChecked returns, per domain, the name server addresses whose SOA check the run
// already has (so that a resumed probe stage does not ask them again).
func (s *SQLite) NSChecked(ctx context.Context, run int64) (map[string]map[netip.Addr]bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT domain, ip FROM ns_checks WHERE run_id = ?`, run)
	if err != nil {
		return nil, fmt.Errorf("read name server checks: %w", err)
	}
	defer rows.Close()
	out := map[string]map[netip.Addr]bool{}
	for rows.Next() {
		var domain, ip string
		if err := rows.Scan(&domain, &ip); err != nil {
			return nil, err
		}
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, fmt.Errorf("damaged name server check address %q: %w", ip, err)
		}
		if out[domain] == nil {
			out[domain] = map[netip.Addr]bool{}
		}
		out[domain][a] = true
	}
	return out, rows.Err()
}

// loadNSChecks fills the SOA checks of the page's domains.
func (s *SQLite) loadNSChecks(ctx context.Context, run int64, page []Detail) error {
	names := make([]string, len(page))
	at := map[string]int{}
	for i, d := range page {
		names[i], at[d.Name] = d.Name, i
	}
	js, _ := json.Marshal(names)
	rows, err := s.query(ctx, `SELECT domain, ip, data FROM ns_checks
		WHERE run_id = ? AND domain IN (SELECT value FROM json_each(?))`, run, string(js))
	if err != nil {
		return fmt.Errorf("read name server checks: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var domain, ip, data string
		if err := rows.Scan(&domain, &ip, &data); err != nil {
			return err
		}
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return fmt.Errorf("damaged name server check address %q: %w", ip, err)
		}
		var r dns53.Result
		if err := json.Unmarshal([]byte(data), &r); err != nil {
			return fmt.Errorf("domain %s: damaged name server check of %s: %w", domain, ip, err)
		}
		d := &page[at[domain]]
		if d.NSChecks == nil {
			d.NSChecks = map[netip.Addr]*dns53.Result{}
		}
		d.NSChecks[a] = &r
	}
	return rows.Err()
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
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return fmt.Errorf("damaged measurement address %q: %w", ip, err)
		}
		ad, ok := addrs[a]
		if !ok {
			ad = result.Address{IP: a}
		}
		field := ad.Measurement(kind)
		if field == nil {
			continue // a kind this version does not know: kept in the store, not shown
		}
		if err := json.Unmarshal([]byte(data), field); err != nil {
			return fmt.Errorf("address %s: damaged %s measurement: %w", ip, kind, err)
		}
		addrs[a] = ad
	}
	return rows.Err()
}
