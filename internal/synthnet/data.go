package synthnet

import (
	"bytes"
	"fmt"
	"iter"
	"net/netip"
	"slices"
	"strconv"

	"github.com/miekg/dns"
	"github.com/v6matrix/v6matrix/internal/dnssrv"
)

// The synthetic Internet's address plan. Every address is in 198.18.0.0/15 (RFC 2544
// benchmarking) or 2001:db8::/32 (documentation); the world answers on all of
// 198.18.0.0/16, 198.19.0.0/17 and 2001:db8::/33, the links use 198.19.255.0/24 and
// 2001:db8:ffff::/48, outside them.
var (
	// AllowRanges are the crawl's --allow-ranges: the two ranges and nothing else.
	AllowRanges = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/15"), netip.MustParsePrefix("2001:db8::/32")}
	// worldV4 and worldV6 answer on every address (AnyIP local routes in the world).
	worldV4 = []netip.Prefix{netip.MustParsePrefix("198.18.0.1/16"), netip.MustParsePrefix("198.19.0.53/17")}
	worldV6 = []netip.Prefix{netip.MustParsePrefix("2001:db8::1/33")}
	// ResolverAddr is NSD's address, in the world: authoritative for every zone.
	ResolverAddr = netip.MustParseAddrPort("198.19.0.53:53")
	// HotNet is the /48 that holds Data.HotShare of the addresses.
	HotNet = netip.MustParsePrefix("2001:db8:7fff::/48")
)

// Sizes of the shared host pools.
const (
	nsProviders    = 200 // ns1, ns2.dns<k>.<tld>: 400 name servers
	mxProviders    = 100 // mx1, mx2.mail<k>.<tld>: 200 mail servers
	ntpServers     = 100 // ntp<k>.pool.<tld>
	v4Nets         = 256 // web IPv4 addresses spread over the /24s of 198.18.0.0/16
	v6Nets         = 0x7e00
	maxWebV4       = 250 * v4Nets
	defaultTLD     = "test"
	synthSOASerial = 2026120601
)

// Data describes the synthetic Internet's DNS data: Domains domains d1..dN.<TLD> whose
// apex and www share a web address (a third of a domain's in IPv4, from a pool of 0.32 N;
// AAAA for 40 % from a pool of 0.12 N), two name servers and one or two mail servers of
// shared providers, and for one domain in ten an ntp host on one of 100 NTP servers. About
// 0.45 N unique addresses.
type Data struct {
	Domains int
	TLD     string
	// HotShare is the fraction of all addresses put in HotNet (0: none), for the
	// scheduler's largest-network case.
	HotShare float64
}

func (d Data) tld() string {
	if d.TLD == "" {
		return defaultTLD
	}
	return d.TLD
}

func (d Data) webV4Pool() int { return min(max(d.Domains*32/100, 1), maxWebV4) }
func (d Data) webV6Pool() int { return max(d.Domains*12/100, 1) }

// hot is how many web IPv6 addresses are in HotNet.
func (d Data) hot() int {
	total := d.webV4Pool() + d.webV6Pool()
	return min(int(d.HotShare*float64(total)+0.5), d.webV6Pool())
}

// mix is SplitMix64's finaliser: per-domain choices from n alone.
func mix(n int) uint64 {
	z := uint64(n) + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func v4(a, b, c, e int) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(a), byte(b), byte(c), byte(e)})
}

func v6(group2 uint16, low uint32) netip.Addr {
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	b[4], b[5] = byte(group2>>8), byte(group2)
	b[12], b[13], b[14], b[15] = byte(low>>24), byte(low>>16), byte(low>>8), byte(low)
	return netip.AddrFrom16(b)
}

// webV4 is web address i: 198.18.0.0/16, spread over its /24s (so that no /24 holds
// more addresses than HotNet).
func webV4(i int) netip.Addr { return v4(198, 18, i%v4Nets, i/v4Nets+1) }

// webV6 is web address i: the first hot ones in HotNet, the others one to a /48.
func (d Data) webV6(i int) netip.Addr {
	if i < d.hot() {
		return v6(0x7fff, uint32(i+1))
	}
	return v6(uint16(0x100+i%v6Nets), uint32(i/v6Nets+1))
}

// Shared hosts k of a pool with its base and span: spread over span networks, IPv4 in
// 198.19.<base>.0/24 and on, IPv6 (every other host) in 2001:db8:<base>::/48 and on.
func sharedV4(base, span, k int) netip.Addr { return v4(198, 19, base+k%span, k/span+1) }
func sharedV6(base, span, k int) netip.Addr { return v6(uint16(base+k%span), uint32(k/span+1)) }

// host is one shared host: name (relative to the TLD) and addresses.
type host struct {
	name   string
	v4, v6 netip.Addr // v6 invalid when IPv4-only
}

// pool returns the shared hosts of a pool with its address base.
func pool(n, base, span int, name func(k int) string) []host {
	out := make([]host, n)
	for k := range out {
		out[k] = host{name: name(k), v4: sharedV4(base, span, k)}
		if k%2 == 0 {
			out[k].v6 = sharedV6(base, span, k)
		}
	}
	return out
}

// The shared host pools, made once.
var (
	nsPool  = nameServers()
	mxPool  = mailServers()
	ntpPool = ntpHosts()
)

func nameServers() []host {
	return pool(2*nsProviders, 1, 64, func(k int) string { return "ns" + strconv.Itoa(k%2+1) + ".dns" + strconv.Itoa(k/2) })
}

func mailServers() []host {
	return pool(2*mxProviders, 65, 32, func(k int) string { return "mx" + strconv.Itoa(k%2+1) + ".mail" + strconv.Itoa(k/2) })
}

func ntpHosts() []host {
	return pool(ntpServers, 97, 16, func(k int) string { return "ntp" + strconv.Itoa(k) + ".pool" })
}

// NSAddrs returns every name server address: NSD listens on each, so that the crawl's
// SOA checks and parent queries are answered.
func NSAddrs() []netip.Addr { return poolAddrs(nsPool) }

// NTPAddrs returns the NTP servers' addresses (an NTP server listens on each).
func NTPAddrs() []netip.Addr { return poolAddrs(ntpPool) }

// poolAddrs returns the addresses of hosts.
func poolAddrs(hosts []host) []netip.Addr {
	var out []netip.Addr
	for _, h := range hosts {
		out = append(out, h.v4)
		if h.v6.IsValid() {
			out = append(out, h.v6)
		}
	}
	return out
}

// List returns the crawl's input: "rank,domain" lines.
func (d Data) List() []byte {
	var b bytes.Buffer
	for n := 1; n <= d.Domains; n++ {
		fmt.Fprintf(&b, "%d,d%d.%s\n", n, n, d.tld())
	}
	return b.Bytes()
}

// Addrs returns the addresses of domain n's hosts as a crawl finds them (every role).
func (d Data) Addrs(n int) []netip.Addr {
	out := addrsIn(d.domainZone(n))
	ns, mx := d.shared(n)
	return append(out, poolAddrs(slices.Concat(ns, mx))...)
}

// shared returns domain n's name servers and mail servers.
func (d Data) shared(n int) (ns, mx []host) {
	h := mix(n)
	nsAll, mxAll := nsPool, mxPool
	p := int(h % nsProviders)
	ns = nsAll[2*p : 2*p+2 : 2*p+2]
	switch {
	case n%20 == 7: // no MX
	case h>>24%2 == 0:
		q := int(h >> 16 % mxProviders)
		mx = mxAll[2*q : 2*q+2]
	default:
		q := int(h >> 16 % mxProviders)
		mx = mxAll[2*q : 2*q+1]
	}
	return ns, mx
}

func rrHdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: 3600}
}

func soa(apex, mname string) *dns.SOA {
	return &dns.SOA{Hdr: rrHdr(apex, dns.TypeSOA), Ns: mname, Mbox: "hostmaster." + apex,
		Serial: synthSOASerial, Refresh: 3600, Retry: 600, Expire: 604800, Minttl: 300}
}

func addrRRs(dst []dns.RR, owner string, a4, a6 netip.Addr) []dns.RR {
	dst = append(dst, &dns.A{Hdr: rrHdr(owner, dns.TypeA), A: a4.AsSlice()})
	if a6.IsValid() {
		dst = append(dst, &dns.AAAA{Hdr: rrHdr(owner, dns.TypeAAAA), AAAA: a6.AsSlice()})
	}
	return dst
}

// domainZone returns domain n's zone: SOA, NS, MX, apex and www A/AAAA, ntp for one in ten.
func (d Data) domainZone(n int) []dns.RR {
	tld := d.tld() + "."
	apex := "d" + strconv.Itoa(n) + "." + tld
	h := mix(n)
	ns, mx := d.shared(n)
	rrs := []dns.RR{soa(apex, ns[0].name+"."+tld)}
	for _, s := range ns {
		rrs = append(rrs, &dns.NS{Hdr: rrHdr(apex, dns.TypeNS), Ns: s.name + "." + tld})
	}
	for i, s := range mx {
		rrs = append(rrs, &dns.MX{Hdr: rrHdr(apex, dns.TypeMX), Preference: uint16(10 * (i + 1)), Mx: s.name + "." + tld})
	}
	a4 := webV4(n % d.webV4Pool())
	var a6 netip.Addr
	if h>>32%5 < 2 {
		a6 = d.webV6(n % d.webV6Pool())
	}
	rrs = addrRRs(rrs, apex, a4, a6)
	rrs = addrRRs(rrs, "www."+apex, a4, a6)
	if n%10 == 5 {
		t := ntpPool[int(h>>40%ntpServers)]
		rrs = addrRRs(rrs, "ntp."+apex, t.v4, t.v6)
	}
	return rrs
}

// Zones returns every zone NSD serves: the root (so that a resolver check is answered),
// the TLD with the shared hosts, empty reverse zones, and one zone per domain.
func (d Data) Zones() iter.Seq[dnssrv.NSDZone] {
	return func(yield func(dnssrv.NSDZone) bool) {
		tld := d.tld() + "."
		ns1 := "ns1.dns0." + tld
		root := dnssrv.NSDZone{soa(".", ns1), &dns.NS{Hdr: rrHdr(".", dns.TypeNS), Ns: ns1}}
		if !yield(root) {
			return
		}
		top := dnssrv.NSDZone{soa(tld, ns1), &dns.NS{Hdr: rrHdr(tld, dns.TypeNS), Ns: ns1},
			&dns.NS{Hdr: rrHdr(tld, dns.TypeNS), Ns: "ns2.dns0." + tld}}
		for _, pl := range [][]host{nsPool, mxPool, ntpPool} {
			for _, s := range pl {
				top = addrRRs(top, s.name+"."+tld, s.v4, s.v6)
			}
		}
		if !yield(top) {
			return
		}
		// Reverse zones without PTR records: a PTR lookup gets NXDOMAIN, as most do.
		for _, rev := range []string{"18.198.in-addr.arpa.", "19.198.in-addr.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa."} {
			if !yield(dnssrv.NSDZone{soa(rev, ns1), &dns.NS{Hdr: rrHdr(rev, dns.TypeNS), Ns: ns1}}) {
				return
			}
		}
		for n := 1; n <= d.Domains; n++ {
			if !yield(d.domainZone(n)) {
				return
			}
		}
	}
}

// CountAddrs returns the number of unique addresses of the data's hosts.
func (d Data) CountAddrs() int {
	seen := map[netip.Addr]bool{}
	for n := 1; n <= d.Domains; n++ {
		for _, a := range d.Addrs(n) {
			seen[a] = true
		}
	}
	return len(seen)
}

// addrsIn returns the addresses of the A and AAAA records among rrs.
func addrsIn(rrs []dns.RR) []netip.Addr {
	var out []netip.Addr
	for _, rr := range rrs {
		switch r := rr.(type) {
		case *dns.A:
			a, _ := netip.AddrFromSlice(r.A.To4())
			out = append(out, a)
		case *dns.AAAA:
			a, _ := netip.AddrFromSlice(r.AAAA)
			out = append(out, a)
		}
	}
	return out
}
