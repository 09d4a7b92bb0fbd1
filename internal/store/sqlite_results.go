package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/v6matrix/v6matrix/internal/result"
)

// Pending returns unfinished domains after the cursor.
func (s *SQLite) Pending(ctx context.Context, run int64, after Cursor, limit int) ([]result.Domain, error) {
	// The row value (rank, name) > (?, ?) lets SQLite seek the domains_order index to the
	// cursor; the equivalent OR form made it scan from the first domain on every page,
	// which grew quadratically with the list.
	rows, err := s.db.QueryContext(ctx, `SELECT name, rank, tld, suffix FROM domains
		WHERE run_id = ? AND (rank, name) > (?, ?) AND done = 0
		ORDER BY rank, name LIMIT ?`, run, after.Rank, after.Name, limit)
	if err != nil {
		return nil, fmt.Errorf("pending domains: %w", err)
	}
	defer rows.Close()
	return collect(rows, scanPending)
}

// hostRef is the JSON form of a domain's link to a host, kept in the domain row.
type hostRef struct {
	Role result.Role `json:"role"`
	Name string      `json:"name"`
	Rank int         `json:"rank,omitempty"`
}

// Save writes a batch in one transaction.
func (s *SQLite) Save(ctx context.Context, run int64, b Batch) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	defer tx.Rollback()
	dst, err := tx.PrepareContext(ctx, `UPDATE domains SET done = 1, status = ?, error = ?, null_mx = ?,
		soa_mname = ?, soa_rname = ?, soa_serial = ?, soa_refresh = ?, soa_retry = ?, soa_expire = ?, soa_minimum = ?,
		soa_primary = ?, soa_inhouse = ?, soa_total = ?, hosts = ?, ns_source = ?, delegation = ? WHERE run_id = ? AND name = ?`)
	if err != nil {
		return err
	}
	defer dst.Close()
	for _, i := range keyOrder(b.Domains, func(d *result.Domain) string { return d.Name }) {
		d := &b.Domains[i]
		if _, err := dst.ExecContext(ctx, append(domainDoneArgs(d), run, d.Name)...); err != nil {
			return fmt.Errorf("save domain %s: %w", d.Name, err)
		}
	}
	hst, err := tx.PrepareContext(ctx, `INSERT INTO hosts (run_id, name, status, cname, v4, v6, a_status, aaaa_status)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, name) DO NOTHING`)
	if err != nil {
		return err
	}
	defer hst.Close()
	for _, i := range keyOrder(b.Hosts, func(h *result.Host) string { return h.Name }) {
		h := &b.Hosts[i]
		if _, err := hst.ExecContext(ctx, append([]any{run}, hostArgs(h)...)...); err != nil {
			return fmt.Errorf("save host %s: %w", h.Name, err)
		}
	}
	ast, err := tx.PrepareContext(ctx, `INSERT INTO addresses (run_id, ip, family, valid, class, prefixid, iid) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (run_id, ip) DO NOTHING`)
	if err != nil {
		return err
	}
	defer ast.Close()
	for _, i := range keyOrder(b.Addresses, func(a *result.Address) string { return a.IP.String() }) {
		a := &b.Addresses[i]
		if _, err := ast.ExecContext(ctx, append([]any{run}, addressArgs(a)...)...); err != nil {
			return fmt.Errorf("save address %s: %w", a.IP, err)
		}
	}
	if err := s.saveTargets(ctx, tx, run, b); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

// Hosts returns the run's stored hosts among names.
func (s *SQLite) Hosts(ctx context.Context, run int64, names []string) (map[string]result.Host, error) {
	return storedHosts(ctx, s.rows, &sqliteDetails, run, names)
}

// keyOrder returns the indexes of xs in the order of their keys, and of equal keys in
// theirs: a batch's rows written in the order of their table's key change each B-tree
// page once, where the crawl's order (random addresses, domains by rank) changed a
// page a row and read it again (BenchmarkSaveMeasurements).
func keyOrder[T any](xs []T, key func(*T) string) []int {
	keys := make([]string, len(xs))
	idx := make([]int, len(xs))
	for i := range xs {
		keys[i], idx[i] = key(&xs[i]), i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(keys[a], keys[b]) })
	return idx
}

func joinAddrs(as []netip.Addr) string {
	var b strings.Builder
	for i, a := range as {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(a.String())
	}
	return b.String()
}

func splitAddrs(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.Fields(s) {
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// Details calls fn for every domain of the run, in (rank, name) order, with its hosts
// and addresses and a vantage's measurements. Memory stays bounded by the page size and
// the cache of addresses (addrCacheSize).
func (s *SQLite) Details(ctx context.Context, run int64, vantage string, fn func(Detail) error) error {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return err
	}
	cache := newAddrCache()
	return eachDetail(fn, func(after Cursor) ([]Detail, error) {
		return s.details(ctx, run, v, cache, `(rank, name) > (?, ?) ORDER BY rank, name LIMIT ?`, after.Rank, after.Name, detailPage)
	})
}

// DetailsOf is Details of the named domains (names in (rank, name) order).
func (s *SQLite) DetailsOf(ctx context.Context, run int64, vantage string, names []string, fn func(Detail) error) error {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return err
	}
	cache := newAddrCache()
	return eachNamed(names, fn, func(names []string) ([]Detail, error) {
		return s.details(ctx, run, v, cache, `name IN (SELECT value FROM json_each(?)) ORDER BY rank, name`, sqliteDetails.list(names))
	})
}

// details reads the domains that the condition (a fixed SQL text with ? for the
// arguments, never input) selects, with their hosts and addresses and the measurements
// of vantage v (not ""); cache (or nil) keeps the addresses across calls.
func (s *SQLite) details(ctx context.Context, run int64, v string, cache *genCache[netip.Addr, result.Address], cond string, args ...any) ([]Detail, error) {
	return readDetails(ctx, s.rows, &sqliteDetails, cache, run, v, cond, args...)
}

// sqliteDetails are the queries of details; a list is a JSON array (json_each).
var sqliteDetails = detailQueries{
	domains: `SELECT ` + domainColumns + ` FROM domains WHERE run_id = ? AND `,
	hosts: `SELECT name, status, cname, v4, v6, a_status, aaaa_status FROM hosts
		WHERE run_id = ? AND name IN (SELECT value FROM json_each(?))`,
	addresses: `SELECT ip, valid, class, prefixid, iid FROM addresses
		WHERE run_id = ? AND ip IN (SELECT value FROM json_each(?))`,
	measurements: `SELECT ip, kind, data FROM measurements
		WHERE run_id = ? AND vantage = ? AND ip IN (SELECT value FROM json_each(?))`,
	nsChecks: `SELECT domain, ip, data FROM ns_checks
		WHERE run_id = ? AND vantage = ? AND domain IN (SELECT value FROM json_each(?))`,
	list: func(names []string) any {
		js, _ := json.Marshal(names)
		return string(js)
	},
}

// saveTargets merges a batch's targets into the run's rows and adds its name server
// pairs, in the batch's transaction.
func (s *SQLite) saveTargets(ctx context.Context, tx *sql.Tx, run int64, b Batch) error {
	if len(b.Targets) > 0 {
		js, _ := json.Marshal(targetIPs(b.Targets))
		rows, err := tx.QueryContext(ctx, `SELECT `+targetColumns+` FROM targets
			WHERE run_id = ? AND ip IN (SELECT value FROM json_each(?))`, run, string(js))
		if err != nil {
			return fmt.Errorf("read targets: %w", err)
		}
		old, err := collect(rows, scanTarget)
		rows.Close()
		if err != nil {
			return fmt.Errorf("read targets: %w", err)
		}
		st, err := tx.PrepareContext(ctx, `INSERT INTO targets (run_id, `+targetColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (run_id, ip) DO UPDATE SET roles = excluded.roles, www = excluded.www, www_rank = excluded.www_rank,
			mx = excluded.mx, mx_rank = excluded.mx_rank, host = excluded.host, host_rank = excluded.host_rank`)
		if err != nil {
			return err
		}
		defer st.Close()
		ts := mergeTargets(b.Targets, old)
		for _, i := range keyOrder(ts, func(t *Target) string { return t.IP.String() }) {
			t := &ts[i]
			if _, err := st.ExecContext(ctx, append([]any{run}, targetArgs(t)...)...); err != nil {
				return fmt.Errorf("save target %s: %w", t.IP, err)
			}
		}
	}
	if len(b.NSTargets) == 0 {
		return nil
	}
	nst, err := tx.PrepareContext(ctx, `INSERT INTO ns_targets (run_id, domain, ip, host) VALUES (?, ?, ?, ?)
		ON CONFLICT (run_id, domain, ip) DO NOTHING`)
	if err != nil {
		return err
	}
	defer nst.Close()
	for _, i := range keyOrder(b.NSTargets, func(n *NSTarget) string { return n.Domain + "\x00" + n.IP.String() }) {
		n := &b.NSTargets[i]
		if _, err := nst.ExecContext(ctx, run, n.Domain, n.IP.String(), n.Host); err != nil {
			return fmt.Errorf("save name server target %s %s: %w", n.Domain, n.IP, err)
		}
	}
	return nil
}

// Targets pages through the run's targets with the kinds a vantage already measured.
func (s *SQLite) Targets(ctx context.Context, run int64, vantage, after string, limit int) ([]Target, error) {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+targetColumns+`,
		coalesce((SELECT group_concat(kind, ' ') FROM measurements m WHERE m.run_id = t.run_id AND m.vantage = ? AND m.ip = t.ip), '')
		FROM targets t WHERE run_id = ? AND ip > ? ORDER BY ip LIMIT ?`, v, run, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read targets: %w", err)
	}
	defer rows.Close()
	return collect(rows, scanPendingTarget)
}

// PendingNSTargets pages through the name server pairs without a check from a vantage.
func (s *SQLite) PendingNSTargets(ctx context.Context, run int64, vantage string, after NSCursor, limit int) ([]NSTarget, error) {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return nil, err
	}
	return s.nsTargets(ctx, run, after, limit, nsUnchecked("?"), v)
}

// NSTargets pages through every name server pair of the run, checked or not.
func (s *SQLite) NSTargets(ctx context.Context, run int64, after NSCursor, limit int) ([]NSTarget, error) {
	return s.nsTargets(ctx, run, after, limit, "")
}

// nsTargets pages through the name server pairs that meet cond (a constant, whose
// parameters are condArgs).
func (s *SQLite) nsTargets(ctx context.Context, run int64, after NSCursor, limit int, cond string, condArgs ...any) ([]NSTarget, error) {
	args := append(append([]any{run, after.Domain, after.IP}, condArgs...), limit)
	rows, err := s.db.QueryContext(ctx, `SELECT domain, ip, host FROM ns_targets n
		WHERE run_id = ? AND (domain, ip) > (?, ?)`+cond+` ORDER BY domain, ip LIMIT ?`, args...)
	if err != nil {
		return nil, fmt.Errorf("read name server targets: %w", err)
	}
	defer rows.Close()
	return collect(rows, scanNSTarget)
}
