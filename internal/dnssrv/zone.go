// Package dnssrv holds the DNS servers v6matrix runs in its tests, its benchmark
// and its lab: an authoritative server with fault injection, an iterative
// recursive resolver, a synthetic high-rate server for benchmarks, NSD zone
// generation for the same synthetic data, and helpers that run all of them on
// loopback.
package dnssrv

import (
	"fmt"
	"io"
	"strings"

	"github.com/miekg/dns"
)

// maxCNAME bounds every CNAME chain the servers of this package follow.
const maxCNAME = 10

// Zone is the data of one authoritative zone, indexed for lookups. A Zone is
// immutable once built and safe for concurrent use. Wildcards are not
// expanded: a name exists only if records are owned by it or below it.
type Zone struct {
	origin string // lower-case FQDN
	soa    *dns.SOA
	names  map[string]map[uint16][]dns.RR // owner -> type -> records
	exists map[string]bool                // owners and empty non-terminals
}

// ParseZone reads a zone in master file format. Relative names are completed
// with origin; records without a TTL get 3600 s; errors name filename and
// line.
func ParseZone(origin string, r io.Reader, filename string) (*Zone, error) {
	origin = dns.CanonicalName(origin)
	zp := dns.NewZoneParser(r, origin, filename)
	zp.SetDefaultTTL(3600) // for records before any $TTL or explicit TTL
	var rrs []dns.RR
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		rrs = append(rrs, rr)
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("parse zone %s: %w", origin, err)
	}
	z, err := NewZone(origin, rrs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filename, err)
	}
	return z, nil
}

// ParseZoneString is ParseZone for a zone held in a string, convenient in
// tests.
func ParseZoneString(origin, text string) (*Zone, error) {
	return ParseZone(origin, strings.NewReader(text), origin+"zone")
}

// NewZone builds a zone from records. It needs exactly one SOA, at origin,
// and every record must lie at or below origin.
func NewZone(origin string, rrs []dns.RR) (*Zone, error) {
	z := &Zone{
		origin: dns.CanonicalName(origin),
		names:  make(map[string]map[uint16][]dns.RR),
		exists: make(map[string]bool),
	}
	for _, rr := range rrs {
		h := rr.Header()
		owner := dns.CanonicalName(h.Name)
		if !dns.IsSubDomain(z.origin, owner) {
			return nil, fmt.Errorf("zone %s: record %q is outside the zone", z.origin, rr.String())
		}
		if soa, ok := rr.(*dns.SOA); ok {
			if owner != z.origin {
				return nil, fmt.Errorf("zone %s: SOA at %s, not at the apex", z.origin, owner)
			}
			if z.soa != nil {
				return nil, fmt.Errorf("zone %s: more than one SOA", z.origin)
			}
			z.soa = soa
		}
		types := z.names[owner]
		if types == nil {
			types = make(map[uint16][]dns.RR)
			z.names[owner] = types
		}
		types[h.Rrtype] = append(types[h.Rrtype], rr)
		z.exists[z.origin] = true
		for _, off := range dns.Split(owner) {
			if n := owner[off:]; len(n) > len(z.origin) {
				z.exists[n] = true
			}
		}
	}
	if z.soa == nil {
		return nil, fmt.Errorf("zone %s: no SOA record", z.origin)
	}
	for owner, types := range z.names {
		if len(types[dns.TypeCNAME]) > 0 && len(types) > 1 {
			return nil, fmt.Errorf("zone %s: CNAME and other data at %s", z.origin, owner)
		}
	}
	return z, nil
}

// Origin returns the zone's apex as a lower-case FQDN.
func (z *Zone) Origin() string { return z.origin }

// outcome is what a zone says about one question.
type outcome int

const (
	outAnswer   outcome = iota // answer section filled (possibly only a CNAME chain)
	outNoData                  // name exists, type does not
	outNXDomain                // name does not exist
	outReferral                // name is at or below a delegation
)

// lookupResult holds the sections of an authoritative reply.
type lookupResult struct {
	out               outcome
	answer, ns, extra []dns.RR
}

// lookup answers qname/qtype (qname lower-case) from the zone data, following
// CNAMEs that stay inside the zone.
func (z *Zone) lookup(qname string, qtype uint16) lookupResult {
	var res lookupResult
	seen := map[string]bool{}
	for hop := 0; ; hop++ {
		one := z.lookupName(qname, qtype)
		if one.out == outReferral && len(res.answer) > 0 {
			// The chain leaves our authority: the resolver takes it from here.
			res.out = outAnswer
			return res
		}
		res.answer = append(res.answer, one.answer...)
		res.ns, res.extra, res.out = one.ns, one.extra, one.out
		if one.out != outAnswer || qtype == dns.TypeCNAME || len(one.answer) == 0 {
			return res
		}
		cname, ok := one.answer[0].(*dns.CNAME)
		if !ok {
			return res
		}
		seen[qname] = true
		target := dns.CanonicalName(cname.Target)
		if seen[target] || hop >= maxCNAME || !dns.IsSubDomain(z.origin, target) {
			return res
		}
		qname = target
	}
}

// lookupName answers one name without following CNAMEs.
func (z *Zone) lookupName(qname string, qtype uint16) lookupResult {
	if cut := z.cut(qname, qtype); cut != "" {
		nsset := z.names[cut][dns.TypeNS]
		res := lookupResult{out: outReferral, ns: nsset}
		for _, rr := range nsset {
			target := dns.CanonicalName(rr.(*dns.NS).Ns)
			if !dns.IsSubDomain(z.origin, target) {
				continue
			}
			res.extra = append(res.extra, z.names[target][dns.TypeA]...)
			res.extra = append(res.extra, z.names[target][dns.TypeAAAA]...)
		}
		return res
	}
	types, ok := z.names[qname]
	if !ok {
		if z.exists[qname] {
			return lookupResult{out: outNoData, ns: []dns.RR{z.soa}}
		}
		return lookupResult{out: outNXDomain, ns: []dns.RR{z.soa}}
	}
	if rrs := types[qtype]; len(rrs) > 0 {
		return lookupResult{out: outAnswer, answer: rrs}
	}
	if rrs := types[dns.TypeCNAME]; len(rrs) > 0 {
		return lookupResult{out: outAnswer, answer: rrs}
	}
	return lookupResult{out: outNoData, ns: []dns.RR{z.soa}}
}

// cut returns the delegation point at or above qname (below the apex), or "".
// A DS question at the cut itself belongs to the parent.
func (z *Zone) cut(qname string, qtype uint16) string {
	offs := dns.Split(qname)
	for i := len(offs) - 1; i >= 0; i-- {
		name := qname[offs[i]:]
		if len(name) <= len(z.origin) {
			continue
		}
		if name == qname && qtype == dns.TypeDS {
			return ""
		}
		if len(z.names[name][dns.TypeNS]) > 0 {
			return name
		}
	}
	return ""
}
