package dnssrv

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

const soaLine = "@ 300 IN SOA ns hostmaster 1 3600 600 86400 60\n"

// testTree is a 3-level tree: root, com and net on a TLD server, example.com
// on two servers with faults, other.com served by a host under net (an
// out-of-bailiwick NS without glue).
func testTree() TreeConfig {
	root := soaLine + `
.                   IN NS a.root-servers.net.
a.root-servers.net. IN A  127.0.1.1
com.                IN NS a.gtld.net.
net.                IN NS a.gtld.net.
a.gtld.net.         IN A  127.0.2.1
`
	com := soaLine + `
@             IN NS a.gtld.net.
example       IN NS ns1.example
example       IN NS ns2.example
ns1.example   IN A  127.0.3.1
ns2.example   IN A  127.0.3.2
other         IN NS ns.dnshost.net.
dead          IN NS ns.dead
ns.dead       IN A  127.0.3.9
`
	net := soaLine + `
@             IN NS a.gtld.net.
a.gtld        IN A  127.0.2.1
dnshost       IN NS ns.dnshost
ns.dnshost    IN A  127.0.4.1
`
	var big strings.Builder
	for i := range 60 {
		fmt.Fprintf(&big, "big IN A 198.18.1.%d\n", i+1)
	}
	example := soaLine + `
@        IN NS ns1
@        IN NS ns2
ns1      IN A 127.0.3.1
ns2      IN A 127.0.3.2
www      IN A 192.0.2.1
www      IN AAAA 2001:db8::1
alias    IN CNAME www
ext      IN CNAME www.other.com.
loop1    IN CNAME loop2
loop2    IN CNAME loop1
dangling IN CNAME nothere
slow     IN A 192.0.2.2
gone     IN A 192.0.2.3
sf1      IN A 192.0.2.4
sf       IN A 192.0.2.5
tc       IN A 192.0.2.6
` + big.String()
	dnshost := soaLine + `
@   IN NS ns
ns  IN A 127.0.4.1
cdn IN A 192.0.2.80
`
	other := soaLine + `
@   IN NS ns.dnshost.net.
www IN CNAME cdn.dnshost.net.
`
	return TreeConfig{
		Timeout: 150 * time.Millisecond,
		Servers: []TreeServer{
			{Name: "root", Addr: netip.MustParseAddr("127.0.1.1"), Zones: map[string]string{".": root}},
			{Name: "tld", Addr: netip.MustParseAddr("127.0.2.1"), Zones: map[string]string{"com.": com, "net.": net}},
			{Name: "ns1.example", Addr: netip.MustParseAddr("127.0.3.1"), Zones: map[string]string{"example.com.": example},
				Faults: map[string]Fault{
					"slow.example.com.": FaultDrop, "gone.example.com.": FaultDrop,
					"sf1.example.com.": FaultServFail, "sf.example.com.": FaultServFail,
					"tc.example.com.": FaultTruncate,
				}},
			{Name: "ns2.example", Addr: netip.MustParseAddr("127.0.3.2"), Zones: map[string]string{"example.com.": example},
				Faults: map[string]Fault{"gone.example.com.": FaultDrop, "sf.example.com.": FaultRefused, "tc.example.com.": FaultTruncate}},
			{Name: "dead", Addr: netip.MustParseAddr("127.0.3.9"), Zones: map[string]string{"dead.com.": soaLine + "@ IN NS ns\nns IN A 127.0.3.9\nwww IN A 192.0.2.9\n"},
				Faults: map[string]Fault{"www.dead.com.": FaultDrop}},
			{Name: "dnshost", Addr: netip.MustParseAddr("127.0.4.1"), Zones: map[string]string{"dnshost.net.": dnshost, "other.com.": other}},
		},
	}
}

func startTestTree(t *testing.T) *Tree {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tree, err := StartTree(ctx, testTree())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	tree.Recursor.Stall = 20 * time.Millisecond // the slow-server path: overlapping queries
	t.Cleanup(func() {
		cancel()
		if err := tree.Close(); err != nil {
			t.Errorf("close tree: %v", err)
		}
	})
	return tree
}

func TestTreeRecursor(t *testing.T) {
	tree := startTestTree(t)
	soaCom := []string{"example.com.\t0\tIN\tSOA\tns.example.com. hostmaster.example.com. 1 3600 600 86400 60"}
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		answer []string
		ns     []string
	}{
		{name: "referrals with glue", qname: "www.example.com", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			answer: []string{"www.example.com.\t0\tIN\tA\t192.0.2.1"}},
		{name: "aaaa", qname: "WWW.example.com", qtype: dns.TypeAAAA, rcode: dns.RcodeSuccess,
			answer: []string{"www.example.com.\t0\tIN\tAAAA\t2001:db8::1"}},
		{name: "out-of-bailiwick NS", qname: "other.com", qtype: dns.TypeNS, rcode: dns.RcodeSuccess,
			answer: []string{"other.com.\t0\tIN\tNS\tns.dnshost.net."}},
		{name: "in-zone cname", qname: "alias.example.com", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			answer: []string{"alias.example.com.\t0\tIN\tCNAME\twww.example.com.", "www.example.com.\t0\tIN\tA\t192.0.2.1"}},
		{name: "cname chain across zones", qname: "ext.example.com", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			answer: []string{
				"cdn.dnshost.net.\t0\tIN\tA\t192.0.2.80",
				"ext.example.com.\t0\tIN\tCNAME\twww.other.com.",
				"www.other.com.\t0\tIN\tCNAME\tcdn.dnshost.net.",
			}},
		{name: "cname loop returns chain", qname: "loop1.example.com", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			answer: []string{"loop1.example.com.\t0\tIN\tCNAME\tloop2.example.com.", "loop2.example.com.\t0\tIN\tCNAME\tloop1.example.com."}},
		{name: "dangling cname", qname: "dangling.example.com", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			answer: []string{"dangling.example.com.\t0\tIN\tCNAME\tnothere.example.com."}, ns: soaCom},
		{name: "nxdomain", qname: "nope.example.com", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: soaCom},
		{name: "nxdomain tld", qname: "example.nosuchtld", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			ns: []string{".\t0\tIN\tSOA\tns. hostmaster. 1 3600 600 86400 60"}},
		{name: "nodata", qname: "www.example.com", qtype: dns.TypeMX, rcode: dns.RcodeSuccess, ns: soaCom},
		{name: "drop then next NS", qname: "slow.example.com", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			answer: []string{"slow.example.com.\t0\tIN\tA\t192.0.2.2"}},
		{name: "all NS drop", qname: "gone.example.com", qtype: dns.TypeA, rcode: dns.RcodeServerFailure},
		{name: "only NS drops", qname: "www.dead.com", qtype: dns.TypeA, rcode: dns.RcodeServerFailure},
		{name: "servfail then next NS", qname: "sf1.example.com", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			answer: []string{"sf1.example.com.\t0\tIN\tA\t192.0.2.4"}},
		{name: "servfail and refused", qname: "sf.example.com", qtype: dns.TypeA, rcode: dns.RcodeServerFailure},
		{name: "upstream TC retried over TCP", qname: "tc.example.com", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			answer: []string{"tc.example.com.\t0\tIN\tA\t192.0.2.6"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := query(t, tree.RecursorAddr, "udp", tc.qname, tc.qtype, 1232, true)
			if !resp.RecursionAvailable {
				t.Error("RA not set")
			}
			if resp.Rcode != tc.rcode {
				t.Errorf("rcode = %s, want %s", dns.RcodeToString[resp.Rcode], dns.RcodeToString[tc.rcode])
			}
			if diff := cmp.Diff(orEmpty(tc.answer), rrStrings(resp.Answer)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(orEmpty(tc.ns), rrStrings(resp.Ns)); diff != "" {
				t.Errorf("authority (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("counts", func(t *testing.T) {
		ns1, ns2 := tree.Auth("ns1.example"), tree.Auth("ns2.example")
		for _, c := range []struct {
			name  string
			auth  *Auth
			qname string
			want  int
		}{
			{"slow asked at ns1 then ns2 (ns1)", ns1, "slow.example.com.", 1},
			{"slow asked at ns1 then ns2 (ns2)", ns2, "slow.example.com.", 1},
			{"tc over udp then tcp", ns1, "tc.example.com.", 2},
			{"www answered by ns1 only", ns2, "www.example.com.", 0},
		} {
			if got := c.auth.Count(c.qname, dns.TypeA); got != c.want {
				t.Errorf("%s: Count = %d, want %d", c.name, got, c.want)
			}
		}
	})
}

func TestTreeCache(t *testing.T) {
	tree := startTestTree(t)
	ns1, tld := tree.Auth("ns1.example"), tree.Auth("tld")
	for range 3 {
		query(t, tree.RecursorAddr, "udp", "www.example.com", dns.TypeA, 0, true)
		query(t, tree.RecursorAddr, "udp", "nope.example.com", dns.TypeA, 0, true)
	}
	query(t, tree.RecursorAddr, "udp", "alias.example.com", dns.TypeA, 0, true)
	got := map[string]int{
		"recursor www":      tree.Recursor.Count("www.example.com.", dns.TypeA),
		"auth www":          ns1.Count("www.example.com.", dns.TypeA),
		"auth nope":         ns1.Count("nope.example.com.", dns.TypeA),
		"tld total":         tld.Total(),
		"recursor total":    tree.Recursor.Total(),
		"auth alias (once)": ns1.Count("alias.example.com.", dns.TypeA),
	}
	want := map[string]int{
		"recursor www": 3, "auth www": 1, "auth nope": 1, "tld total": 1, "recursor total": 7, "auth alias (once)": 1,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

func TestTreeRecursorTruncates(t *testing.T) {
	tree := startTestTree(t)
	tests := []struct {
		name    string
		network string
		edns    uint16
		tc      bool
		answers int
	}{
		{name: "udp no edns", network: "udp", tc: true},
		{name: "udp edns 4096", network: "udp", edns: 4096, answers: 60},
		{name: "tcp", network: "tcp", answers: 60},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := query(t, tree.RecursorAddr, tc.network, "big.example.com", dns.TypeA, tc.edns, true)
			if resp.Truncated != tc.tc {
				t.Errorf("TC = %v, want %v", resp.Truncated, tc.tc)
			}
			if !tc.tc && len(resp.Answer) != tc.answers {
				t.Errorf("answers = %d, want %d", len(resp.Answer), tc.answers)
			}
		})
	}
}
