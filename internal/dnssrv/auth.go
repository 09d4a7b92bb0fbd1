package dnssrv

import (
	"sort"
	"sync"

	"github.com/miekg/dns"
)

// Fault is a misbehaviour the authoritative server shows for one owner name.
type Fault int

const (
	// FaultNone answers normally.
	FaultNone Fault = iota
	// FaultDrop never answers (the client times out).
	FaultDrop
	// FaultServFail answers SERVFAIL.
	FaultServFail
	// FaultRefused answers REFUSED.
	FaultRefused
	// FaultTruncate answers over UDP with TC set and an empty answer, and
	// answers fully over TCP.
	FaultTruncate
)

// countKey identifies a question in the query counters.
type countKey struct {
	name  string
	qtype uint16
}

// counter counts questions by lower-case name and type; safe for concurrent use.
type counter struct {
	mu    sync.Mutex
	m     map[countKey]int
	total int
}

func (c *counter) add(name string, qtype uint16) {
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[countKey]int)
	}
	c.m[countKey{name, qtype}]++
	c.total++
	c.mu.Unlock()
}

func (c *counter) get(name string, qtype uint16) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[countKey{dns.CanonicalName(name), qtype}]
}

func (c *counter) sum() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// Auth is an authoritative DNS server (a dns.Handler) for a set of zones. It
// answers from the most specific zone it holds, refers to delegated children
// with glue, follows CNAMEs inside the answering zone, and refuses names
// outside its zones. Faults and query counters serve tests.
type Auth struct {
	zones  []*Zone // most specific (longest origin) first
	mu     sync.RWMutex
	faults map[string]Fault
	counts counter
}

// NewAuth returns a server for zones.
func NewAuth(zones ...*Zone) *Auth {
	zs := append([]*Zone(nil), zones...)
	sort.SliceStable(zs, func(i, j int) bool {
		return dns.CountLabel(zs[i].origin) > dns.CountLabel(zs[j].origin)
	})
	return &Auth{zones: zs, faults: make(map[string]Fault)}
}

// SetFault makes the server misbehave for questions about name (any type).
// FaultNone removes the fault.
func (a *Auth) SetFault(name string, f Fault) {
	a.mu.Lock()
	defer a.mu.Unlock()
	name = dns.CanonicalName(name)
	if f == FaultNone {
		delete(a.faults, name)
		return
	}
	a.faults[name] = f
}

// Count returns how many questions for qname and qtype the server received,
// whatever the transport or fault.
func (a *Auth) Count(qname string, qtype uint16) int { return a.counts.get(qname, qtype) }

// Total returns how many questions the server received.
func (a *Auth) Total() int { return a.counts.sum() }

// zoneFor returns the most specific zone holding name, or nil.
func (a *Auth) zoneFor(name string) *Zone {
	for _, z := range a.zones {
		if dns.IsSubDomain(z.origin, name) {
			return z
		}
	}
	return nil
}

// ServeDNS implements dns.Handler.
func (a *Auth) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		writeRcode(w, req, dns.RcodeFormatError)
		return
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	a.counts.add(name, q.Qtype)
	a.mu.RLock()
	fault := a.faults[name]
	a.mu.RUnlock()
	switch fault {
	case FaultDrop:
		return
	case FaultServFail:
		writeRcode(w, req, dns.RcodeServerFailure)
		return
	case FaultRefused:
		writeRcode(w, req, dns.RcodeRefused)
		return
	case FaultTruncate:
		if isUDP(w) {
			m := new(dns.Msg)
			m.SetReply(req)
			m.Authoritative = true
			m.Truncated = true
			writeReply(w, req, m)
			return
		}
	}
	z := a.zoneFor(name)
	if z == nil || q.Qclass != dns.ClassINET {
		writeRcode(w, req, dns.RcodeRefused)
		return
	}
	res := z.lookup(name, q.Qtype)
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = res.out != outReferral
	if res.out == outNXDomain {
		m.Rcode = dns.RcodeNameError
	}
	// Copy: Truncate and SetEdns0 reslice and append to these sections.
	m.Answer = append([]dns.RR(nil), res.answer...)
	m.Ns = append([]dns.RR(nil), res.ns...)
	m.Extra = append([]dns.RR(nil), res.extra...)
	writeReply(w, req, m)
}
