package dnssrv

import (
	"net"
	"strconv"

	"github.com/miekg/dns"
)

// Pools of shared hosts of the synthetic data, all under the TLD: name
// servers ns<k>.dnshost<j>, mail servers mx<k>.mailhost<j> and CDN hosts
// cdn<j>.cdnhost.
const (
	synNSProviders   = 100 // dnshost0..99, each with ns1..ns4: 400 hosts
	synNSPerProvider = 4
	synMailProviders = 50 // mailhost0..49, each with mx1..mx2: 100 hosts
	synMXPerProvider = 2
	synCDNHosts      = 20 // cdn0..19.cdnhost
	synTTL           = 3600
	synNegTTL        = 300
)

// synDomain is the shape of synthetic domain d<n>, derived from n alone.
type synDomain struct {
	n        int
	h        uint64 // mixed n, the source of per-domain choices
	nsHost   int    // provider of both NS
	nsFirst  int    // 1..4; the second NS is the next one
	mailHost int
	twoMX    bool
	nullMX   bool // one in 50
	noMX     bool // one in 20
	dual     bool // AAAA for ~40 %
	wwwCNAME bool // every 10th
	cdn      int
	ntp      bool // ntp and time for ~10 %
}

// mix is SplitMix64's finaliser: deterministic, well spread choices.
func mix(n int) uint64 {
	z := uint64(n) + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func newSynDomain(n int) synDomain {
	h := mix(n)
	return synDomain{
		n:        n,
		h:        h,
		nsHost:   int(h % synNSProviders),
		nsFirst:  int(h>>8%synNSPerProvider) + 1,
		mailHost: int(h >> 16 % synMailProviders),
		twoMX:    h>>24%2 == 0,
		nullMX:   n%50 == 0,
		noMX:     n%20 == 7,
		dual:     h>>32%5 < 2,
		wwwCNAME: n%10 == 3,
		cdn:      int(h >> 40 % synCDNHosts),
		ntp:      n%10 == 5,
	}
}

// synHost is a shared host: its owner name (without the TLD) and index.
type synHost struct {
	label string // e.g. "ns2.dnshost7"
	index int    // position in the pool, picks its addresses
}

// synHosts lists every shared host (NS, then MX, then CDN).
func synHosts() []synHost {
	var out []synHost
	for j := range synNSProviders {
		for k := 1; k <= synNSPerProvider; k++ {
			out = append(out, synHost{"ns" + strconv.Itoa(k) + ".dnshost" + strconv.Itoa(j), len(out)})
		}
	}
	for j := range synMailProviders {
		for k := 1; k <= synMXPerProvider; k++ {
			out = append(out, synHost{"mx" + strconv.Itoa(k) + ".mailhost" + strconv.Itoa(j), len(out)})
		}
	}
	for j := range synCDNHosts {
		out = append(out, synHost{"cdn" + strconv.Itoa(j) + ".cdnhost", len(out)})
	}
	return out
}

// Addresses: domains in 198.18.0.0/16 and 2001:db8::/64, shared hosts in
// 198.19.0.0/16 and 2001:db8:1::/64 (benchmarking and documentation ranges).
func synDomainV4(n, sub int) net.IP {
	return net.IPv4(198, 18, byte(n>>8), byte(n)+byte(sub))
}

func synDomainV6(n, sub int) net.IP {
	ip := net.ParseIP("2001:db8::").To16()
	ip[8], ip[9] = byte(sub>>8), byte(sub)
	ip[12], ip[13], ip[14], ip[15] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return ip
}

func synHostV4(i int) net.IP { return net.IPv4(198, 19, byte((i+1)>>8), byte(i+1)) }

func synHostV6(i int) net.IP {
	ip := net.ParseIP("2001:db8:1::").To16()
	ip[14], ip[15] = byte((i+1)>>8), byte(i+1)
	return ip
}

// hostDual reports whether shared host i has an AAAA (half of them do).
func hostDual(i int) bool { return i%2 == 0 }

func hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: synTTL}
}

func (d synDomain) apex(tld string) string { return "d" + strconv.Itoa(d.n) + "." + tld }

func (d synDomain) nsNames(tld string) [2]string {
	p := ".dnshost" + strconv.Itoa(d.nsHost) + "." + tld
	second := d.nsFirst%synNSPerProvider + 1
	return [2]string{"ns" + strconv.Itoa(d.nsFirst) + p, "ns" + strconv.Itoa(second) + p}
}

func (d synDomain) soa(tld string) dns.RR {
	apex := d.apex(tld)
	return &dns.SOA{Hdr: hdr(apex, dns.TypeSOA), Ns: d.nsNames(tld)[0], Mbox: "hostmaster." + apex,
		Serial: 2024010100, Refresh: 3600, Retry: 600, Expire: 604800, Minttl: synNegTTL}
}

// records appends the records of d owned by name (one of apex, www, ntp,
// time: given as "", "www", "ntp", "time") of type qtype (TypeANY: all).
func (d synDomain) records(dst []dns.RR, tld, label string, qtype uint16) []dns.RR {
	apex := d.apex(tld)
	want := func(t uint16) bool { return qtype == dns.TypeANY || qtype == t }
	switch label {
	case "":
		if want(dns.TypeSOA) {
			dst = append(dst, d.soa(tld))
		}
		if want(dns.TypeNS) {
			for _, ns := range d.nsNames(tld) {
				dst = append(dst, &dns.NS{Hdr: hdr(apex, dns.TypeNS), Ns: ns})
			}
		}
		if want(dns.TypeMX) {
			switch {
			case d.nullMX:
				dst = append(dst, &dns.MX{Hdr: hdr(apex, dns.TypeMX), Preference: 0, Mx: "."})
			case d.noMX:
			default:
				p := ".mailhost" + strconv.Itoa(d.mailHost) + "." + tld
				dst = append(dst, &dns.MX{Hdr: hdr(apex, dns.TypeMX), Preference: 10, Mx: "mx1" + p})
				if d.twoMX {
					dst = append(dst, &dns.MX{Hdr: hdr(apex, dns.TypeMX), Preference: 20, Mx: "mx2" + p})
				}
			}
		}
		dst = d.addrs(dst, apex, 0, qtype)
	case "www":
		if d.wwwCNAME {
			// A CNAME answers every type at its owner.
			return append(dst, &dns.CNAME{Hdr: hdr("www."+apex, dns.TypeCNAME), Target: d.cdnName(tld)})
		}
		dst = d.addrs(dst, "www."+apex, 0, qtype)
	case "ntp", "time":
		if d.ntp {
			sub := 1
			if label == "time" {
				sub = 2
			}
			dst = d.addrs(dst, label+"."+apex, sub, qtype)
		}
	}
	return dst
}

func (d synDomain) cdnName(tld string) string {
	return "cdn" + strconv.Itoa(d.cdn) + ".cdnhost." + tld
}

func (d synDomain) addrs(dst []dns.RR, owner string, sub int, qtype uint16) []dns.RR {
	if qtype == dns.TypeANY || qtype == dns.TypeA {
		dst = append(dst, &dns.A{Hdr: hdr(owner, dns.TypeA), A: synDomainV4(d.n, sub)})
	}
	if d.dual && (qtype == dns.TypeANY || qtype == dns.TypeAAAA) {
		dst = append(dst, &dns.AAAA{Hdr: hdr(owner, dns.TypeAAAA), AAAA: synDomainV6(d.n, sub)})
	}
	return dst
}

// hostRecords appends shared host i's address records of type qtype
// (TypeANY: all).
func hostRecords(dst []dns.RR, owner string, i int, qtype uint16) []dns.RR {
	if qtype == dns.TypeANY || qtype == dns.TypeA {
		dst = append(dst, &dns.A{Hdr: hdr(owner, dns.TypeA), A: synHostV4(i)})
	}
	if hostDual(i) && (qtype == dns.TypeANY || qtype == dns.TypeAAAA) {
		dst = append(dst, &dns.AAAA{Hdr: hdr(owner, dns.TypeAAAA), AAAA: synHostV6(i)})
	}
	return dst
}

// Synthetic returns every record of synthetic domain d<n>.<tld>: SOA, two NS
// from a pool of 400 shared name servers, MX (one or two from 100 shared mail
// hosts; one domain in 50 has a null MX, one in 20 none), apex and www A
// (AAAA for about 40 %; every 10th www is a CNAME to one of 20 shared CDN
// hosts), and ntp and time A/AAAA for one domain in 10. The shared hosts'
// records are in SyntheticHosts. The data depends on n alone; domains are
// numbered from 1 (n < 1 has no records).
func Synthetic(tld string, n int) []dns.RR {
	if n < 1 {
		return nil
	}
	tld = dns.CanonicalName(tld)
	d := newSynDomain(n)
	var out []dns.RR
	for _, label := range []string{"", "www", "ntp", "time"} {
		out = d.records(out, tld, label, dns.TypeANY)
	}
	return out
}

// SyntheticHosts returns the records of the shared hosts that synthetic
// domains under tld use: an A each, and an AAAA for half of them.
func SyntheticHosts(tld string) []dns.RR {
	tld = dns.CanonicalName(tld)
	var out []dns.RR
	for _, h := range synHosts() {
		out = hostRecords(out, h.label+"."+tld, h.index, dns.TypeANY)
	}
	return out
}
