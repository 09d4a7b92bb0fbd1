package dnssrv

import (
	"net"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// refAnswer answers qname/qtype from the record lists of Synthetic and
// SyntheticHosts, as a resolver would: the reference for SyntheticServer.
func refAnswer(tld string, n int, qname string, qtype uint16) (int, []string) {
	var all []dns.RR
	for i := 1; i <= n; i++ {
		if dns.IsSubDomain("d"+strconv.Itoa(i)+"."+tld, qname) {
			all = Synthetic(tld, i)
		}
	}
	all = append(all, SyntheticHosts(tld)...)
	var out []dns.RR
	for hop := 0; hop < 3; hop++ {
		var cname *dns.CNAME
		found := false
		for _, rr := range all {
			if rr.Header().Name != qname {
				continue
			}
			found = true
			if rr.Header().Rrtype == qtype {
				out = append(out, rr)
			} else if c, ok := rr.(*dns.CNAME); ok {
				cname = c
			}
		}
		if !found {
			if hop == 0 {
				return dns.RcodeNameError, nil
			}
			break
		}
		if cname == nil || qtype == dns.TypeCNAME {
			break
		}
		out = append(out, cname)
		qname = cname.Target
	}
	return dns.RcodeSuccess, rrStrings(out)
}

// synNames lists names worth asking about for domains 1..n.
func synNames(tld string, n int) []string {
	names := []string{"nope." + tld, "d0." + tld, "d" + strconv.Itoa(n+1) + "." + tld,
		"ns1.dnshost0." + tld, "ns4.dnshost99." + tld, "mx2.mailhost49." + tld, "cdn3.cdnhost." + tld}
	for i := 1; i <= n; i++ {
		apex := "d" + strconv.Itoa(i) + "." + tld
		names = append(names, apex, "www."+apex, "ntp."+apex, "time."+apex, "ftp."+apex)
	}
	return names
}

var synTypes = []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeNS, dns.TypeMX, dns.TypeSOA}

func TestSyntheticServerMatchesData(t *testing.T) {
	const n = 120
	s := NewSyntheticServer("net", n)
	for _, name := range synNames("net.", n) {
		for _, qt := range synTypes {
			wantRcode, want := refAnswer("net.", n, name, qt)
			rcode, answer, _ := s.answer(name, qt)
			if rcode != wantRcode {
				t.Errorf("%s %s: rcode %s, want %s", name, dns.TypeToString[qt], dns.RcodeToString[rcode], dns.RcodeToString[wantRcode])
			}
			if diff := cmp.Diff(orEmpty(want), rrStrings(answer)); diff != "" {
				t.Errorf("%s %s: answer (-want +got):\n%s", name, dns.TypeToString[qt], diff)
			}
		}
	}
}

func TestSyntheticServer(t *testing.T) {
	s := NewSyntheticServer("com", 1000)
	addr := listen(t, s)
	soa3 := "d3.com.\t0\tIN\tSOA\tns4.dnshost53.com. hostmaster.d3.com. 2024010100 3600 600 604800 300"
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		rcode  int
		answer []string
		ns     []string
	}{
		{name: "www cname chain", qname: "WWW.d3.com", qtype: dns.TypeA, rcode: dns.RcodeSuccess,
			answer: []string{"cdn0.cdnhost.com.\t0\tIN\tA\t198.19.1.245", "www.d3.com.\t0\tIN\tCNAME\tcdn0.cdnhost.com."}},
		{name: "ns", qname: "d3.com", qtype: dns.TypeNS, rcode: dns.RcodeSuccess,
			answer: []string{"d3.com.\t0\tIN\tNS\tns1.dnshost53.com.", "d3.com.\t0\tIN\tNS\tns4.dnshost53.com."}},
		{name: "mx", qname: "d3.com", qtype: dns.TypeMX, rcode: dns.RcodeSuccess,
			answer: []string{"d3.com.\t0\tIN\tMX\t10 mx1.mailhost3.com."}},
		{name: "null mx", qname: "d50.com", qtype: dns.TypeMX, rcode: dns.RcodeSuccess,
			answer: []string{"d50.com.\t0\tIN\tMX\t0 ."}},
		{name: "no mx", qname: "d3.com", qtype: dns.TypeTXT, rcode: dns.RcodeSuccess, ns: []string{soa3}},
		{name: "no ntp", qname: "ntp.d3.com", qtype: dns.TypeA, rcode: dns.RcodeNameError, ns: []string{soa3}},
		{name: "beyond n", qname: "www.d1001.com", qtype: dns.TypeA, rcode: dns.RcodeNameError,
			ns: []string{"com.\t0\tIN\tSOA\tns1.dnshost0.com. hostmaster.com. 2024010100 3600 600 604800 300"}},
		{name: "other tld", qname: "d3.net", qtype: dns.TypeA, rcode: dns.RcodeRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp := query(t, addr, "udp", tc.qname, tc.qtype, 1232, true)
			if tc.rcode != dns.RcodeRefused && (!resp.Authoritative || !resp.RecursionAvailable) {
				t.Errorf("AA=%v RA=%v, want both", resp.Authoritative, resp.RecursionAvailable)
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
	if got, want := s.Queries(), uint64(len(tests)); got != want {
		t.Errorf("Queries() = %d, want %d", got, want)
	}
}

// benchWriter is a dns.ResponseWriter that packs replies into a buffer, as
// the server does before sending.
type benchWriter struct {
	buf []byte
}

func (w *benchWriter) LocalAddr() net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (w *benchWriter) RemoteAddr() net.Addr {
	return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
}
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) Close() error                { return nil }
func (w *benchWriter) TsigStatus() error           { return nil }
func (w *benchWriter) TsigTimersOnly(bool)         {}
func (w *benchWriter) Hijack()                     {}
func (w *benchWriter) WriteMsg(m *dns.Msg) error {
	var err error
	w.buf, err = m.PackBuffer(w.buf[:cap(w.buf)])
	return err
}

// BenchmarkSyntheticServeDNS measures the handler with the crawl's query mix.
func BenchmarkSyntheticServeDNS(b *testing.B) {
	s := NewSyntheticServer("com", 100000)
	var reqs []*dns.Msg
	for i := 1; i <= 1000; i++ {
		apex := "d" + strconv.Itoa(i*97) + ".com."
		for _, q := range []struct {
			name  string
			qtype uint16
		}{{apex, dns.TypeNS}, {apex, dns.TypeMX}, {apex, dns.TypeSOA}, {"www." + apex, dns.TypeA},
			{"www." + apex, dns.TypeAAAA}, {"ntp." + apex, dns.TypeA}, {"ns1.dnshost7.com.", dns.TypeAAAA}} {
			m := new(dns.Msg)
			m.SetQuestion(q.name, q.qtype)
			reqs = append(reqs, m)
		}
	}
	w := &benchWriter{buf: make([]byte, 0, 4096)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		s.ServeDNS(w, reqs[i%len(reqs)])
	}
}
