package lab

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// Status values a crawl reports for a domain (RECORDS.md, ipv6domain.status).
const (
	StatusOK       = "ok"
	StatusNXDomain = "nxdomain"
	StatusServFail = "servfail"
	StatusTimeout  = "timeout"
)

// Expect is what a correct crawl of the lab reports for one domain.
type Expect struct {
	// Status is ok, nxdomain, servfail or timeout.
	Status string `yaml:"status"`
	// SOA is the expected SOA (nil when the domain does not resolve).
	SOA *SOA `yaml:"soa"`
	// NS, MX, WWW and NTP are the expected hosts per role, in the file's order.
	NS  []ExpectHost `yaml:"ns"`
	MX  []ExpectHost `yaml:"mx"`
	WWW []ExpectHost `yaml:"www"`
	NTP []ExpectHost `yaml:"ntp"`
	// NullMX is true for a domain publishing "MX 0 ." (RFC 7505).
	NullMX bool `yaml:"null_mx"`
	// IPv6 is the ipv6domain summary with --allow-ranges set to the scenario's AllowRanges.
	IPv6 IPv6Summary `yaml:"ipv6"`
	// NSSource is where the NS hosts come from: "child" (the default when NS is set) or
	// "parent" (the domain's own NS query fails; the parent's delegation).
	NSSource string `yaml:"ns_source"`
	// ParentOnly and ChildOnly are the NS names only the parent's delegation or only the
	// domain's own NS answer lists.
	ParentOnly []string `yaml:"parent_only"`
	ChildOnly  []string `yaml:"child_only"`
}

// ExpectHost is one expected host of a role with its addresses.
type ExpectHost struct {
	// Host is the host name (no trailing dot).
	Host string `yaml:"host"`
	// Pref is the MX preference (mx hosts only).
	Pref uint16 `yaml:"pref"`
	// CNAME is the chain of canonical names followed from Host, in order.
	CNAME []string `yaml:"cname"`
	// Set names an address set; Addrs lists addresses instead. Either may be empty.
	Set   string       `yaml:"set"`
	Addrs []netip.Addr `yaml:"addrs"`
	// IPv4 and IPv6 are the expected addresses, sorted (filled from Set and Addrs at load).
	IPv4 []netip.Addr `yaml:"-"`
	IPv6 []netip.Addr `yaml:"-"`
}

// IPv6Summary is RECORDS.md's ipv6domain row: whether a role has a valid IPv6 address.
type IPv6Summary struct {
	NS  bool `yaml:"ns"`
	MX  bool `yaml:"mx"`
	WWW bool `yaml:"www"`
	NTP bool `yaml:"ntp"`
}

// resolveExpect fills IPv4/IPv6 of every expected host.
func (s *Scenario) resolveExpect(d *Domain) error {
	switch d.Expect.Status {
	case StatusOK, StatusNXDomain, StatusServFail, StatusTimeout:
	default:
		return fmt.Errorf("domain %s: expect.status %q is not ok, nxdomain, servfail or timeout", d.Name, d.Expect.Status)
	}
	for _, hs := range [][]ExpectHost{d.Expect.NS, d.Expect.MX, d.Expect.WWW, d.Expect.NTP} {
		for i := range hs {
			h := &hs[i]
			addrs := slices.Clone(h.Addrs)
			if h.Set != "" {
				set, ok := s.AddrSets[h.Set]
				if !ok {
					return fmt.Errorf("domain %s: expect host %s: unknown set %q", d.Name, h.Host, h.Set)
				}
				addrs = append(addrs, set.Addrs...)
			}
			h.IPv4, h.IPv6 = splitFamilies(addrs)
		}
	}
	return nil
}

// splitFamilies returns the IPv4 and IPv6 addresses of addrs, each sorted. IPv4-mapped
// IPv6 addresses stay IPv6 (they are what an AAAA record holds).
func splitFamilies(addrs []netip.Addr) (v4, v6 []netip.Addr) {
	for _, a := range addrs {
		if a.Is4() {
			v4 = append(v4, a)
		} else {
			v6 = append(v6, a)
		}
	}
	slices.SortFunc(v4, netip.Addr.Compare)
	slices.SortFunc(v6, netip.Addr.Compare)
	return v4, v6
}

// validate checks names and references, then resolves the expectations.
func (s *Scenario) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	nodes := map[string]bool{}
	for _, n := range s.Nodes {
		switch {
		case n.Name == "" || len(n.Name) > 8 || strings.ContainsAny(n.Name, "/ ."):
			bad("node %q: name must be 1-8 characters without '/', ' ' or '.'", n.Name)
		case nodes[n.Name]:
			bad("node %q: defined twice", n.Name)
		}
		switch n.Role {
		case "vantage", "router", "host":
		default:
			bad("node %s: role %q is not vantage, router or host", n.Name, n.Role)
		}
		nodes[n.Name] = true
	}
	if s.Node(s.Vantage) == nil {
		bad("vantage %q: no such node", s.Vantage)
	}
	if !s.Resolver.IsValid() {
		bad("resolver: an address:port is required")
	}
	for _, l := range s.Links {
		if l.Name == "" || len(l.Name) > 15 || nodes[l.Name] {
			bad("link %q: name must be 1-15 characters and differ from every node name", l.Name)
		}
		if l.MTU < 1280 || l.MTU > 9000 {
			bad("link %s: mtu %d is outside 1280-9000", l.Name, l.MTU)
		}
		if l.Bridge == "" && len(l.Ends) != 2 {
			bad("link %s: a link without a bridge needs exactly 2 ends, has %d", l.Name, len(l.Ends))
		}
		if l.Bridge != "" && !nodes[l.Bridge] {
			bad("link %s: bridge node %q does not exist", l.Name, l.Bridge)
		}
		for _, e := range l.Ends {
			if !nodes[e.Node] {
				bad("link %s: node %q does not exist", l.Name, e.Node)
			}
		}
	}
	for name, set := range s.AddrSets {
		if len(set.Addrs) == 0 {
			bad("addrset %s: no addresses", name)
		}
	}
	for _, sv := range s.Services {
		if _, ok := s.AddrSets[sv.Set]; !ok {
			bad("service %s: unknown set %q", sv.Kind, sv.Set)
		}
		switch sv.Kind {
		case "http", "https", "smtp", "ntp", "tcp":
		default:
			bad("service on %s: kind %q is not http, https, smtp, ntp or tcp", sv.Set, sv.Kind)
		}
		switch sv.Cert {
		case "", "valid", "expired", "wrongname":
		default:
			bad("service %s on %s: cert %q is not valid, expired or wrongname", sv.Kind, sv.Set, sv.Cert)
		}
	}
	nsNames := map[string]bool{}
	for _, ns := range s.Nameservers {
		nsNames[ns.Name] = true
		if _, ok := s.AddrSets[ns.Set]; !ok {
			bad("nameserver %s: unknown set %q", ns.Name, ns.Set)
		}
		switch ns.Fault {
		case "", "drop", "servfail", "v4only":
		default:
			bad("nameserver %s: fault %q is not drop, servfail or v4only", ns.Name, ns.Fault)
		}
	}
	checkNS := func(where string, names []string) {
		if len(names) == 0 {
			bad("%s: no name servers", where)
		}
		for _, n := range names {
			if !nsNames[n] {
				bad("%s: name server %q is not in nameservers", where, n)
			}
		}
	}
	checkNS("root", s.Root)
	for tld, names := range s.TLDs {
		checkNS("tld "+tld, names)
	}
	if len(s.Reverse.Zones) > 0 {
		checkNS("reverse", s.Reverse.Nameservers)
	}
	seen := map[string]bool{}
	for i := range s.Domains {
		d := &s.Domains[i]
		if seen[d.Name] {
			bad("domain %s: listed twice", d.Name)
		}
		seen[d.Name] = true
		if _, ok := s.TLDs[tldOf(d.Name)]; !ok {
			bad("domain %s: tld %q is not in tlds", d.Name, tldOf(d.Name))
		}
		checkNS("domain "+d.Name, d.NS)
		if d.ParentNS != nil {
			checkNS("domain "+d.Name+" parent_ns", d.ParentNS)
		}
		for _, n := range d.Lame {
			if !slices.Contains(d.NS, n) && !slices.Contains(d.ParentNS, n) {
				bad("domain %s: lame name server %q is not in ns or parent_ns", d.Name, n)
			}
		}
		if src := d.Expect.NSSource; src != "" && src != "child" && src != "parent" {
			bad("domain %s: expect.ns_source %q is not child or parent", d.Name, src)
		}
		for rel, set := range d.Hosts {
			if _, ok := s.AddrSets[set]; !ok {
				bad("domain %s: host %s: unknown set %q", d.Name, rel, set)
			}
		}
		if err := s.resolveExpect(d); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// tldOf returns the last label of a domain name.
func tldOf(name string) string {
	name = strings.TrimSuffix(name, ".")
	return name[strings.LastIndexByte(name, '.')+1:]
}
