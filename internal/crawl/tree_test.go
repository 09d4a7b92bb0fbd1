package crawl

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/v6matrix/v6matrix/internal/dnssrv"
)

const soa = "@ 300 IN SOA %s hostmaster.%s 2026112501 7200 900 1209600 300\n"

// zone returns a domain zone's text with its SOA naming mname as primary.
func zone(domain, mname, body string) string {
	return fmt.Sprintf(soa, mname+".", domain+".") + body
}

// sharedDomains is how many domains share the same NS and MX hosts.
const sharedDomains = 30

// testTree is the delegation tree of the crawl tests: a root, TLD zones and domain
// zones, each domain showing one behaviour the crawl must get right.
func testTree() dnssrv.TreeConfig {
	root := fmt.Sprintf(soa, "a.root-servers.net.", "root-servers.net.") + `
.                   IN NS a.root-servers.net.
a.root-servers.net. IN A  127.0.1.1
a.nic.net.          IN A  127.0.2.1
com.                IN NS a.nic.net.
net.                IN NS a.nic.net.
org.                IN NS a.nic.net.
uk.                 IN NS a.nic.net.
xn--p1ai.           IN NS a.nic.net.
`
	tld := func(origin, delegations string) string {
		return fmt.Sprintf(soa, "a.nic.net.", "nic.net.") + "@ IN NS a.nic.net.\n" + delegations
	}
	var shared strings.Builder
	for i := 1; i <= sharedDomains; i++ {
		fmt.Fprintf(&shared, "shared%d IN NS ns.dnshost\nshared%d IN NS ns2.dnshost\n", i, i)
	}
	com := tld("com", `
example     IN NS ns1.example
example     IN NS ns2.dnshost.net.
ns1.example IN A  127.0.3.1
outside     IN NS ns.dnshost.net.
outside     IN NS ns2.dnshost.net.
outside     IN NS old.dnshost.net.
big         IN NS ns.dnshost.net.
junk        IN NS ns.dnshost.net.
broken      IN NS ns.broken
ns.broken   IN A  127.0.3.9
slow        IN NS ns.dnshost.net.
`)
	net := tld("net", `
a.nic       IN A  127.0.2.1
dnshost     IN NS ns.dnshost
dnshost     IN NS ns2.dnshost
ns.dnshost  IN A  127.0.4.1
ns2.dnshost IN A  127.0.4.2
chain       IN NS ns.dnshost
loop        IN NS ns.dnshost
shared      IN NS ns.dnshost
`+shared.String())
	org := tld("org", `
nullmx IN NS ns.dnshost.net.
nomx   IN NS ns.dnshost.net.
`)
	uk := tld("uk", `
example.co IN NS ns.dnshost.net.
`)
	rf := tld("xn--p1ai", `
xn--e1afmkfd IN NS ns.dnshost.net.
`)
	example := zone("example.com", "ns1.example.com", `
@     IN NS ns1
@     IN NS ns2.dnshost.net.
ns1   IN A 127.0.3.1
@     IN A 192.0.2.8
@     IN MX 20 mx.shared.net.
@     IN MX 10 mail
mail  IN A 192.0.2.25
mail  IN AAAA 2001:db8:25::1
www   IN A 192.0.2.80
www   IN A 192.0.2.81
www   IN AAAA 2001:db8:80::1
ntp   IN A 192.0.2.123
time  IN AAAA 2001:db8:123::1
`)
	var big strings.Builder
	for i := range 50 {
		fmt.Fprintf(&big, "www IN AAAA 2001:db8:b16::%x\n", i+1)
	}
	dnshostZones := map[string]string{
		"dnshost.net.": zone("dnshost.net", "ns.dnshost.net", `
@   IN NS ns
@   IN NS ns2
ns  IN A 127.0.4.1
ns  IN AAAA 2001:db8:53::1
ns2 IN A 127.0.4.2
`),
		"shared.net.": zone("shared.net", "ns.dnshost.net", `
@  IN NS ns.dnshost.net.
mx IN A 198.51.100.25
mx IN AAAA 2001:db8:25::25
`),
		"outside.com.": zone("outside.com", "ns.dnshost.net", `
@   IN NS ns.dnshost.net.
@   IN NS ns2.dnshost.net.
@   IN MX 10 mx.shared.net.
www IN A 203.0.113.80
`),
		"big.com.":  zone("big.com", "ns.dnshost.net", "@ IN NS ns.dnshost.net.\n"+big.String()),
		"junk.com.": zone("junk.com", "ns.dnshost.net", "@ IN NS ns.dnshost.net.\nwww IN A 192.0.2.99\nwww IN AAAA fe80::1\nwww IN AAAA ::ffff:192.0.2.99\nwww IN AAAA fd00::1\n"),
		"slow.com.": zone("slow.com", "ns.dnshost.net", "@ IN NS ns.dnshost.net.\nwww IN A 192.0.2.7\n"),
		"chain.net.": zone("chain.net", "ns.dnshost.net", `
@   IN NS ns.dnshost.net.
www IN CNAME a
a   IN CNAME b
b   IN CNAME c.outside.com.
`),
		"loop.net.":              zone("loop.net", "ns.dnshost.net", "@ IN NS ns.dnshost.net.\nwww IN CNAME x\nx IN CNAME www\n"),
		"nullmx.org.":            zone("nullmx.org", "ns.dnshost.net", "@ IN NS ns.dnshost.net.\n@ IN MX 0 .\nwww IN A 192.0.2.8\n"),
		"nomx.org.":              zone("nomx.org", "ns.dnshost.net", "@ IN NS ns.dnshost.net.\nwww IN A 192.0.2.9\n"),
		"example.co.uk.":         zone("example.co.uk", "ns.dnshost.net", "@ IN NS ns.dnshost.net.\nwww IN AAAA 2001:db8:44::80\n"),
		"xn--e1afmkfd.xn--p1ai.": zone("xn--e1afmkfd.xn--p1ai", "ns.dnshost.net", "@ IN NS ns.dnshost.net.\nwww IN A 192.0.2.70\n"),
	}
	// outside.com also serves c.outside.com, the end of chain.net's CNAME chain.
	dnshostZones["outside.com."] += "c IN A 203.0.113.3\n"
	for i := 1; i <= sharedDomains; i++ {
		d := fmt.Sprintf("shared%d.net", i)
		dnshostZones[d+"."] = zone(d, "ns.dnshost.net", "@ IN NS ns.dnshost.net.\n@ IN NS ns2.dnshost.net.\n@ IN MX 10 mx.shared.net.\n")
	}
	return dnssrv.TreeConfig{
		Timeout: 150 * time.Millisecond,
		Servers: []dnssrv.TreeServer{
			{Name: "root", Addr: netip.MustParseAddr("127.0.1.1"), Zones: map[string]string{".": root}},
			{Name: "tld", Addr: netip.MustParseAddr("127.0.2.1"), Zones: map[string]string{
				"com.": com, "net.": net, "org.": org, "uk.": uk, "xn--p1ai.": rf}},
			{Name: "ns1.example", Addr: netip.MustParseAddr("127.0.3.1"), Zones: map[string]string{"example.com.": example}},
			{Name: "broken", Addr: netip.MustParseAddr("127.0.3.9"), Zones: map[string]string{
				"broken.com.": zone("broken.com", "ns.broken.com", "@ IN NS ns\nns IN A 127.0.3.9\n")},
				Faults: map[string]dnssrv.Fault{"broken.com.": dnssrv.FaultServFail}},
			{Name: "ns.dnshost", Addr: netip.MustParseAddr("127.0.4.1"), Zones: dnshostZones},
			{Name: "ns2.dnshost", Addr: netip.MustParseAddr("127.0.4.2"), Zones: dnshostZones},
		},
	}
}

// testList is the ranked list crawled by the tests; it includes an invalid line, a
// duplicate, an IDN in U-labels, an opted-out domain and a name that does not exist.
func testList() string {
	var b strings.Builder
	b.WriteString("rank,domain\n1,example.com\n2,outside.com\n3,chain.net\n4,loop.net\n5,nullmx.org\n6,nomx.org\n" +
		"7,big.com\n8,junk.com\n9,nosuch.com\n10,broken.com\n11,slow.com\n12,пример.рф\n13,example.co.uk\n" +
		"14,not a domain.com\n15,optedout.org\n16,EXAMPLE.com\n")
	for i := 1; i <= sharedDomains; i++ {
		fmt.Fprintf(&b, "%d,shared%d.net\n", 100+i, i)
	}
	return b.String()
}
