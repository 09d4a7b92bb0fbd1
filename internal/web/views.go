package web

import (
	"cmp"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/summary"
)

// aggRow is an aggregate as the tables and the API show it: counts and percentages of
// measured domains (those whose lookups succeeded), flat for CSV.
type aggRow struct {
	Key         string  `json:"key"`
	Name        string  `json:"name"`
	Domains     int     `json:"domains"`
	Measured    int     `json:"measured"`
	NS          int     `json:"ns"`
	MX          int     `json:"mx"`
	WWW         int     `json:"www"`
	NTP         int     `json:"ntp"`
	All         int     `json:"all"`
	Any         int     `json:"any"`
	NSPct       float64 `json:"ns_pct"`
	MXPct       float64 `json:"mx_pct"`
	WWWPct      float64 `json:"www_pct"`
	NTPPct      float64 `json:"ntp_pct"`
	AllPct      float64 `json:"all_pct"`
	AnyPct      float64 `json:"any_pct"`
	NSReach     int     `json:"ns_reachable"`
	MXReach     int     `json:"mx_reachable"`
	WWWReach    int     `json:"www_reachable"`
	NTPReach    int     `json:"ntp_reachable"`
	Unknown     int     `json:"unknown"`
	Unreachable int     `json:"unreachable"`
	BlackHole   int     `json:"pmtu_black_hole"`
	V4Addresses int     `json:"v4_addresses"`
	V6Addresses int     `json:"v6_addresses"`
	V6Reachable int     `json:"v6_reachable_addresses"`
}

// round3 keeps three decimals, as the record files do.
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func rowOf(g result.Aggregate) aggRow {
	p := func(n int) float64 { return round3(result.Percent(n, g.Measured)) }
	return aggRow{Key: g.Key, Name: g.Name, Domains: g.Domains, Measured: g.Measured,
		NS: g.IPv6[0], MX: g.IPv6[1], WWW: g.IPv6[2], NTP: g.IPv6[3], All: g.All, Any: g.AnyIPv6,
		NSPct: p(g.IPv6[0]), MXPct: p(g.IPv6[1]), WWWPct: p(g.IPv6[2]), NTPPct: p(g.IPv6[3]), AllPct: p(g.All), AnyPct: p(g.AnyIPv6),
		NSReach: g.Reachable[0], MXReach: g.Reachable[1], WWWReach: g.Reachable[2], NTPReach: g.Reachable[3],
		Unknown: g.Unknown, Unreachable: g.Unreachable, BlackHole: g.BlackHole,
		V4Addresses: g.V4Addresses, V6Addresses: g.V6Addresses, V6Reachable: g.V6ReachableAddress}
}

// aggSorts are the columns an aggregate table sorts by.
var aggSorts = map[string]func(a, b *aggRow) int{
	"key":      func(a, b *aggRow) int { return strings.Compare(a.Key, b.Key) },
	"name":     func(a, b *aggRow) int { return strings.Compare(a.Name+a.Key, b.Name+b.Key) },
	"domains":  func(a, b *aggRow) int { return a.Domains - b.Domains },
	"ns":       func(a, b *aggRow) int { return cmp.Compare(a.NSPct, b.NSPct) },
	"mx":       func(a, b *aggRow) int { return cmp.Compare(a.MXPct, b.MXPct) },
	"www":      func(a, b *aggRow) int { return cmp.Compare(a.WWWPct, b.WWWPct) },
	"ntp":      func(a, b *aggRow) int { return cmp.Compare(a.NTPPct, b.NTPPct) },
	"all":      func(a, b *aggRow) int { return cmp.Compare(a.AllPct, b.AllPct) },
	"any":      func(a, b *aggRow) int { return cmp.Compare(a.AnyPct, b.AnyPct) },
	"v6":       func(a, b *aggRow) int { return a.V6Addresses - b.V6Addresses },
	"reach":    func(a, b *aggRow) int { return a.WWWReach - b.WWWReach },
	"measured": func(a, b *aggRow) int { return a.Measured - b.Measured },
}

// sortRows orders rows by a column (ties by key); it reports an unknown column.
func sortRows(rows []aggRow, by string, desc bool) error {
	f, ok := aggSorts[by]
	if !ok {
		return badRequest("sort %q: want one of key, name, domains, measured, ns, mx, www, ntp, all, any, v6, reach", by)
	}
	slices.SortStableFunc(rows, func(a, b aggRow) int {
		c := f(&a, &b)
		if c == 0 {
			c = strings.Compare(a.Key, b.Key)
			if desc {
				c = -c
			}
		}
		if desc {
			return -c
		}
		return c
	})
	return nil
}

// domainRow is a domain's summary as tables and the API show it.
type domainRow struct {
	Domain      string `json:"domain"`
	Rank        int    `json:"rank"`
	TLD         string `json:"tld"`
	Status      string `json:"status"`
	NS          string `json:"ns"`
	MX          string `json:"mx"`
	WWW         string `json:"www"`
	NTP         string `json:"ntp"`
	NSReach     string `json:"ns_reachable"`
	MXReach     string `json:"mx_reachable"`
	WWWReach    string `json:"www_reachable"`
	NTPReach    string `json:"ntp_reachable"`
	Broken      string `json:"broken"`
	IPv6Roles   int    `json:"ipv6_roles"`
	AllFourIPv6 bool   `json:"all_four"`
}

func domainRowOf(d *result.DomainSummary) domainRow {
	r := domainRow{Domain: d.Name, Rank: d.Rank, TLD: d.TLD, Status: string(d.Status), Broken: string(d.Broken), AllFourIPv6: d.AllFour(),
		NS: string(d.Roles[0].IPv6), MX: string(d.Roles[1].IPv6), WWW: string(d.Roles[2].IPv6), NTP: string(d.Roles[3].IPv6),
		NSReach: string(d.Roles[0].Reachable), MXReach: string(d.Roles[1].Reachable), WWWReach: string(d.Roles[2].Reachable), NTPReach: string(d.Roles[3].Reachable)}
	for _, x := range d.Roles {
		if x.IPv6 == result.Yes {
			r.IPv6Roles++
		}
	}
	return r
}

// Cells returns the four role values, for templates.
func (r domainRow) Cells() [4]string { return [4]string{r.NS, r.MX, r.WWW, r.NTP} }

// Reach returns the four reachability values, for templates.
func (r domainRow) Reach() [4]string {
	return [4]string{r.NSReach, r.MXReach, r.WWWReach, r.NTPReach}
}

// hostView is one host of a domain page.
type hostView struct {
	Role   result.Role
	Name   string
	Rank   int
	Status result.Status
	CNAME  []string
	Addrs  []addrView
}

// addrView is one address with every measurement, for the domain page, formatted
// here rather than in the template: a page of the long tail is mostly this table,
// and each template action costs a reflective call.
type addrView struct {
	IP      string
	Broken  result.Broken
	Type    string // the address class, e.g. "native, IID random"
	Skipped string
	PTR     string
	Geo     *geoView
	Ping    string // "3/3: 18.8 / 18.8 / 18.9"
	TCP     string // 25 / 80 / 443, e.g. "open / – / filtered"
	TLS     string // e.g. "TLS 1.3, certificate valid"
	Path    string // e.g. "MTU 1500, 9 hops, back 9"
	HopList string
}

// geoView is the location column of an address.
type geoView struct {
	CC, City, ASN, ASOrg string
}

// hostViewOf returns a host of a domain with its addresses.
func hostViewOf(d *store.Detail, ref result.HostRef) hostView {
	h := d.HostsByName[ref.Name]
	v := hostView{Role: ref.Role, Name: ref.Name, Rank: ref.Rank, Status: h.Status, CNAME: h.CNAME}
	for _, ip := range append(h.V4[:len(h.V4):len(h.V4)], h.V6...) {
		a := d.Addrs[ip]
		a.IP = ip
		v.Addrs = append(v.Addrs, addrViewOf(ref.Role, ref.Name, &a))
	}
	return v
}

// addrViewOf returns an address of a host in a role (the certificate judged for host).
func addrViewOf(role result.Role, host string, a *result.Address) addrView {
	v := addrView{IP: a.IP.String(), Skipped: a.Skipped, Broken: summary.Broken(a)}
	if c := a.Class; c != nil {
		v.Type = c.Type
		if !c.Valid {
			v.Type += " (not routable)"
		}
		if c.IID != "" {
			v.Type += ", IID " + c.IID
		}
		if c.PrefixID != "" {
			v.Type += ", " + c.PrefixID
		}
	}
	if a.PTR != nil && len(a.PTR.Names) > 0 {
		v.PTR = strings.Join(a.PTR.Names, " ")
	}
	if g := a.Geo; g != nil {
		v.Geo = &geoView{CC: g.CountryCode, City: g.City, ASOrg: g.ASOrg}
		if g.ASN != nil {
			v.Geo.ASN = strconv.FormatUint(uint64(*g.ASN), 10)
		}
	}
	if p := a.Ping; p != nil {
		v.Ping = strconv.Itoa(p.Received) + "/" + strconv.Itoa(p.Sent)
		if p.AvgMillis != nil {
			v.Ping += ": " + millis(p.MinMillis) + " / " + millis(p.AvgMillis) + " / " + millis(p.MaxMillis)
		}
	}
	tcp := make([]string, 3)
	for i, port := range []int{25, 80, 443} {
		tcp[i] = "–"
		if t := a.TCP(port); t != nil && t.State != "" {
			tcp[i] = string(t.State)
		}
	}
	v.TCP = strings.Join(tcp, " / ")
	t := a.TLS443
	if role == result.RoleMX {
		t = a.STARTTLS
	}
	if t != nil {
		v.TLS = t.Version
		if !t.Reachable {
			v.TLS = "unreachable"
		}
		if valid := t.ValidFor(host); valid != nil {
			v.TLS += ", certificate " + map[bool]string{true: "valid", false: "invalid"}[*valid]
		}
	}
	if p := a.Path; p != nil {
		v.Path = "MTU " + strconv.Itoa(p.PMTUBytes)
		if p.Reached {
			v.Path += ", " + strconv.Itoa(p.Hops) + " hops, back " + strconv.Itoa(p.Back)
		} else {
			v.Path += ", " + p.Reason
		}
		v.HopList = strings.Join(p.HopList, " ")
	}
	return v
}

// millis formats a round-trip time, empty when it was not measured.
func millis(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', 1, 64)
}

// historyRow is one run of a domain's history, with what changed since the run before.
type historyRow struct {
	Run     int64
	Started time.Time
	Row     domainRow
	Changes []string // e.g. "www: IPv6 appeared"
}

func historyOf(ps []store.HistoryPoint) []historyRow {
	var out []historyRow
	for i, p := range ps {
		h := historyRow{Run: p.Run, Started: p.Started, Row: domainRowOf(&p.DomainSummary)}
		if i > 0 {
			prev := ps[i-1].DomainSummary
			for k, role := range result.Roles {
				was, is := prev.Roles[k].IPv6, p.Roles[k].IPv6
				switch {
				case was == result.No && is == result.Yes:
					h.Changes = append(h.Changes, string(role)+": IPv6 appeared")
				case was == result.Yes && is == result.No:
					h.Changes = append(h.Changes, string(role)+": IPv6 went away")
				}
			}
		}
		out = append(out, h)
	}
	return out
}
