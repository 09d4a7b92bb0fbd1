package export

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/v6matrix/v6matrix/internal/probe/dns53"
	"github.com/v6matrix/v6matrix/internal/probe/ntpprobe"
	"github.com/v6matrix/v6matrix/internal/probe/path"
	"github.com/v6matrix/v6matrix/internal/probe/ping"
	"github.com/v6matrix/v6matrix/internal/probe/ptr"
	"github.com/v6matrix/v6matrix/internal/probe/tlsprobe"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// pairRow is one (domain, role, host, i) row of a probe record file: the i-th IPv4
// and the i-th IPv6 address of the host, with their measurements (nil when the row
// has no address of that family).
type pairRow struct {
	ref      result.HostRef
	ip4, ip6 string
	a4, a6   *result.Address
	// ns4, ns6 are the domain's SOA checks at the pair's addresses (ns hosts).
	ns4, ns6 *dns53.Result
}

// pairRows returns the rows function of a probe record file: one row per pair of the
// hosts of the roles (all roles when none is given), in the domain's host order. cells
// gives the columns after type,domain,host.
func pairRows(cells func(p pairRow) []string, roles ...result.Role) func(*store.Detail, func(...string)) {
	return func(d *store.Detail, emit func(...string)) {
		for _, ref := range d.Hosts {
			if len(roles) > 0 && !slices.Contains(roles, ref.Role) {
				continue
			}
			h := d.HostsByName[ref.Name]
			for i, p := range pairs(h) {
				r := pairRow{ref: ref, ip4: p[0], ip6: p[1]}
				if i < len(h.V4) {
					r.a4, r.ns4 = lookup(d, h.V4[i]), nsCheck(d, h.V4[i])
				}
				if i < len(h.V6) {
					r.a6, r.ns6 = lookup(d, h.V6[i]), nsCheck(d, h.V6[i])
				}
				emit(append([]string{string(ref.Role), d.Name, ref.Name}, cells(r)...)...)
			}
		}
	}
}

// lookup returns the measurements of an address; nil when the store has none.
func lookup(d *store.Detail, ip netip.Addr) *result.Address {
	a, ok := d.Addrs[ip]
	if !ok {
		return nil
	}
	return &a
}

// reverseRows writes reverse.csv: the first PTR name of each address, empty when the
// lookup found none or did not run.
var reverseRows = pairRows(func(p pairRow) []string {
	return []string{p.ip4, p.ip6, ptrName(p.a4), ptrName(p.a6)}
})

func ptrName(a *result.Address) string {
	if a == nil || a.PTR == nil || len(a.PTR.Names) == 0 {
		return ""
	}
	return a.PTR.Names[0]
}

// pingRows writes ping.csv. count is one column for both families: the IPv4 result's
// echo count when there is one, else the IPv6 one (both use the run's --ping-count).
var pingRows = pairRows(func(p pairRow) []string {
	r4, r6 := pingOf(p.a4), pingOf(p.a6)
	var count string
	if r := firstNonNil(r4, r6); r != nil {
		count = itoa(r.Sent)
	}
	cells := []string{p.ip4, p.ip6, count}
	cells = append(cells, rttCells(r4)...)
	cells = append(cells, rttCells(r6)...)
	return append(cells, lossCell(r4), lossCell(r6))
})

func pingOf(a *result.Address) *ping.Result {
	if a == nil {
		return nil
	}
	return a.Ping
}

// rttCells are min, avg, max, std; empty when not measured or when no reply came.
func rttCells(r *ping.Result) []string {
	if r == nil {
		return []string{"", "", "", ""}
	}
	return []string{millis(r.MinMillis), millis(r.AvgMillis), millis(r.MaxMillis), millis(r.StdMillis)}
}

func lossCell(r *ping.Result) string {
	if r == nil || r.Sent == 0 {
		return ""
	}
	return decimal3(r.LossPercent)
}

// tcpRows writes tcpNN.csv.
func tcpRows(port int) func(*store.Detail, func(...string)) {
	state := func(a *result.Address) string {
		if a == nil || a.TCP(port) == nil {
			return ""
		}
		return string(a.TCP(port).State)
	}
	return pairRows(func(p pairRow) []string {
		return []string{itoa(port), p.ip4, p.ip6, state(p.a4), state(p.a6)}
	})
}

// tlsOf returns the TLS measurement that matches a host's role: TLS on 443 for www
// hosts, STARTTLS on 25 for mx hosts; nil for other roles or when not measured.
func tlsOf(role result.Role, a *result.Address) *tlsprobe.Result {
	switch {
	case a == nil:
		return nil
	case role == result.RoleWWW:
		return a.TLS443
	case role == result.RoleMX:
		return a.STARTTLS
	}
	return nil
}

// tlsRows writes tls.csv for www and mx hosts. cert_valid and cert_expiry (the
// contract's columns) are one for both families: the IPv4 result's when it has a
// certificate, else the IPv6 one's. The appended cert_valid4, cert_expiry4, cert_valid6
// and cert_expiry6 give each family its own, so that a host whose IPv6 side has no TLS
// does not look verified over IPv6.
var tlsRows = pairRows(func(p pairRow) []string {
	r4, r6 := tlsOf(p.ref.Role, p.a4), tlsOf(p.ref.Role, p.a6)
	cert := r4
	if cert == nil || cert.CertValid == nil {
		cert = firstNonNil(r6, r4)
	}
	host := p.ref.Name
	valid, expiry := certCells(cert, host)
	valid4, expiry4 := certCells(r4, host)
	valid6, expiry6 := certCells(r6, host)
	r, v := tlsCells(r4)
	r6c, v6 := tlsCells(r6)
	return []string{p.ip4, r, v, p.ip6, r6c, v6, valid, expiry, valid4, expiry4, valid6, expiry6}
}, result.RoleWWW, result.RoleMX)

// certCells are cert_valid (1/0: chain and name verified, the name the row's host)
// and cert_expiry of one result; empty without a certificate.
func certCells(r *tlsprobe.Result, host string) (valid, expiry string) {
	if r == nil {
		return "", ""
	}
	if v := r.ValidFor(host); v != nil {
		valid = boolCell(*v)
	}
	if r.CertExpiry != nil {
		expiry = rfc3339(*r.CertExpiry)
	}
	return valid, expiry
}

// tlsCells are reachable (1/0) and the negotiated version ("none" without a session).
func tlsCells(r *tlsprobe.Result) (reachable, version string) {
	if r == nil {
		return "", ""
	}
	return boolCell(r.Reachable), r.Version
}

// pathRows writes path.csv; a family's cells are empty when its target was not reached
// (RECORDS.md), the reason being kept in domains.jsonl.
var pathRows = pairRows(func(p pairRow) []string {
	return append(append([]string{p.ip4, p.ip6}, pathCells(p.a4)...), pathCells(p.a6)...)
})

func pathCells(a *result.Address) []string {
	var r *path.Result
	if a != nil {
		r = a.Path
	}
	if r == nil || !r.Reached {
		return []string{"", "", "", ""}
	}
	var back string
	if r.Back > 0 {
		back = itoa(r.Back)
	}
	return []string{itoa(r.PMTUBytes), itoa(r.Hops), back, strings.Join(r.HopList, " ")}
}

// geoRows writes geoip.csv: one row per address of each host (IPv4 then IPv6, each
// sorted), the other family's cell empty; a host without addresses has no row.
func geoRows(d *store.Detail, emit func(...string)) {
	for _, ref := range d.Hosts {
		h := d.HostsByName[ref.Name]
		for _, ip := range slices.Concat(h.V4, h.V6) {
			cells := []string{string(ref.Role), d.Name, ref.Name, "", ""}
			if ip.Is4() {
				cells[3] = ip.String()
			} else {
				cells[4] = ip.String()
			}
			g := lookup(d, ip)
			if g == nil || g.Geo == nil {
				emit(append(cells, "", "", "", "", "", "")...)
				continue
			}
			r := g.Geo
			var asn string
			if r.ASN != nil {
				asn = strconv.FormatUint(uint64(*r.ASN), 10)
			}
			emit(append(cells, asn, r.City, r.Region, r.CountryCode, degrees(r.Lon), degrees(r.Lat))...)
		}
	}
}

// nsCheck returns the domain's SOA check at ip: the per-domain one, or in a store
// older than those the address's (asked for its best-ranked domain); nil when none.
func nsCheck(d *store.Detail, ip netip.Addr) *dns53.Result {
	if r := d.NSChecks[ip]; r != nil {
		return r
	}
	if a := lookup(d, ip); a != nil {
		return a.DNS53
	}
	return nil
}

// dns53Rows writes dns53.csv for ns hosts: the status of the domain's SOA query at each
// address, and (appended) the serial it answered.
var dns53Rows = pairRows(func(p pairRow) []string {
	status := func(r *dns53.Result) string {
		if r == nil {
			return ""
		}
		return string(r.Status)
	}
	return []string{p.ip4, p.ip6, status(p.ns4), status(p.ns6), serialCell(p.ns4), serialCell(p.ns6)}
}, result.RoleNS)

func serialCell(r *dns53.Result) string {
	if r == nil || r.SOASerial == nil {
		return ""
	}
	return strconv.FormatUint(uint64(*r.SOASerial), 10)
}

// nsSerials returns the distinct SOA serials the domain's name server addresses
// answered, sorted: more than one means they disagree.
func nsSerials(d *store.Detail) []uint32 {
	var out []uint32
	for _, r := range d.NSChecks {
		if r.SOASerial != nil && !slices.Contains(out, *r.SOASerial) {
			out = append(out, *r.SOASerial)
		}
	}
	slices.Sort(out)
	return out
}

// ntp123Rows writes ntp123.csv for ntp hosts: ntp is the stratum of an answer, else
// the status (timeout, unreachable, invalid).
var ntp123Rows = pairRows(func(p pairRow) []string {
	r4, r6 := ntpOf(p.a4), ntpOf(p.a6)
	return []string{p.ip4, p.ip6, ntpCell(r4), ntpCell(r6), offsetCell(r4), offsetCell(r6)}
}, result.RoleNTP)

func ntpOf(a *result.Address) *ntpprobe.Result {
	if a == nil {
		return nil
	}
	return a.NTP123
}

func ntpCell(r *ntpprobe.Result) string {
	switch {
	case r == nil:
		return ""
	case r.Status == ntpprobe.StatusOK && r.Stratum != nil:
		return itoa(*r.Stratum)
	}
	return string(r.Status)
}

func offsetCell(r *ntpprobe.Result) string {
	if r == nil {
		return ""
	}
	return millis(r.OffsetMillis)
}

// firstPTR returns the first PTR name, for JSON.
func firstPTR(r *ptr.Result) string {
	if len(r.Names) == 0 {
		return ""
	}
	return r.Names[0]
}

// millis formats milliseconds with 3 decimals; empty when not measured.
func millis(v *float64) string {
	if v == nil {
		return ""
	}
	return decimal3(*v)
}

func decimal3(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }

// degrees formats a coordinate with the digits the database gives.
func degrees(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// firstNonNil returns the first non-nil pointer.
func firstNonNil[T any](ps ...*T) *T {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}
