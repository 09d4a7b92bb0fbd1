package dnssrv

import (
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/miekg/dns"
)

// SyntheticServer answers like a recursive resolver (AA and RA set, CNAME
// chains included) for the synthetic domains d1..d<N>.<tld> of Synthetic and
// their shared hosts, computing every answer from the name: it serves
// benchmarks at tens of thousands of queries per second without zone data.
type SyntheticServer struct {
	tld     string // lower-case FQDN
	n       int
	hosts   map[string]int // host label (without TLD) -> pool index
	queries atomic.Uint64
}

// NewSyntheticServer returns a server for domains d1..d<n>.<tld>.
func NewSyntheticServer(tld string, n int) *SyntheticServer {
	s := &SyntheticServer{tld: dns.CanonicalName(tld), n: n, hosts: make(map[string]int)}
	for _, h := range synHosts() {
		s.hosts[h.label] = h.index
	}
	return s
}

// Queries returns how many queries the server has received.
func (s *SyntheticServer) Queries() uint64 { return s.queries.Load() }

// synTLDSOA is the SOA of the TLD zone that holds the shared hosts.
func synTLDSOA(tld string) dns.RR {
	return &dns.SOA{Hdr: hdr(tld, dns.TypeSOA), Ns: "ns1.dnshost0." + tld, Mbox: "hostmaster." + tld,
		Serial: 2024010100, Refresh: 3600, Retry: 600, Expire: 604800, Minttl: synNegTTL}
}

// ServeDNS implements dns.Handler.
func (s *SyntheticServer) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		writeRcode(w, req, dns.RcodeFormatError)
		return
	}
	q := req.Question[0]
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative, m.RecursionAvailable = true, true
	rcode, answer, ns := s.answer(strings.ToLower(q.Name), q.Qtype)
	if rcode == dns.RcodeRefused {
		m.Authoritative = false
	}
	m.Rcode, m.Answer, m.Ns = rcode, answer, ns
	writeReply(w, req, m)
}

// answer computes the reply sections for qname (lower-case FQDN) and qtype.
func (s *SyntheticServer) answer(qname string, qtype uint16) (int, []dns.RR, []dns.RR) {
	tld := s.tld
	var rest string
	switch {
	case qname == tld:
		return s.tldApex(qtype)
	case strings.HasSuffix(qname, "."+tld) || tld == ".":
		rest = strings.TrimSuffix(qname[:len(qname)-len(tld)], ".")
	default:
		return dns.RcodeRefused, nil, nil
	}
	if i, ok := s.hosts[rest]; ok {
		answer := hostRecords(nil, qname, i, qtype)
		if len(answer) == 0 {
			return dns.RcodeSuccess, nil, []dns.RR{synTLDSOA(tld)}
		}
		return dns.RcodeSuccess, answer, nil
	}
	label, base := "", rest
	if dot := strings.LastIndexByte(rest, '.'); dot >= 0 {
		label, base = rest[:dot], rest[dot+1:]
	}
	n, ok := domainNumber(base)
	if !ok || n < 1 || n > s.n {
		if label == "" && s.isProvider(base) {
			return dns.RcodeSuccess, nil, []dns.RR{synTLDSOA(tld)} // empty non-terminal
		}
		return dns.RcodeNameError, nil, []dns.RR{synTLDSOA(tld)}
	}
	d := newSynDomain(n)
	switch {
	case label == "" || label == "www":
	case (label == "ntp" || label == "time") && d.ntp:
	default:
		return dns.RcodeNameError, nil, []dns.RR{d.soa(tld)}
	}
	answer := d.records(make([]dns.RR, 0, 4), tld, label, qtype)
	if len(answer) == 0 {
		return dns.RcodeSuccess, nil, []dns.RR{d.soa(tld)}
	}
	if c, ok := answer[0].(*dns.CNAME); ok && qtype != dns.TypeCNAME {
		answer = hostRecords(answer, c.Target, s.hosts[strings.TrimSuffix(c.Target, "."+tld)], qtype)
		if len(answer) == 1 {
			// The chain ends in NODATA at the CDN host: its zone's SOA.
			return dns.RcodeSuccess, answer, []dns.RR{synTLDSOA(tld)}
		}
	}
	return dns.RcodeSuccess, answer, nil
}

// tldApex answers for the TLD itself.
func (s *SyntheticServer) tldApex(qtype uint16) (int, []dns.RR, []dns.RR) {
	switch qtype {
	case dns.TypeSOA:
		return dns.RcodeSuccess, []dns.RR{synTLDSOA(s.tld)}, nil
	case dns.TypeNS:
		return dns.RcodeSuccess, []dns.RR{&dns.NS{Hdr: hdr(s.tld, dns.TypeNS), Ns: "ns1.dnshost0." + s.tld}}, nil
	}
	return dns.RcodeSuccess, nil, []dns.RR{synTLDSOA(s.tld)}
}

// isProvider reports whether label names a host provider (dnshost<j>,
// mailhost<j>, cdnhost): an empty non-terminal.
func (s *SyntheticServer) isProvider(label string) bool {
	if label == "cdnhost" {
		return true
	}
	for _, p := range []struct {
		prefix string
		count  int
	}{{"dnshost", synNSProviders}, {"mailhost", synMailProviders}} {
		if rest, ok := strings.CutPrefix(label, p.prefix); ok {
			j, err := strconv.Atoi(rest)
			return err == nil && j >= 0 && j < p.count && strconv.Itoa(j) == rest
		}
	}
	return false
}

// domainNumber parses "d<N>" (no sign, no leading zero).
func domainNumber(label string) (int, bool) {
	if len(label) < 2 || label[0] != 'd' || label[1] == '0' || len(label) > 10 {
		return 0, false
	}
	n := 0
	for _, c := range label[1:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
