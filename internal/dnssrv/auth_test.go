package dnssrv

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

const exampleZone = `$TTL 300
@        IN SOA ns1 hostmaster 1 3600 600 86400 60
@        IN NS  ns1
@        IN NS  ns.other.net.
ns1      IN A   192.0.2.53
ns1      IN AAAA 2001:db8::53
www      IN A   192.0.2.1
www      IN AAAA 2001:db8::1
alias    IN CNAME alias2
alias2   IN CNAME www
out      IN CNAME www.other.net.
loop1    IN CNAME loop2
loop2    IN CNAME loop1
a.b.c    IN A   192.0.2.9
sub      IN NS  ns1.sub
sub      IN NS  ns.other.net.
ns1.sub  IN A   192.0.2.54
faulty   IN A   192.0.2.7
`

const subZone = `$TTL 300
@   IN SOA ns1 hostmaster 1 3600 600 86400 60
@   IN NS ns1
ns1 IN A 192.0.2.54
www IN A 192.0.2.55
`

func bigZone() string {
	var b strings.Builder
	b.WriteString("$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 192.0.2.53\n")
	for i := range 60 {
		fmt.Fprintf(&b, "big IN A 198.18.0.%d\n", i+1)
	}
	return b.String()
}

func TestAuth(t *testing.T) {
	a := NewAuth(
		mustZone(t, "example.com.", exampleZone),
		mustZone(t, "sub.example.com.", subZone),
		mustZone(t, "big.test.", bigZone()),
	)
	a.SetFault("faulty.example.com.", FaultServFail)
	a.SetFault("refused.example.com", FaultRefused)
	a.SetFault("TC.example.com.", FaultTruncate)
	addr := listen(t, a)

	tests := []struct {
		name       string
		qname      string
		qtype      uint16
		network    string
		rcode      int
		aa, tc     bool
		answer, ns []string
		extra      []string
	}{
		{name: "answer", qname: "www.example.com", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"www.example.com.\t0\tIN\tA\t192.0.2.1"}},
		{name: "case insensitive", qname: "WWW.Example.COM", qtype: dns.TypeAAAA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"www.example.com.\t0\tIN\tAAAA\t2001:db8::1"}},
		{name: "cname chain in zone", qname: "alias.example.com", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{
				"alias.example.com.\t0\tIN\tCNAME\talias2.example.com.",
				"alias2.example.com.\t0\tIN\tCNAME\twww.example.com.",
				"www.example.com.\t0\tIN\tA\t192.0.2.1",
			}},
		{name: "cname out of zone", qname: "out.example.com", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"out.example.com.\t0\tIN\tCNAME\twww.other.net."}},
		{name: "cname query", qname: "alias.example.com", qtype: dns.TypeCNAME, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"alias.example.com.\t0\tIN\tCNAME\talias2.example.com."}},
		{name: "cname loop", qname: "loop1.example.com", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{
				"loop1.example.com.\t0\tIN\tCNAME\tloop2.example.com.",
				"loop2.example.com.\t0\tIN\tCNAME\tloop1.example.com.",
			}},
		{name: "nxdomain", qname: "nope.example.com", qtype: dns.TypeA, rcode: dns.RcodeNameError, aa: true,
			ns: []string{"example.com.\t0\tIN\tSOA\tns1.example.com. hostmaster.example.com. 1 3600 600 86400 60"}},
		{name: "nodata", qname: "www.example.com", qtype: dns.TypeMX, rcode: dns.RcodeSuccess, aa: true,
			ns: []string{"example.com.\t0\tIN\tSOA\tns1.example.com. hostmaster.example.com. 1 3600 600 86400 60"}},
		{name: "empty non-terminal", qname: "b.c.example.com", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			ns: []string{"example.com.\t0\tIN\tSOA\tns1.example.com. hostmaster.example.com. 1 3600 600 86400 60"}},
		{name: "apex NS", qname: "example.com", qtype: dns.TypeNS, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"example.com.\t0\tIN\tNS\tns.other.net.", "example.com.\t0\tIN\tNS\tns1.example.com."}},
		{name: "most specific zone", qname: "www.sub.example.com", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true,
			answer: []string{"www.sub.example.com.\t0\tIN\tA\t192.0.2.55"}},
		{name: "refused outside", qname: "www.example.org", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "fault servfail", qname: "faulty.example.com", qtype: dns.TypeA, rcode: dns.RcodeServerFailure},
		{name: "fault refused", qname: "refused.example.com", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "fault truncate udp", qname: "tc.example.com", qtype: dns.TypeA, rcode: dns.RcodeSuccess, aa: true, tc: true},
		{name: "fault truncate tcp", qname: "tc.example.com", qtype: dns.TypeA, network: "tcp", rcode: dns.RcodeNameError, aa: true,
			ns: []string{"example.com.\t0\tIN\tSOA\tns1.example.com. hostmaster.example.com. 1 3600 600 86400 60"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			network := tc.network
			if network == "" {
				network = "udp"
			}
			resp := query(t, addr, network, tc.qname, tc.qtype, 0, false)
			got := struct {
				Rcode             int
				AA, TC            bool
				Answer, Ns, Extra []string
			}{resp.Rcode, resp.Authoritative, resp.Truncated, rrStrings(resp.Answer), rrStrings(resp.Ns), rrStrings(resp.Extra)}
			want := got
			want.Rcode, want.AA, want.TC = tc.rcode, tc.aa, tc.tc
			want.Answer, want.Ns, want.Extra = orEmpty(tc.answer), orEmpty(tc.ns), orEmpty(tc.extra)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("reply (-want +got):\n%s", diff)
			}
		})
	}
	if got := a.Count("tc.example.com.", dns.TypeA); got != 2 {
		t.Errorf("Count(tc.example.com A) = %d, want 2", got)
	}
	if got := a.Total(); got != len(tests) {
		t.Errorf("Total() = %d, want %d", got, len(tests))
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestAuthReferral(t *testing.T) {
	addr := listen(t, NewAuth(mustZone(t, "example.com.", exampleZone)))
	for _, name := range []string{"sub.example.com", "www.sub.example.com", "a.b.sub.example.com"} {
		t.Run(name, func(t *testing.T) {
			resp := query(t, addr, "udp", name, dns.TypeA, 0, false)
			if resp.Authoritative || resp.Rcode != dns.RcodeSuccess || len(resp.Answer) != 0 {
				t.Errorf("referral header: AA=%v rcode=%s answers=%d", resp.Authoritative, dns.RcodeToString[resp.Rcode], len(resp.Answer))
			}
			wantNS := []string{"sub.example.com.\t0\tIN\tNS\tns.other.net.", "sub.example.com.\t0\tIN\tNS\tns1.sub.example.com."}
			if diff := cmp.Diff(wantNS, rrStrings(resp.Ns)); diff != "" {
				t.Errorf("authority (-want +got):\n%s", diff)
			}
			// Glue only for the in-zone name.
			if diff := cmp.Diff([]string{"ns1.sub.example.com.\t0\tIN\tA\t192.0.2.54"}, rrStrings(resp.Extra)); diff != "" {
				t.Errorf("additional (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAuthTruncation(t *testing.T) {
	addr := listen(t, NewAuth(mustZone(t, "big.test.", bigZone())))
	tests := []struct {
		name    string
		network string
		edns    uint16
		tc      bool
		minAns  int
	}{
		{name: "udp 512", network: "udp", tc: true},
		{name: "udp edns 4096", network: "udp", edns: 4096, minAns: 60},
		{name: "udp edns 600", network: "udp", edns: 600, tc: true},
		{name: "tcp", network: "tcp", minAns: 60},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := query(t, addr, tc.network, "big.big.test", dns.TypeA, tc.edns, false)
			if resp.Truncated != tc.tc {
				t.Errorf("TC = %v, want %v", resp.Truncated, tc.tc)
			}
			if tc.tc && len(resp.Answer) >= 60 {
				t.Errorf("truncated reply holds all %d answers", len(resp.Answer))
			}
			if !tc.tc && len(resp.Answer) != tc.minAns {
				t.Errorf("answers = %d, want %d", len(resp.Answer), tc.minAns)
			}
			resp.Compress = true
			if size := resp.Len(); tc.network == "udp" && size > max(512, int(tc.edns)) {
				t.Errorf("UDP reply of %d bytes exceeds the client's size", size)
			}
		})
	}
}

func TestParseZoneErrors(t *testing.T) {
	tests := []struct {
		name, origin, text, want string
	}{
		{name: "syntax", origin: "example.com.", text: "@ IN SOA ns1 h 1 2 3 4 5\nwww IN A not-an-ip\n",
			want: `parse zone example.com.: example.com.zone: dns: bad A A: "not-an-ip" at line: 2:18`},
		{name: "no soa", origin: "example.com.", text: "www IN A 192.0.2.1\n",
			want: "example.com.zone: zone example.com.: no SOA record"},
		{name: "outside", origin: "example.com.", text: "@ IN SOA ns1 h 1 2 3 4 5\nwww.example.org. IN A 192.0.2.1\n",
			want: `example.com.zone: zone example.com.: record "www.example.org.\t3600\tIN\tA\t192.0.2.1" is outside the zone`},
		{name: "cname and data", origin: "example.com.", text: "@ IN SOA ns1 h 1 2 3 4 5\nwww IN CNAME x\nwww IN A 192.0.2.1\n",
			want: "example.com.zone: zone example.com.: CNAME and other data at www.example.com."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseZoneString(tc.origin, tc.text)
			if err == nil {
				t.Fatal("no error")
			}
			if diff := cmp.Diff(tc.want, err.Error()); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}
