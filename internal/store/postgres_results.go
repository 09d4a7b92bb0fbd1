package store

import (
	"cmp"
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
	return collect(rows, scanPending)
}

// Save writes a batch in one transaction: one statement per table, the rows as arrays.
func (s *Postgres) Save(ctx context.Context, run int64, b Batch) error {
	var doms, hosts, addrs [][]any
	for _, d := range lastOf(b.Domains, func(d *result.Domain) string { return d.Name }) {
		doms = append(doms, append([]any{d.Name}, domainDoneArgs(d)...))
	}
	for _, h := range firstOf(b.Hosts, func(h *result.Host) string { return h.Name }) { // DO NOTHING: as SQLite's
		hosts = append(hosts, hostArgs(h))
	}
	for i := range b.Addresses {
		addrs = append(addrs, addressArgs(&b.Addresses[i])) // DO NOTHING: the first one stays
	}
	return s.inTx(ctx, "save", func(tx pgx.Tx) error {
		var q batch
		if len(doms) > 0 {
			q.add(fmt.Sprintf("save %d domains", len(doms)), `UPDATE domains d SET done = true, status = u.status, error = u.error,
				null_mx = u.null_mx, soa_mname = u.soa_mname, soa_rname = u.soa_rname, soa_serial = u.soa_serial,
				soa_refresh = u.soa_refresh, soa_retry = u.soa_retry, soa_expire = u.soa_expire, soa_minimum = u.soa_minimum,
				soa_primary = u.soa_primary, soa_inhouse = u.soa_inhouse, soa_total = u.soa_total, hosts = u.hosts,
				ns_source = u.ns_source, delegation = u.delegation
				FROM unnest($2::text[], $3::text[], $4::text[], $5::bool[], $6::text[], $7::text[], $8::bigint[], $9::bigint[],
					$10::bigint[], $11::bigint[], $12::bigint[], $13::text[], $14::bool[], $15::bigint[], $16::text[],
					$17::text[], $18::text[])
				AS u(name, status, error, null_mx, soa_mname, soa_rname, soa_serial, soa_refresh, soa_retry, soa_expire,
					soa_minimum, soa_primary, soa_inhouse, soa_total, hosts, ns_source, delegation)
				WHERE d.run_id = $1 AND d.name = u.name`, append([]any{run}, columns(doms)...)...)
		}
		if len(hosts) > 0 {
			q.add(fmt.Sprintf("save %d hosts", len(hosts)), `INSERT INTO hosts (run_id, name, status, cname, v4, v6, a_status, aaaa_status)
				SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
				ON CONFLICT (run_id, name) DO NOTHING`,
				append([]any{run}, columns(hosts)...)...)
		}
		if len(addrs) > 0 {
			q.add(fmt.Sprintf("save %d addresses", len(addrs)), `INSERT INTO addresses (run_id, ip, family, valid, class, prefixid, iid)
				SELECT $1, * FROM unnest($2::text[], $3::int[], $4::bool[], $5::text[], $6::text[], $7::text[])
				ON CONFLICT (run_id, ip) DO NOTHING`, append([]any{run}, columns(addrs)...)...)
		}
		if err := s.saveTargets(ctx, tx, &q, run, b); err != nil {
			return err
		}
		return q.run(ctx, tx)
	})
}

// saveTargets queues the batch's targets, merged into the run's rows (read in the
// transaction), and its name server pairs.
func (s *Postgres) saveTargets(ctx context.Context, tx pgx.Tx, q *batch, run int64, b Batch) error {
	if len(b.Targets) > 0 {
		rows, err := tx.Query(ctx, `SELECT `+targetColumns+` FROM targets WHERE run_id = $1 AND ip = ANY($2::text[])`,
			run, targetIPs(b.Targets))
		if err != nil {
			return fmt.Errorf("read targets: %w", err)
		}
		old, err := collect(rows, scanTarget)
		rows.Close()
		if err != nil {
			return fmt.Errorf("read targets: %w", err)
		}
		var ts [][]any
		for _, t := range mergeTargets(b.Targets, old) {
			ts = append(ts, targetArgs(&t))
		}
		if len(ts) > 0 { // every row unchanged: nothing to write
			q.add(fmt.Sprintf("save %d targets", len(ts)), `INSERT INTO targets (run_id, `+targetColumns+`)
			SELECT $1, * FROM unnest($2::text[], $3::int[], $4::text[], $5::bigint[], $6::text[], $7::bigint[], $8::text[], $9::bigint[])
			ON CONFLICT (run_id, ip) DO UPDATE SET roles = excluded.roles, www = excluded.www, www_rank = excluded.www_rank,
			mx = excluded.mx, mx_rank = excluded.mx_rank, host = excluded.host, host_rank = excluded.host_rank`,
				append([]any{run}, columns(ts)...)...)
		}
	}
	var ns [][]any
	for _, n := range lastOf(b.NSTargets, func(n *NSTarget) string { return n.Domain + " " + n.IP.String() }) {
		ns = append(ns, []any{n.Domain, n.IP.String(), n.Host})
	}
	if len(ns) > 0 {
		q.add(fmt.Sprintf("save %d name server targets", len(ns)), `INSERT INTO ns_targets (run_id, domain, ip, host)
			SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[])
			ON CONFLICT (run_id, domain, ip) DO NOTHING`, append([]any{run}, columns(ns)...)...)
	}
	return nil
}

// Targets pages through the run's targets with the kinds a vantage already measured.
func (s *Postgres) Targets(ctx context.Context, run int64, vantage, after string, limit int) ([]Target, error) {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+targetColumns+`,
		coalesce((SELECT string_agg(kind, ' ') FROM measurements m WHERE m.run_id = t.run_id AND m.vantage = $4 AND m.ip = t.ip), '')
		FROM targets t WHERE run_id = $1 AND ip > $2 ORDER BY ip LIMIT $3`, run, after, limit, v)
	if err != nil {
		return nil, fmt.Errorf("read targets: %w", err)
	}
	defer rows.Close()
	return collect(rows, scanPendingTarget)
}

// PendingNSTargets pages through the name server pairs without a check from a vantage.
func (s *Postgres) PendingNSTargets(ctx context.Context, run int64, vantage string, after NSCursor, limit int) ([]NSTarget, error) {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return nil, err
	}
	return s.nsTargets(ctx, run, after, limit, nsUnchecked("$5"), v)
}

// NSTargets pages through every name server pair of the run, checked or not.
func (s *Postgres) NSTargets(ctx context.Context, run int64, after NSCursor, limit int) ([]NSTarget, error) {
	return s.nsTargets(ctx, run, after, limit, "")
}

// nsTargets pages through the name server pairs that meet cond (a constant, whose
// parameters, $5 on, are condArgs).
func (s *Postgres) nsTargets(ctx context.Context, run int64, after NSCursor, limit int, cond string, condArgs ...any) ([]NSTarget, error) {
	rows, err := s.pool.Query(ctx, `SELECT domain, ip, host FROM ns_targets n
		WHERE run_id = $1 AND (domain, ip) > ($2, $3)`+cond+` ORDER BY domain, ip LIMIT $4`,
		append([]any{run, after.Domain, after.IP, limit}, condArgs...)...)
	if err != nil {
		return nil, fmt.Errorf("read name server targets: %w", err)
	}
	defer rows.Close()
	return collect(rows, scanNSTarget)
}

// lastOf returns pointers to the last element of each key, in the order the keys first
// appear: what a sequence of upserts leaves, for one statement that may not touch a
// row twice.
func lastOf[T any](xs []T, key func(*T) string) []*T { return oneOf(xs, key, true) }

// firstOf returns pointers to the first element of each key: what a sequence of
// inserts that do nothing on conflict leaves.
func firstOf[T any](xs []T, key func(*T) string) []*T { return oneOf(xs, key, false) }

// oneOf returns pointers to one element of each key, the last or the first, in the
// order the keys first appear.
func oneOf[T any](xs []T, key func(*T) string, last bool) []*T {
	at := map[string]int{}
	var out []*T
	for i := range xs {
		k := key(&xs[i])
		if j, ok := at[k]; ok {
			if last {
				out[j] = &xs[i]
			}
			continue
		}
		at[k] = len(out)
		out = append(out, &xs[i])
	}
	return out
}

// Hosts returns the run's stored hosts among names.
func (s *Postgres) Hosts(ctx context.Context, run int64, names []string) (map[string]result.Host, error) {
	return storedHosts(ctx, s.rows, &postgresDetails, run, names)
}

// columns turns rows of values into one array per column, the parameters of unnest.
func columns(rows [][]any) []any {
	if len(rows) == 0 {
		return nil
	}
	cols := make([]any, len(rows[0]))
	for j := range cols {
		col := make([]any, len(rows))
		for i, r := range rows {
			col[i] = r[j]
		}
		cols[j] = col
	}
	return cols
}

// SaveMeasurements writes measurements in one transaction, the rows as arrays; a kind
// measured again from the same vantage replaces the earlier value.
func (s *Postgres) SaveMeasurements(ctx context.Context, run int64, ms []Measurement) error {
	own, err := s.vantage(ctx, run, "")
	if err != nil {
		return err
	}
	var rows, checks [][]any
	key := func(m *Measurement) string {
		return cmp.Or(m.Vantage, own) + " " + m.Domain + " " + m.IP.String() + " " + m.Kind
	}
	for _, m := range lastOf(ms, key) {
		js, err := json.Marshal(m.Value)
		if err != nil {
			return fmt.Errorf("save %s of %s: %w", m.Kind, m.IP, err)
		}
		v := cmp.Or(m.Vantage, own)
		if m.Domain != "" {
			checks = append(checks, []any{v, m.Domain, m.IP.String(), string(js)})
		} else {
			rows = append(rows, []any{v, m.IP.String(), m.Kind, string(js)})
		}
	}
	return s.inTx(ctx, "save measurements", func(tx pgx.Tx) error {
		var q batch
		if len(rows) > 0 {
			q.add(fmt.Sprintf("save %d measurements", len(rows)), `INSERT INTO measurements (run_id, vantage, ip, kind, data)
				SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
				ON CONFLICT (run_id, vantage, ip, kind) DO UPDATE SET data = excluded.data`, append([]any{run}, columns(rows)...)...)
		}
		if len(checks) > 0 {
			q.add(fmt.Sprintf("save %d name server checks", len(checks)), `INSERT INTO ns_checks (run_id, vantage, domain, ip, data)
				SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
				ON CONFLICT (run_id, vantage, domain, ip) DO UPDATE SET data = excluded.data`, append([]any{run}, columns(checks)...)...)
		}
		return q.run(ctx, tx)
	})
}

// Measured returns, per address, the kinds a vantage already measured in the run.
func (s *Postgres) Measured(ctx context.Context, run int64, vantage string) (map[netip.Addr]map[string]bool, error) {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT ip, kind FROM measurements WHERE run_id = $1 AND vantage = $2`, run, v)
	if err != nil {
		return nil, fmt.Errorf("read measurements: %w", err)
	}
	defer rows.Close()
	return readMeasured(rows)
}

// NSChecked returns, per domain, the name server addresses whose SOA check a vantage
// already has.
func (s *Postgres) NSChecked(ctx context.Context, run int64, vantage string) (map[string]map[netip.Addr]bool, error) {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT domain, ip FROM ns_checks WHERE run_id = $1 AND vantage = $2`, run, v)
	if err != nil {
		return nil, fmt.Errorf("read name server checks: %w", err)
	}
	defer rows.Close()
	return readNSChecked(rows)
}

// MeasuredKinds returns the kinds that have at least one measurement of a vantage in
// the run (dns53 when a name server check was saved).
func (s *Postgres) MeasuredKinds(ctx context.Context, run int64, vantage string) (map[string]bool, error) {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT kind FROM measurements WHERE run_id = $1 AND vantage = $2
		UNION SELECT 'dns53' FROM ns_checks WHERE run_id = $1 AND vantage = $2`, run, v)
	if err != nil {
		return nil, fmt.Errorf("read measurement kinds: %w", err)
	}
	defer rows.Close()
	return readKinds(rows)
}

// Vantages lists the run's vantages, its own first.
func (s *Postgres) Vantages(ctx context.Context, run int64) ([]string, error) {
	return vantages(ctx, s.rows, &postgresVantages, run)
}

// VantageResults compares two vantages' results (Store.VantageResults).
func (s *Postgres) VantageResults(ctx context.Context, run int64, a, b string, kinds []string, after string, fn func(VantagePair) bool) error {
	return vantageResults(ctx, s.rows, &postgresVantages, run, a, b, kinds, after, fn)
}

// vantage returns v, or the run's own vantage when v is "".
func (s *Postgres) vantage(ctx context.Context, run int64, v string) (string, error) {
	return vantageOf(ctx, s.rows, &postgresVantages, run, v)
}

// rows runs a read query (a queryFunc).
func (s *Postgres) rows(ctx context.Context, sql string, args ...any) (rowIter, func(), error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, nil, err
	}
	return rows, rows.Close, nil
}

// postgresVantages are the vantage queries (see sqliteVantages).
var postgresVantages = vantageQueries{
	own: `SELECT vantage FROM runs WHERE id = $1`,
	others: `WITH RECURSIVE
		m(v) AS (SELECT min(vantage) FROM measurements WHERE run_id = $1
			UNION ALL SELECT (SELECT min(vantage) FROM measurements WHERE run_id = $1 AND vantage > m.v) FROM m WHERE m.v IS NOT NULL),
		c(v) AS (SELECT min(vantage) FROM ns_checks WHERE run_id = $1
			UNION ALL SELECT (SELECT min(vantage) FROM ns_checks WHERE run_id = $1 AND vantage > c.v) FROM c WHERE c.v IS NOT NULL)
		SELECT v FROM m WHERE v IS NOT NULL AND v <> $2 UNION SELECT v FROM c WHERE v IS NOT NULL AND v <> $2 ORDER BY 1`,
	pairs: `SELECT a.ip, a.kind, a.data, b.data FROM measurements a
		LEFT JOIN measurements b ON b.run_id = a.run_id AND b.vantage = $3 AND b.ip = a.ip AND b.kind = a.kind
		WHERE a.run_id = $1 AND a.vantage = $2 AND a.ip > $4 AND a.kind = ANY($5::text[])
		ORDER BY a.ip, a.kind`,
	results: `SELECT ip, kind, data, NULL::text FROM measurements
		WHERE run_id = $1 AND vantage = $2 AND ip > $3 AND kind = ANY($4::text[])
		ORDER BY ip, kind`,
	list: func(kinds []string) any { return kinds },
}

// Details calls fn for every domain of the run, in (rank, name) order, a page at a time,
// with a vantage's measurements.
func (s *Postgres) Details(ctx context.Context, run int64, vantage string, fn func(Detail) error) error {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return err
	}
	cache := newAddrCache()
	return eachDetail(fn, func(after Cursor) ([]Detail, error) {
		return s.details(ctx, run, v, cache, `(rank, name) > ($2, $3) ORDER BY rank, name LIMIT $4`, after.Rank, after.Name, detailPage)
	})
}

// DetailsOf is Details of the named domains (names in (rank, name) order).
func (s *Postgres) DetailsOf(ctx context.Context, run int64, vantage string, names []string, fn func(Detail) error) error {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return err
	}
	cache := newAddrCache()
	return eachNamed(names, fn, func(names []string) ([]Detail, error) {
		return s.details(ctx, run, v, cache, `name IN (SELECT unnest($2::text[])) ORDER BY rank, name`, names)
	})
}

// details reads the domains that the condition (a fixed SQL text with $2... for the
// arguments, never input) selects, with their hosts and addresses and the measurements
// of vantage v (not ""); cache (or nil) keeps the addresses across calls.
func (s *Postgres) details(ctx context.Context, run int64, v string, cache *genCache[netip.Addr, result.Address], cond string, args ...any) ([]Detail, error) {
	return readDetails(ctx, s.rows, &postgresDetails, cache, run, v, cond, args...)
}

// postgresDetails are the queries of details. A list is a text array joined as a
// relation (unnest), so each name is an index lookup; "= ANY" made PostgreSQL filter
// every row of the run through the whole list.
var postgresDetails = detailQueries{
	domains: `SELECT ` + domainColumns + ` FROM domains WHERE run_id = $1 AND `,
	hosts: `SELECT h.name, h.status, h.cname, h.v4, h.v6, h.a_status, h.aaaa_status FROM unnest($2::text[]) AS u(name)
		JOIN hosts h ON h.run_id = $1 AND h.name = u.name`,
	addresses: `SELECT a.ip, a.valid, a.class, a.prefixid, a.iid FROM unnest($2::text[]) AS u(ip)
		JOIN addresses a ON a.run_id = $1 AND a.ip = u.ip`,
	measurements: `SELECT m.ip, m.kind, m.data FROM unnest($3::text[]) AS u(ip)
		JOIN measurements m ON m.run_id = $1 AND m.vantage = $2 AND m.ip = u.ip`,
	nsChecks: `SELECT c.domain, c.ip, c.data FROM unnest($3::text[]) AS u(domain)
		JOIN ns_checks c ON c.run_id = $1 AND c.vantage = $2 AND c.domain = u.domain`,
	list: func(names []string) any { return names },
}
