package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/netip"
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
	for _, d := range b.Domains {
		refs := make([]hostRef, len(d.Hosts))
		for i, h := range d.Hosts {
			refs[i] = hostRef{h.Role, h.Name, h.Rank}
		}
		js, _ := json.Marshal(refs)
		var soa [10]any
		if d.SOA != nil {
			o := d.SOA
			soa = [10]any{o.MName, o.RName, o.Serial, o.Refresh, o.Retry, o.Expire, o.Minimum, o.PrimaryByRank, o.PrimaryInhouse, o.Total}
		}
		args := append([]any{string(d.Status), d.Error, d.NullMX}, soa[:]...)
		var deleg []byte
		if d.Delegation != nil {
			deleg, _ = json.Marshal(d.Delegation)
		}
		args = append(args, string(js), d.NSSource, string(deleg), run, d.Name)
		if _, err := dst.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("save domain %s: %w", d.Name, err)
		}
	}
	hst, err := tx.PrepareContext(ctx, `INSERT INTO hosts (run_id, name, status, cname, v4, v6, a_status, aaaa_status)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (run_id, name) DO UPDATE SET status = excluded.status, cname = excluded.cname, v4 = excluded.v4,
		v6 = excluded.v6, a_status = excluded.a_status, aaaa_status = excluded.aaaa_status`)
	if err != nil {
		return err
	}
	defer hst.Close()
	for _, h := range b.Hosts {
		if _, err := hst.ExecContext(ctx, run, h.Name, string(h.Status), strings.Join(h.CNAME, " "), joinAddrs(h.V4), joinAddrs(h.V6),
			string(h.AStatus), string(h.AAAAStatus)); err != nil {
			return fmt.Errorf("save host %s: %w", h.Name, err)
		}
	}
	ast, err := tx.PrepareContext(ctx, `INSERT INTO addresses (run_id, ip, family, valid, class, prefixid, iid) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (run_id, ip) DO NOTHING`)
	if err != nil {
		return err
	}
	defer ast.Close()
	for _, a := range b.Addresses {
		var c [4]any
		if a.Class != nil {
			c = [4]any{a.Class.Valid, a.Class.Type, a.Class.PrefixID, a.Class.IID}
		}
		if _, err := ast.ExecContext(ctx, run, a.IP.String(), a.Family(), c[0], c[1], c[2], c[3]); err != nil {
			return fmt.Errorf("save address %s: %w", a.IP, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
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

// detailPage is how many domains Details reads at a time.
const detailPage = 500

// Details calls fn for every domain of the run, in (rank, name) order, with its hosts
// and addresses. Memory stays bounded by the page size.
func (s *SQLite) Details(ctx context.Context, run int64, fn func(Detail) error) error {
	after := Cursor{Rank: -1}
	for {
		page, err := s.detailPage(ctx, run, after)
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

func (s *SQLite) detailPage(ctx context.Context, run int64, after Cursor) ([]Detail, error) {
	return s.details(ctx, run, `(rank, name) > (?, ?) ORDER BY rank, name LIMIT ?`,
		after.Rank, after.Name, detailPage)
}

// details reads the domains that the condition (a fixed SQL text with ? for the
// arguments, never input) selects, with their hosts and addresses.
func (s *SQLite) details(ctx context.Context, run int64, cond string, args ...any) ([]Detail, error) {
	rows, err := s.query(ctx, `SELECT name, rank, tld, suffix, status, error, null_mx,
		soa_mname, soa_rname, soa_serial, soa_refresh, soa_retry, soa_expire, soa_minimum, soa_primary, soa_inhouse, soa_total, hosts, ns_source, delegation
		FROM domains WHERE run_id = ? AND `+cond, append([]any{run}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("read domains: %w", err)
	}
	defer rows.Close()
	var page []Detail
	hostNames := map[string]bool{}
	for rows.Next() {
		var d Detail
		var status, hostsJSON, delegJSON string
		var mname, rname, primary sql.NullString
		var serial, refresh, retry, expire, minimum, total sql.NullInt64
		var inhouse sql.NullBool
		if err := rows.Scan(&d.Name, &d.Rank, &d.TLD, &d.Suffix, &status, &d.Error, &d.NullMX,
			&mname, &rname, &serial, &refresh, &retry, &expire, &minimum, &primary, &inhouse, &total, &hostsJSON,
			&d.NSSource, &delegJSON); err != nil {
			return nil, err
		}
		d.Status = result.Status(status)
		if mname.Valid {
			d.SOA = &result.SOA{MName: mname.String, RName: rname.String, Serial: uint32(serial.Int64),
				Refresh: uint32(refresh.Int64), Retry: uint32(retry.Int64), Expire: uint32(expire.Int64), Minimum: uint32(minimum.Int64),
				PrimaryByRank: primary.String, PrimaryInhouse: inhouse.Bool, Total: int(total.Int64)}
		}
		if delegJSON != "" {
			d.Delegation = new(result.Delegation)
			if err := json.Unmarshal([]byte(delegJSON), d.Delegation); err != nil {
				return nil, fmt.Errorf("domain %s: damaged delegation: %w", d.Name, err)
			}
		}
		var refs []hostRef
		if err := json.Unmarshal([]byte(hostsJSON), &refs); err != nil {
			return nil, fmt.Errorf("domain %s: damaged host list: %w", d.Name, err)
		}
		for _, r := range refs {
			d.Hosts = append(d.Hosts, result.HostRef{Role: r.Role, Name: r.Name, Rank: r.Rank})
			hostNames[r.Name] = true
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
	if err := s.loadNSChecks(ctx, run, page); err != nil {
		return nil, err
	}
	return page, nil
}

// hostsAndAddrs reads the named hosts and all their addresses.
func (s *SQLite) hostsAndAddrs(ctx context.Context, run int64, names map[string]bool) (map[string]result.Host, map[netip.Addr]result.Address, error) {
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	js, _ := json.Marshal(list)
	rows, err := s.query(ctx, `SELECT name, status, cname, v4, v6, a_status, aaaa_status FROM hosts
		WHERE run_id = ? AND name IN (SELECT value FROM json_each(?))`, run, string(js))
	if err != nil {
		return nil, nil, fmt.Errorf("read hosts: %w", err)
	}
	defer rows.Close()
	hosts := map[string]result.Host{}
	ips := map[string]bool{}
	for rows.Next() {
		var h result.Host
		var status, cname, v4, v6, aStatus, aaaaStatus string
		if err := rows.Scan(&h.Name, &status, &cname, &v4, &v6, &aStatus, &aaaaStatus); err != nil {
			return nil, nil, err
		}
		h.Status, h.CNAME = result.Status(status), strings.Fields(cname)
		h.AStatus, h.AAAAStatus = result.Status(aStatus), result.Status(aaaaStatus)
		if h.V4, err = splitAddrs(v4); err == nil {
			h.V6, err = splitAddrs(v6)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("host %s: damaged address list: %w", h.Name, err)
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
	js, _ = json.Marshal(list)
	arows, err := s.query(ctx, `SELECT ip, valid, class, prefixid, iid FROM addresses
		WHERE run_id = ? AND ip IN (SELECT value FROM json_each(?))`, run, string(js))
	if err != nil {
		return nil, nil, fmt.Errorf("read addresses: %w", err)
	}
	defer arows.Close()
	addrs := map[netip.Addr]result.Address{}
	for arows.Next() {
		var ip string
		var valid sql.NullBool
		var class, prefixid, iid sql.NullString
		if err := arows.Scan(&ip, &valid, &class, &prefixid, &iid); err != nil {
			return nil, nil, err
		}
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return nil, nil, fmt.Errorf("damaged address %q: %w", ip, err)
		}
		ad := result.Address{IP: a}
		if valid.Valid {
			ad.Class = &result.Class{Valid: valid.Bool, Type: class.String, PrefixID: prefixid.String, IID: iid.String}
		}
		addrs[a] = ad
	}
	if err := arows.Err(); err != nil {
		return nil, nil, err
	}
	if err := s.loadMeasurements(ctx, run, string(js), addrs); err != nil {
		return nil, nil, err
	}
	return hosts, addrs, nil
}
