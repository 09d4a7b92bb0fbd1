package export

import (
	"strconv"
	"strings"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/summary"
)

// pairs returns the (ipv4, ipv6) cells of a host: row i pairs the i-th IPv4 with the
// i-th IPv6 address, both sorted; one row with empty cells when there is none.
func pairs(h result.Host) [][2]string {
	n := max(len(h.V4), len(h.V6), 1)
	out := make([][2]string, n)
	for i := range n {
		if i < len(h.V4) {
			out[i][0] = h.V4[i].String()
		}
		if i < len(h.V6) {
			out[i][1] = h.V6[i].String()
		}
	}
	return out
}

// nsRows writes ns.csv: the host rows with where the NS names came from appended.
func nsRows(d *store.Detail, emit func(...string)) {
	hostRows(result.RoleNS, true)(d, func(cells ...string) { emit(append(cells, d.NSSource)...) })
}

// hostRows writes ns.csv (without its appended column), mx.csv, www.csv and ntp.csv rows.
func hostRows(role result.Role, withRank bool) func(*store.Detail, func(...string)) {
	return func(d *store.Detail, emit func(...string)) {
		for _, ref := range d.Hosts {
			if ref.Role != role {
				continue
			}
			for _, p := range pairs(d.HostsByName[ref.Name]) {
				if withRank {
					emit(string(role), d.Name, ref.Name, p[0], p[1], itoa(ref.Rank))
				} else {
					emit(string(role), d.Name, ref.Name, p[0], p[1])
				}
			}
		}
	}
}

// mxRows writes mx.csv; a null MX is one row with host "." and rank 0.
func mxRows(d *store.Detail, emit func(...string)) {
	if d.NullMX {
		emit("mx", d.Name, ".", "", "", "0")
	}
	hostRows(result.RoleMX, true)(d, emit)
}

func soaRows(d *store.Detail, emit func(...string)) {
	s := d.SOA
	if s == nil {
		return
	}
	u := func(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
	var inhouse, secondary string
	if s.PrimaryByRank != "" {
		inhouse = boolCell(s.PrimaryInhouse)
	}
	if s.Total > 0 {
		secondary = itoa(s.Total - 1)
	}
	// serials_differ: 1 when the name servers answered different SOA serials, empty
	// when none was asked (no probe stage).
	var differ string
	if serials := nsSerials(d); len(serials) > 0 {
		differ = boolCell(len(serials) > 1)
	}
	// parent_only, child_only: the NS names only the parent's delegation or only the
	// domain's own NS answer lists.
	var parentOnly, childOnly string
	if dl := d.Delegation; dl != nil {
		parentOnly, childOnly = strings.Join(dl.ParentOnly, " "), strings.Join(dl.ChildOnly, " ")
	}
	emit("soa", d.Name, s.MName, s.PrimaryByRank, inhouse, secondary, itoa(s.Total), s.RName,
		u(s.Serial), u(s.Refresh), u(s.Retry), u(s.Expire), u(s.Minimum), differ, parentOnly, childOnly)
}

// ipv6typeRows writes one row per (domain, role, host, IPv6 address).
func ipv6typeRows(d *store.Detail, emit func(...string)) {
	for _, ref := range d.Hosts {
		for _, ip := range d.HostsByName[ref.Name].V6 {
			c := d.Addrs[ip].Class
			if c == nil {
				emit(string(ref.Role), d.Name, ref.Name, ip.String(), "", "", "", "")
				continue
			}
			emit(string(ref.Role), d.Name, ref.Name, ip.String(), boolCell(c.Valid), c.PrefixID, c.Type, c.IID)
		}
	}
}

// hasValidIPv6 reports, per role, whether a host of that role has a valid IPv6 address;
// ipv6Unknown returns the roles without one where a host's AAAA lookup failed (timeout,
// SERVFAIL...): for them, 0 means "not seen", not "none". Both read the domain's
// summary, the one place that decides (internal/summary, which the website shows).
func hasValidIPv6(d *store.Detail) map[result.Role]bool {
	s := summary.Of(d)
	out := map[result.Role]bool{}
	for i, r := range result.Roles {
		if s.Roles[i].IPv6 == result.Yes {
			out[r] = true
		}
	}
	return out
}

func ipv6Unknown(d *store.Detail) []string {
	s := summary.Of(d)
	var out []string
	for i, r := range result.Roles {
		if s.Roles[i].IPv6 == result.Unknown {
			out = append(out, string(r))
		}
	}
	return out
}

// ipv6domainRows writes the per-domain summary; the role cells stay empty when the
// domain was not measured (excluded, nxdomain, ...). ipv6_unknown lists the roles whose
// 0 comes from a failed lookup.
func ipv6domainRows(d *store.Detail, emit func(...string)) {
	cells := []string{d.Name, "", "", "", ""}
	var unknown string
	if d.Status == result.StatusOK {
		v := hasValidIPv6(d)
		for i, r := range result.Roles {
			cells[i+1] = boolCell(v[r])
		}
		unknown = strings.Join(ipv6Unknown(d), " ")
	}
	emit(append(cells, d.TLD, itoa(d.Rank), string(d.Status), unknown)...)
}
