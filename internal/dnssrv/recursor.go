package dnssrv

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Recursor is an iterative recursive resolver (a dns.Handler, like a tiny
// Unbound): it walks from the roots following referrals, looks up the
// addresses of out-of-bailiwick nameservers itself, tries the next server of
// a nameserver set when one times out or fails, retries truncated answers
// over TCP and caches answers, negative answers and delegations.
//
// Like Unbound's infra cache, it remembers per server address a smoothed RTT
// and the consecutive timeouts: a nameserver set is tried in that order
// (servers without timeouts first, by RTT band), and a server that timed
// out twice in a row is put in back-off for 30 s, asked only when every other
// server of its set failed, then probed again. Identical client questions
// that arrive while one is being resolved share its resolution.
//
// CNAME chains are followed up to 10 links and returned whole in the answer
// section. A chain that loops or is too long is returned as far as it was
// followed with NOERROR, so that the loop is visible to the client (the last
// CNAME's target is already in the chain, or unresolved). A CNAME whose
// target does not exist gives NXDOMAIN with the chain, as with BIND.
//
// Configure the exported fields before the first query; a Recursor is safe
// for concurrent use.
type Recursor struct {
	// Roots are the root servers' addresses.
	Roots []netip.AddrPort
	// Port is the port of servers learned from glue or NS lookups (0: 53).
	Port uint16
	// Timeout bounds each query to an upstream server (0: 1s).
	Timeout time.Duration
	// Stall is how long a server is waited for before the next server of the set
	// is asked as well (0: Timeout, one server at a time). The first usable answer
	// wins, so a server slower than Stall but within Timeout is still heard.
	Stall time.Duration
	// RequestTimeout bounds the whole resolution of a client query (0: 5s).
	RequestTimeout time.Duration
	// MaxCacheEntries bounds the answer cache and the delegation cache
	// each (0: 100000).
	MaxCacheEntries int
	// MaxInfraEntries bounds the infrastructure cache: the smoothed RTT
	// and timeout state kept per server address (0: 10000).
	MaxInfraEntries int
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Logger receives debug logs of upstream failures (nil: discarded).
	Logger *slog.Logger

	once    sync.Once
	cache   *cache
	infra   *infraCache
	flights flights
	counts  counter
}

// Upstream budgets per client query: servers asked, nested lookups (NS
// addresses), referrals followed.
const (
	maxUpstreamQueries = 64
	maxDepth           = 6
	maxReferrals       = 20
	negativeTTLDefault = time.Minute
)

// errNoServer means that no server of a nameserver set gave a usable answer.
var errNoServer = errors.New("no server answered")

// Count returns how many client queries for qname and qtype the resolver
// received.
func (r *Recursor) Count(qname string, qtype uint16) int { return r.counts.get(qname, qtype) }

// Total returns how many client queries the resolver received.
func (r *Recursor) Total() int { return r.counts.sum() }

func (r *Recursor) init() {
	r.once.Do(func() {
		n := r.MaxCacheEntries
		if n <= 0 {
			n = 100000
		}
		r.cache = newCache(n)
		if n = r.MaxInfraEntries; n <= 0 {
			n = maxInfraDefault
		}
		r.infra = newInfraCache(n)
	})
}

func (r *Recursor) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Recursor) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// ServeDNS implements dns.Handler.
func (r *Recursor) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	r.init()
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		writeRcode(w, req, dns.RcodeFormatError)
		return
	}
	q := req.Question[0]
	name := dns.CanonicalName(q.Name)
	r.counts.add(name, q.Qtype)
	if q.Qclass != dns.ClassINET {
		writeRcode(w, req, dns.RcodeRefused)
		return
	}
	timeout := r.RequestTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res := r.resolveShared(ctx, name, q.Qtype)
	m := new(dns.Msg)
	m.SetReply(req)
	m.RecursionAvailable = true
	m.Rcode = res.rcode
	m.Answer = append([]dns.RR(nil), res.answer...)
	m.Ns = append([]dns.RR(nil), res.ns...)
	writeReply(w, req, m)
}

// Resolve answers qname/qtype as ServeDNS would and returns the rcode and
// the answer and authority sections.
func (r *Recursor) Resolve(ctx context.Context, qname string, qtype uint16) Answer {
	r.init()
	res := r.resolveShared(ctx, dns.CanonicalName(qname), qtype)
	// Clone: the sections may be shared with the cache and other callers.
	return Answer{Rcode: res.rcode, Answer: slices.Clone(res.answer), Ns: slices.Clone(res.ns)}
}

// Answer is a resolver's reply: its rcode, answer and authority sections.
type Answer struct {
	Rcode  int
	Answer []dns.RR
	Ns     []dns.RR
}

// budget counts the upstream work done for one client query.
type budget struct {
	queries int
	depth   int
}

// result is an rcode and the sections of a reply.
type result struct {
	rcode      int
	answer, ns []dns.RR
}

var servfail = result{rcode: dns.RcodeServerFailure}

// resolve answers qname/qtype following CNAME chains.
func (r *Recursor) resolve(ctx context.Context, qname string, qtype uint16, b *budget) result {
	var chain []dns.RR
	seen := map[string]bool{qname: true}
	cur := qname
	for link := 0; ; link++ {
		one := r.lookup(ctx, cur, qtype, b)
		if one.rcode != dns.RcodeSuccess && one.rcode != dns.RcodeNameError {
			return one
		}
		// Walk the chain inside this answer: CNAMEs from cur, then qtype.
		next := cur
		for {
			var cname *dns.CNAME
			var final []dns.RR
			for _, rr := range one.answer {
				if dns.CanonicalName(rr.Header().Name) != next {
					continue
				}
				if c, ok := rr.(*dns.CNAME); ok && qtype != dns.TypeCNAME {
					cname = c
				} else if rr.Header().Rrtype == qtype {
					final = append(final, rr)
				}
			}
			if len(final) > 0 || cname == nil {
				chain = append(chain, final...)
				if len(final) > 0 || next == cur {
					// Answered, or a negative answer for cur itself.
					return result{rcode: one.rcode, answer: chain, ns: one.ns}
				}
				break // the answer stops at a CNAME target: look it up
			}
			chain = append(chain, cname)
			next = dns.CanonicalName(cname.Target)
			if seen[next] || len(chain) > maxCNAME {
				return result{rcode: dns.RcodeSuccess, answer: chain}
			}
			seen[next] = true
		}
		if link >= maxCNAME {
			return result{rcode: dns.RcodeSuccess, answer: chain}
		}
		cur = next
	}
}

// lookup answers exactly qname/qtype (no CNAME following across servers),
// from the cache or by iteration from the closest known delegation.
func (r *Recursor) lookup(ctx context.Context, qname string, qtype uint16, b *budget) result {
	now := r.now()
	if e, ok := r.cache.getAnswer(qname, qtype, now); ok {
		return result{rcode: e.rcode, answer: e.answer, ns: e.ns}
	}
	zone, servers := r.closest(qname, now)
	for range maxReferrals {
		resp, err := r.ask(ctx, servers, qname, qtype, b)
		if err != nil {
			r.log().Debug("dns lookup failed", "name", qname, "type", dns.TypeToString[qtype], "zone", zone, "err", err)
			return servfail
		}
		answer := inZone(resp.Answer, zone)
		soa := soaOf(resp.Ns, zone)
		switch {
		case resp.Rcode == dns.RcodeNameError:
			return r.store(qname, qtype, result{rcode: dns.RcodeNameError, answer: answer, ns: soa})
		case resp.Rcode != dns.RcodeSuccess:
			return servfail
		case len(answer) > 0:
			return r.store(qname, qtype, result{rcode: dns.RcodeSuccess, answer: answer})
		}
		child, nsset := referral(resp, zone, qname)
		if child == "" {
			return r.store(qname, qtype, result{rcode: dns.RcodeSuccess, ns: soa})
		}
		zone, servers = child, r.candidates(nsset, resp.Extra, zone)
		r.cache.putDelegation(child, delegation{servers: servers, expires: now.Add(ttlOf(nsset))})
	}
	return servfail
}

// store caches res for qname/qtype and returns it.
func (r *Recursor) store(qname string, qtype uint16, res result) result {
	ttl := ttlOf(append(append([]dns.RR(nil), res.answer...), res.ns...))
	if len(res.answer) == 0 && len(res.ns) == 0 {
		ttl = negativeTTLDefault
	}
	r.cache.putAnswer(qname, qtype, cacheEntry{rcode: res.rcode, answer: res.answer, ns: res.ns, expires: r.now().Add(ttl)})
	return res
}

// closest returns the deepest cached delegation above qname, or the roots.
func (r *Recursor) closest(qname string, now time.Time) (string, []candidate) {
	for _, off := range dns.Split(qname) {
		zone := qname[off:]
		if servers, ok := r.cache.getDelegation(zone, now); ok {
			return zone, servers
		}
	}
	roots := make([]candidate, len(r.Roots))
	for i, a := range r.Roots {
		roots[i] = candidate{addr: a}
	}
	return ".", roots
}

// referral returns the child zone and its NS records if resp refers from
// zone towards qname, or "".
func referral(resp *dns.Msg, zone, qname string) (string, []dns.RR) {
	var child string
	var nsset []dns.RR
	for _, rr := range resp.Ns {
		ns, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		owner := dns.CanonicalName(ns.Hdr.Name)
		if owner == zone || !dns.IsSubDomain(zone, owner) || !dns.IsSubDomain(owner, qname) {
			continue // upward, sideways or lame
		}
		if child != "" && owner != child {
			continue
		}
		child = owner
		nsset = append(nsset, ns)
	}
	return child, nsset
}

// candidates lists a delegation's servers: glue addresses (IPv4 first)
// inside the referring zone's bailiwick, then NS names without glue.
func (r *Recursor) candidates(nsset, extra []dns.RR, zone string) []candidate {
	var v4, v6, names []candidate
	for _, rr := range nsset {
		target := dns.CanonicalName(rr.(*dns.NS).Ns)
		glued := false
		for _, g := range extra {
			if dns.CanonicalName(g.Header().Name) != target || !dns.IsSubDomain(zone, target) {
				continue
			}
			switch g := g.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(g.A.To4()); ok {
					v4 = append(v4, candidate{addr: netip.AddrPortFrom(a, r.port())})
					glued = true
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(g.AAAA); ok {
					v6 = append(v6, candidate{addr: netip.AddrPortFrom(a, r.port())})
					glued = true
				}
			}
		}
		if !glued {
			names = append(names, candidate{name: target})
		}
	}
	return append(append(v4, v6...), names...)
}

func (r *Recursor) port() uint16 {
	if r.Port == 0 {
		return 53
	}
	return r.Port
}

// inZone keeps the records owned by names inside zone (bailiwick check).
func inZone(rrs []dns.RR, zone string) []dns.RR {
	var out []dns.RR
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT && dns.IsSubDomain(zone, dns.CanonicalName(rr.Header().Name)) {
			out = append(out, rr)
		}
	}
	return out
}

// soaOf returns the SOA records of the authority section inside zone.
func soaOf(rrs []dns.RR, zone string) []dns.RR {
	var out []dns.RR
	for _, rr := range inZone(rrs, zone) {
		if rr.Header().Rrtype == dns.TypeSOA {
			out = append(out, rr)
		}
	}
	return out
}
