package store

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"github.com/v6matrix/v6matrix/internal/probe/dns53"
	"github.com/v6matrix/v6matrix/internal/result"
)

// The row codecs both stores share: the same columns hold the same text in SQLite and
// PostgreSQL, so one encoding and one decoding of each row serve both.

// rowScanner is a row of either database (*sql.Row(s), pgx.Row(s)).
type rowScanner interface{ Scan(...any) error }

// domainColumns are the columns scanDomain reads, in its order.
const domainColumns = `name, rank, tld, suffix, status, error, null_mx,
	soa_mname, soa_rname, soa_serial, soa_refresh, soa_retry, soa_expire, soa_minimum, soa_primary, soa_inhouse, soa_total, hosts,
	ns_source, delegation`

// scanDomain reads a domain row (domainColumns) with its host references.
func scanDomain(sc rowScanner) (Detail, error) {
	var d Detail
	var status, hostsJSON, delegJSON string
	var mname, rname, primary *string
	var serial, refresh, retry, expire, minimum, total *int64
	var inhouse *bool
	if err := sc.Scan(&d.Name, &d.Rank, &d.TLD, &d.Suffix, &status, &d.Error, &d.NullMX,
		&mname, &rname, &serial, &refresh, &retry, &expire, &minimum, &primary, &inhouse, &total, &hostsJSON,
		&d.NSSource, &delegJSON); err != nil {
		return d, err
	}
	if delegJSON != "" {
		d.Delegation = new(result.Delegation)
		if err := json.Unmarshal([]byte(delegJSON), d.Delegation); err != nil {
			return d, fmt.Errorf("domain %s: damaged delegation: %w", d.Name, err)
		}
	}
	d.Status = result.Status(status)
	if mname != nil {
		d.SOA = &result.SOA{MName: *mname, RName: deref(rname), Serial: uint32(deref(serial)),
			Refresh: uint32(deref(refresh)), Retry: uint32(deref(retry)), Expire: uint32(deref(expire)), Minimum: uint32(deref(minimum)),
			PrimaryByRank: deref(primary), PrimaryInhouse: deref(inhouse), Total: int(deref(total))}
	}
	var refs []hostRef
	if err := json.Unmarshal([]byte(hostsJSON), &refs); err != nil {
		return d, fmt.Errorf("domain %s: damaged host list: %w", d.Name, err)
	}
	for _, r := range refs {
		d.Hosts = append(d.Hosts, result.HostRef{Role: r.Role, Name: r.Name, Rank: r.Rank})
	}
	return d, nil
}

func deref[T any](p *T) T {
	var v T
	if p != nil {
		v = *p
	}
	return v
}

// domainDoneArgs are the values of a finished domain's columns, in the order of the
// stores' UPDATE: status, error, null_mx, the ten SOA columns (NULL without SOA), hosts,
// ns_source, delegation.
func domainDoneArgs(d *result.Domain) []any {
	refs := make([]hostRef, len(d.Hosts))
	for i, h := range d.Hosts {
		refs[i] = hostRef{h.Role, h.Name, h.Rank}
	}
	js, _ := json.Marshal(refs)
	var soa [10]any
	if d.SOA != nil {
		o := d.SOA
		soa = [10]any{o.MName, o.RName, int64(o.Serial), int64(o.Refresh), int64(o.Retry), int64(o.Expire), int64(o.Minimum),
			o.PrimaryByRank, o.PrimaryInhouse, int64(o.Total)}
	}
	var deleg []byte
	if d.Delegation != nil {
		deleg, _ = json.Marshal(d.Delegation)
	}
	args := append([]any{string(d.Status), d.Error, d.NullMX}, soa[:]...)
	return append(args, string(js), d.NSSource, string(deleg))
}

// hostArgs are a host's name, status, cname, v4, v6, a_status and aaaa_status column
// values.
func hostArgs(h *result.Host) []any {
	return []any{h.Name, string(h.Status), strings.Join(h.CNAME, " "), joinAddrs(h.V4), joinAddrs(h.V6),
		string(h.AStatus), string(h.AAAAStatus)}
}

// scanHost reads name, status, cname, v4, v6, a_status, aaaa_status.
func scanHost(sc rowScanner) (result.Host, error) {
	var h result.Host
	var status, cname, v4, v6, aStatus, aaaaStatus string
	if err := sc.Scan(&h.Name, &status, &cname, &v4, &v6, &aStatus, &aaaaStatus); err != nil {
		return h, err
	}
	h.Status, h.CNAME = result.Status(status), strings.Fields(cname)
	h.AStatus, h.AAAAStatus = result.Status(aStatus), result.Status(aaaaStatus)
	var err error
	if h.V4, err = splitAddrs(v4); err == nil {
		h.V6, err = splitAddrs(v6)
	}
	if err != nil {
		return h, fmt.Errorf("host %s: damaged address list: %w", h.Name, err)
	}
	return h, nil
}

// addressArgs are an address's ip, family, valid, class, prefixid, iid column values.
func addressArgs(a *result.Address) []any {
	var c [4]any
	if a.Class != nil {
		c = [4]any{a.Class.Valid, a.Class.Type, a.Class.PrefixID, a.Class.IID}
	}
	return []any{a.IP.String(), a.Family(), c[0], c[1], c[2], c[3]}
}

// scanAddress reads ip, valid, class, prefixid, iid.
func scanAddress(sc rowScanner) (result.Address, error) {
	var ip string
	var valid *bool
	var class, prefixid, iid *string
	if err := sc.Scan(&ip, &valid, &class, &prefixid, &iid); err != nil {
		return result.Address{}, err
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return result.Address{}, fmt.Errorf("damaged address %q: %w", ip, err)
	}
	ad := result.Address{IP: a}
	if valid != nil {
		ad.Class = &result.Class{Valid: *valid, Type: deref(class), PrefixID: deref(prefixid), IID: deref(iid)}
	}
	return ad, nil
}

// addMeasurement decodes a measurement row (ip, kind, data) into its address.
func addMeasurement(addrs map[netip.Addr]result.Address, ip, kind, data string) error {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return fmt.Errorf("damaged measurement address %q: %w", ip, err)
	}
	ad, ok := addrs[a]
	if !ok {
		ad = result.Address{IP: a}
	}
	if err := decodeMeasurement(&ad, kind, data); err != nil {
		return err
	}
	addrs[a] = ad
	return nil
}

// decodeMeasurement decodes a measurement of kind into its field of the address.
func decodeMeasurement(ad *result.Address, kind, data string) error {
	field := ad.Measurement(kind)
	if field == nil {
		return nil // a kind this version does not know: kept in the store, not shown
	}
	if err := json.Unmarshal([]byte(data), field); err != nil {
		return fmt.Errorf("address %s: damaged %s measurement: %w", ad.IP, kind, err)
	}
	return nil
}

// summaryArgs are a domain summary's columns after run_id, in the stores' INSERT order.
func summaryArgs(d *result.DomainSummary) []any {
	args := []any{d.Name, d.TLD, d.Rank, string(d.Status)}
	for _, r := range d.Roles {
		args = append(args, string(r.IPv6))
	}
	for _, r := range d.Roles {
		args = append(args, string(r.Reachable))
	}
	args = append(args, string(d.Broken))
	for _, r := range d.Roles {
		args = append(args, roleKey(r.IPv6, d.Rank))
	}
	return args
}

// rowIter is a result set of either database (*sql.Rows, pgx.Rows); the caller closes it.
type rowIter interface {
	Next() bool
	Scan(...any) error
	Err() error
}

// collect reads every row of a result set with scan.
func collect[T any](rs rowIter, scan func(rowScanner) (T, error)) ([]T, error) {
	var out []T
	for rs.Next() {
		v, err := scan(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rs.Err()
}

// scanPending reads name, rank, tld, suffix.
func scanPending(sc rowScanner) (result.Domain, error) {
	var d result.Domain
	err := sc.Scan(&d.Name, &d.Rank, &d.TLD, &d.Suffix)
	return d, err
}

// scanString reads one text column.
func scanString(sc rowScanner) (string, error) {
	var s string
	err := sc.Scan(&s)
	return s, err
}

// jsonRow returns a scanner of one JSON column into a T.
func jsonRow[T any](sc rowScanner) (T, error) {
	var v T
	err := scanJSON(sc, &v)
	return v, err
}

// scanDomainSummary reads summaryColumns.
func scanDomainSummary(sc rowScanner) (result.DomainSummary, error) {
	var d result.DomainSummary
	err := scanSummary(sc, &d)
	return d, err
}

// scanHistory reads summaryColumns, the run id and its start.
func scanHistory(sc rowScanner) (HistoryPoint, error) {
	var p HistoryPoint
	var started string
	err := scanSummary(sc, &p.DomainSummary, &p.Run, &started)
	p.Started = parseTime(started)
	return p, err
}

// scanTrend reads the run id, its start and the aggregate's JSON.
func scanTrend(sc rowScanner) (TrendPoint, error) {
	var p TrendPoint
	var started, data string
	if err := sc.Scan(&p.Run, &started, &data); err != nil {
		return p, err
	}
	if err := json.Unmarshal([]byte(data), &p.Aggregate); err != nil {
		return p, fmt.Errorf("damaged aggregate of run %d: %w", p.Run, err)
	}
	p.Started = parseTime(started)
	return p, nil
}

// changeRow returns a scanner of rank, name into a Change of a role.
func changeRow(role result.Role, change string) func(rowScanner) (Change, error) {
	return func(sc rowScanner) (Change, error) {
		c := Change{Role: role, Change: change}
		err := sc.Scan(&c.Rank, &c.Name)
		return c, err
	}
}

// readCounts folds rows of (done, status, count) into c.
func readCounts(rs rowIter, c *Counts) error {
	for rs.Next() {
		var done bool
		var st string
		var n int
		if err := rs.Scan(&done, &st, &n); err != nil {
			return err
		}
		c.Total += n
		if done {
			c.Done += n
			c.ByStatus[result.Status(st)] += n
		}
	}
	return rs.Err()
}

// readMeasured folds rows of (ip, kind) into the kinds measured per address.
func readMeasured(rs rowIter) (map[netip.Addr]map[string]bool, error) {
	out := map[netip.Addr]map[string]bool{}
	for rs.Next() {
		var ip, kind string
		if err := rs.Scan(&ip, &kind); err != nil {
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
	return out, rs.Err()
}

// readKinds reads rows of one kind each into a set.
func readKinds(rs rowIter) (map[string]bool, error) {
	ks, err := collect(rs, scanString)
	out := map[string]bool{}
	for _, k := range ks {
		out[k] = true
	}
	return out, err
}

// readDomains reads domain rows (domainColumns) and the names of the hosts they use.
func readDomains(rs rowIter) ([]Detail, []string, error) {
	var page []Detail
	seen := map[string]bool{}
	var hosts []string
	for rs.Next() {
		d, err := scanDomain(rs)
		if err != nil {
			return nil, nil, err
		}
		for _, h := range d.Hosts {
			if !seen[h.Name] {
				seen[h.Name] = true
				hosts = append(hosts, h.Name)
			}
		}
		page = append(page, d)
	}
	return page, hosts, rs.Err()
}

// readHosts reads host rows (scanHost) and the addresses they hold.
func readHosts(rs rowIter) (map[string]result.Host, []netip.Addr, error) {
	hosts := map[string]result.Host{}
	seen := map[netip.Addr]bool{}
	var ips []netip.Addr
	for rs.Next() {
		h, err := scanHost(rs)
		if err != nil {
			return nil, nil, err
		}
		for _, a := range append(h.V4[:len(h.V4):len(h.V4)], h.V6...) {
			if !seen[a] {
				seen[a] = true
				ips = append(ips, a)
			}
		}
		hosts[h.Name] = h
	}
	return hosts, ips, rs.Err()
}

// readAddresses reads address rows (ip, valid, class, prefixid, iid).
func readAddresses(rs rowIter) (map[netip.Addr]result.Address, error) {
	addrs := map[netip.Addr]result.Address{}
	for rs.Next() {
		ad, err := scanAddress(rs)
		if err != nil {
			return nil, err
		}
		addrs[ad.IP] = ad
	}
	return addrs, rs.Err()
}

// readMeasurements decodes measurement rows (ip, kind, data) into their addresses.
func readMeasurements(rs rowIter, addrs map[netip.Addr]result.Address) error {
	for rs.Next() {
		var ip, kind, data string
		if err := rs.Scan(&ip, &kind, &data); err != nil {
			return err
		}
		if err := addMeasurement(addrs, ip, kind, data); err != nil {
			return err
		}
	}
	return rs.Err()
}

// readNSChecked folds rows of (domain, ip) into the name server addresses checked per
// domain.
func readNSChecked(rs rowIter) (map[string]map[netip.Addr]bool, error) {
	out := map[string]map[netip.Addr]bool{}
	for rs.Next() {
		var domain, ip string
		if err := rs.Scan(&domain, &ip); err != nil {
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
	return out, rs.Err()
}

// readNSChecks decodes rows of (domain, ip, data) into the SOA checks of the page's
// domains.
func readNSChecks(rs rowIter, page []Detail) error {
	at := map[string]int{}
	for i, d := range page {
		at[d.Name] = i
	}
	for rs.Next() {
		var domain, ip, data string
		if err := rs.Scan(&domain, &ip, &data); err != nil {
			return err
		}
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return fmt.Errorf("damaged name server check address %q: %w", ip, err)
		}
		i, ok := at[domain]
		if !ok {
			continue
		}
		var r dns53.Result
		if err := json.Unmarshal([]byte(data), &r); err != nil {
			return fmt.Errorf("domain %s: damaged name server check of %s: %w", domain, ip, err)
		}
		if page[i].NSChecks == nil {
			page[i].NSChecks = map[netip.Addr]*dns53.Result{}
		}
		page[i].NSChecks[a] = &r
	}
	return rs.Err()
}

// readSearch reads the rows of a Search query: a kind (0 a domain, 1 a host) and a
// domain summary's columns, of which a host fills the name.
func readSearch(rows rowIter) ([]result.DomainSummary, []string, error) {
	var ds []result.DomainSummary
	var hosts []string
	for rows.Next() {
		var kind int
		var d result.DomainSummary
		if err := scanSummary(kindFirst{rows, &kind}, &d); err != nil {
			return nil, nil, err
		}
		if kind == 0 {
			ds = append(ds, d)
		} else {
			hosts = append(hosts, d.Name)
		}
	}
	return ds, hosts, rows.Err()
}

// kindFirst scans a leading kind column, then the columns asked for.
type kindFirst struct {
	rowScanner
	kind *int
}

func (k kindFirst) Scan(dest ...any) error {
	return k.rowScanner.Scan(append([]any{k.kind}, dest...)...)
}
