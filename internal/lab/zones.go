package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// defaultSerial is the SOA serial of zones whose scenario does not set one.
const defaultSerial = 2026010101

// ZoneData is one generated zone: its origin, name servers and master-file text.
type ZoneData struct {
	// Origin is the zone's apex as an FQDN ("." for the root).
	Origin string
	// NS are the names of its servers, as FQDNs.
	NS []string
	// Lame are servers of NS (or of the parent's delegation) that do not load the zone.
	Lame []string
	// Text is the zone in master-file format.
	Text string
}

// fqdn returns name with exactly one trailing dot and in lower case.
func fqdn(name string) string { return dns.CanonicalName(name) }

// Zones generates every zone the lab serves: the root, the TLDs, the delegated domains and
// the reverse zones, with delegations and glue, sorted by origin.
func (s *Scenario) Zones() ([]ZoneData, error) {
	type zone struct {
		ns, parentNS, lame []string
		soa                SOA
		lines              []string
	}
	zones := map[string]*zone{}
	add := func(origin string, ns []string, soa SOA) {
		z := &zone{soa: soa}
		for _, n := range ns {
			z.ns = append(z.ns, fqdn(n))
		}
		zones[fqdn(origin)] = z
	}
	add(".", s.Root, SOA{})
	for tld, ns := range s.TLDs {
		add(tld, ns, SOA{})
	}
	for _, rz := range s.Reverse.Zones {
		add(rz, s.Reverse.Nameservers, SOA{})
	}
	for _, d := range s.Domains {
		if d.IsDelegated() {
			add(d.Name, d.NS, d.SOA)
			z := zones[fqdn(d.Name)]
			for _, n := range d.ParentNS {
				z.parentNS = append(z.parentNS, fqdn(n))
			}
			for _, n := range d.Lame {
				z.lame = append(z.lame, fqdn(n))
			}
		}
	}
	// closest returns the most specific zone holding name, excluding name itself when skipSelf.
	closest := func(name string, skipSelf bool) string {
		best := ""
		for o := range zones {
			if (skipSelf && o == name) || !dns.IsSubDomain(o, name) {
				continue
			}
			if best == "" || dns.CountLabel(o) > dns.CountLabel(best) {
				best = o
			}
		}
		return best
	}
	addrs := map[string][]netip.Addr{}
	for _, ns := range s.Nameservers {
		addrs[fqdn(ns.Name)] = append(addrs[fqdn(ns.Name)], s.Set(ns.Set)...)
	}
	for _, d := range s.Domains {
		for rel, set := range d.Hosts {
			name := fqdn(d.Name)
			if rel != "@" {
				name = fqdn(rel + "." + d.Name)
			}
			addrs[name] = append(addrs[name], s.Set(set)...)
		}
	}
	addrLines := func(name string) []string {
		var out []string
		for _, a := range addrs[name] {
			t := "A"
			if !a.Is4() {
				t = "AAAA"
			}
			out = append(out, fmt.Sprintf("%s 3600 IN %s %s", name, t, a))
		}
		return out
	}
	for name := range addrs {
		if z := zones[closest(name, false)]; z != nil {
			z.lines = append(z.lines, addrLines(name)...)
		}
	}
	for origin, z := range zones {
		if origin == "." {
			continue
		}
		parent := zones[closest(origin, true)]
		delegated := z.ns
		if z.parentNS != nil {
			delegated = z.parentNS
		}
		for _, n := range delegated {
			parent.lines = append(parent.lines, fmt.Sprintf("%s 86400 IN NS %s", origin, n))
			if dns.IsSubDomain(origin, n) || closest(origin, true) == "." {
				parent.lines = append(parent.lines, addrLines(n)...)
			}
		}
	}
	for name, set := range s.AddrSets {
		if set.PTR == "" {
			continue
		}
		for _, a := range set.Addrs {
			rev, err := dns.ReverseAddr(a.String())
			if err != nil {
				return nil, fmt.Errorf("addrset %s: reverse of %s: %w", name, a, err)
			}
			if z := zones[closest(rev, false)]; z != nil && closest(rev, false) != "." {
				z.lines = append(z.lines, fmt.Sprintf("%s 3600 IN PTR %s", rev, fqdn(set.PTR)))
			}
		}
	}
	for _, d := range s.Domains {
		z := zones[fqdn(d.Name)]
		if z == nil {
			continue
		}
		for _, mx := range d.MX {
			z.lines = append(z.lines, fmt.Sprintf("%s 3600 IN MX %d %s", fqdn(d.Name), mx.Pref, fqdn(mx.Host)))
		}
		z.lines = append(z.lines, "$ORIGIN "+fqdn(d.Name))
		z.lines = append(z.lines, d.Records...)
	}
	out := make([]ZoneData, 0, len(zones))
	for origin, z := range zones {
		var b strings.Builder
		mname := z.ns[0]
		if z.soa.MName != "" {
			mname = fqdn(z.soa.MName)
		}
		rname := fqdn("hostmaster." + strings.TrimPrefix(origin, "."))
		if origin == "." {
			rname = "hostmaster.root-servers.net."
		}
		if z.soa.RName != "" {
			rname = fqdn(z.soa.RName)
		}
		serial := z.soa.Serial
		if serial == 0 {
			serial = defaultSerial
		}
		fmt.Fprintf(&b, "$ORIGIN %s\n$TTL 3600\n", origin)
		fmt.Fprintf(&b, "%s 3600 IN SOA %s %s %d 7200 3600 1209600 3600\n", origin, mname, rname, serial)
		for _, n := range z.ns {
			fmt.Fprintf(&b, "%s 86400 IN NS %s\n", origin, n)
		}
		// Records before any $ORIGIN line are absolute; sort those for a stable text.
		head, tail := z.lines, []string(nil)
		if i := slices.IndexFunc(z.lines, func(l string) bool { return strings.HasPrefix(l, "$ORIGIN") }); i >= 0 {
			head, tail = z.lines[:i], z.lines[i:]
		}
		head = slices.Clone(head)
		sort.Strings(head)
		head = slices.Compact(head)
		for _, l := range append(head, tail...) {
			b.WriteString(l + "\n")
		}
		servers := slices.Concat(z.ns, z.parentNS)
		slices.Sort(servers)
		out = append(out, ZoneData{Origin: origin, NS: slices.Compact(servers), Lame: z.lame, Text: b.String()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Origin < out[j].Origin })
	return out, nil
}
