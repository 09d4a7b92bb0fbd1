package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"

	"github.com/jackc/pgx/v5"

	"github.com/v6matrix/v6matrix/internal/result"
)

// Pending returns unfinished domains after the cursor.
func (s *Postgres) Pending(ctx context.Context, run int64, after Cursor, limit int) ([]result.Domain, error) {
	rows, err := s.pool.Query(ctx, `SELECT name, rank, tld, suffix FROM domains
		WHERE run_id = $1 AND (rank, name) > ($2, $3) AND NOT done
		ORDER BY rank, name LIMIT $4`, run, after.Rank, after.Name, limit)
	if err != nil {
		return nil, fmt.Errorf("pending domains: %w", err)
	}
	defer rows.Close()
	var out []result.Domain
	for rows.Next() {
		var d result.Domain
		if err := rows.Scan(&d.Name, &d.Rank, &d.TLD, &d.Suffix); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Save writes a batch in one transaction.
func (s *Postgres) Save(ctx context.Context, run int64, b Batch) error {
	return s.inTx(ctx, "save", func(tx pgx.Tx) error {
		var q batch
		for i := range b.Domains {
			d := &b.Domains[i]
			q.add("save domain "+d.Name, `UPDATE domains SET done = true, status = $1, error = $2, null_mx = $3,
				soa_mname = $4, soa_rname = $5, soa_serial = $6, soa_refresh = $7, soa_retry = $8, soa_expire = $9, soa_minimum = $10,
				soa_primary = $11, soa_inhouse = $12, soa_total = $13, hosts = $14 WHERE run_id = $15 AND name = $16`,
				append(domainDoneArgs(d), run, d.Name)...)
		}
		for i := range b.Hosts {
			h := &b.Hosts[i]
			q.add("save host "+h.Name, `INSERT INTO hosts (run_id, name, status, cname, v4, v6) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (run_id, name) DO UPDATE SET status = excluded.status, cname = excluded.cname, v4 = excluded.v4, v6 = excluded.v6`,
				append([]any{run}, hostArgs(h)...)...)
		}
		for i := range b.Addresses {
			a := &b.Addresses[i]
			q.add("save address "+a.IP.String(), `INSERT INTO addresses (run_id, ip, family, valid, class, prefixid, iid)
				VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (run_id, ip) DO NOTHING`,
				append([]any{run}, addressArgs(a)...)...)
		}
		return q.run(ctx, tx)
	})
}

// SaveMeasurements writes measurements in one transaction; a kind measured again
// replaces the earlier value.
func (s *Postgres) SaveMeasurements(ctx context.Context, run int64, ms []Measurement) error {
	return s.inTx(ctx, "save measurements", func(tx pgx.Tx) error {
		var q batch
		for _, m := range ms {
			js, err := json.Marshal(m.Value)
			if err != nil {
				return fmt.Errorf("save %s of %s: %w", m.Kind, m.IP, err)
			}
			q.add("save "+m.Kind+" of "+m.IP.String(), `INSERT INTO measurements (run_id, ip, kind, data) VALUES ($1, $2, $3, $4)
				ON CONFLICT (run_id, ip, kind) DO UPDATE SET data = excluded.data`, run, m.IP.String(), m.Kind, string(js))
		}
		return q.run(ctx, tx)
	})
}

// Measured returns, per address, the kinds already measured in the run.
func (s *Postgres) Measured(ctx context.Context, run int64) (map[netip.Addr]map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT ip, kind FROM measurements WHERE run_id = $1`, run)
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
func (s *Postgres) MeasuredKinds(ctx context.Context, run int64) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT kind FROM measurements WHERE run_id = $1`, run)
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

// Details calls fn for every domain of the run, in (rank, name) order, a page at a time.
func (s *Postgres) Details(ctx context.Context, run int64, fn func(Detail) error) error {
	after := Cursor{Rank: -1}
	for {
		page, err := s.details(ctx, run, `(rank, name) > ($2, $3) ORDER BY rank, name LIMIT $4`,
			after.Rank, after.Name, detailPage)
		if err != nil {
			return err
		}
		for _, d := range page {
			if err := fn(d); err != nil {
				return err
			}
		}
		if len(page) < detailPage {
			return nil
		}
		last := page[len(page)-1]
		after = Cursor{Rank: last.Rank, Name: last.Name}
	}
}

// details reads the domains that the condition (a fixed SQL text with $2... for the
// arguments, never input) selects, with their hosts and addresses.
func (s *Postgres) details(ctx context.Context, run int64, cond string, args ...any) ([]Detail, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+domainColumns+` FROM domains WHERE run_id = $1 AND `+cond,
		append([]any{run}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("read domains: %w", err)
	}
	defer rows.Close()
	var page []Detail
	hostNames := map[string]bool{}
	for rows.Next() {
		d, err := scanDomain(rows)
		if err != nil {
			return nil, err
		}
		for _, h := range d.Hosts {
			hostNames[h.Name] = true
		}
		page = append(page, d)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	hosts, addrs, err := s.hostsAndAddrs(ctx, run, hostNames)
	if err != nil {
		return nil, err
	}
	for i := range page {
		page[i].HostsByName, page[i].Addrs = hosts, addrs
	}
	return page, nil
}

// hostsAndAddrs reads the named hosts, all their addresses and their measurements.
func (s *Postgres) hostsAndAddrs(ctx context.Context, run int64, names map[string]bool) (map[string]result.Host, map[netip.Addr]result.Address, error) {
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	rows, err := s.pool.Query(ctx, `SELECT name, status, cname, v4, v6 FROM hosts WHERE run_id = $1 AND name = ANY($2)`, run, list)
	if err != nil {
		return nil, nil, fmt.Errorf("read hosts: %w", err)
	}
	defer rows.Close()
	hosts := map[string]result.Host{}
	ips := map[string]bool{}
	for rows.Next() {
		h, err := scanHost(rows)
		if err != nil {
			return nil, nil, err
		}
		for _, a := range append(h.V4[:len(h.V4):len(h.V4)], h.V6...) {
			ips[a.String()] = true
		}
		hosts[h.Name] = h
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	list = list[:0]
	for ip := range ips {
		list = append(list, ip)
	}
	arows, err := s.pool.Query(ctx, `SELECT ip, valid, class, prefixid, iid FROM addresses WHERE run_id = $1 AND ip = ANY($2)`, run, list)
	if err != nil {
		return nil, nil, fmt.Errorf("read addresses: %w", err)
	}
	defer arows.Close()
	addrs := map[netip.Addr]result.Address{}
	for arows.Next() {
		ad, err := scanAddress(arows)
		if err != nil {
			return nil, nil, err
		}
		addrs[ad.IP] = ad
	}
	if err := arows.Err(); err != nil {
		return nil, nil, err
	}
	mrows, err := s.pool.Query(ctx, `SELECT ip, kind, data FROM measurements WHERE run_id = $1 AND ip = ANY($2)`, run, list)
	if err != nil {
		return nil, nil, fmt.Errorf("read measurements: %w", err)
	}
	defer mrows.Close()
	for mrows.Next() {
		var ip, kind, data string
		if err := mrows.Scan(&ip, &kind, &data); err != nil {
			return nil, nil, err
		}
		if err := addMeasurement(addrs, ip, kind, data); err != nil {
			return nil, nil, err
		}
	}
	return hosts, addrs, mrows.Err()
}
