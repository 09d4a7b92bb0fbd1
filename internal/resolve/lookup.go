package resolve

import (
	"context"
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/result"
)

// MaxCNAME bounds the CNAME chain followed from one name, as resolvers do.
const MaxCNAME = 8

// MaxAddrs bounds the addresses kept per host and family, so that a hostile answer
// cannot blow up a run; real hosts stay far below it.
const MaxAddrs = 64

// Records is the answer to one query after its CNAME chain was followed.
type Records struct {
	Status result.Status
	Final  string   // the name the chain ends at (the query name when there is no chain)
	CNAME  []string // chain targets in order
	RRs    []dns.RR // records of the asked type owned by Final
}

// Lookup queries name/qtype and follows the CNAME chain in the answer; see LookupAll.
func (c *Client) Lookup(ctx context.Context, name string, qtype uint16) (Records, error) {
	rs, err := c.LookupAll(ctx, []Question{{Name: name, Type: qtype}})
	if err != nil {
		return Records{}, err
	}
	return rs[0], nil
}

// LookupAll asks every question at once (QueryAll) and follows the CNAME chain of each
// answer. When the resolver stops short of the end of a chain, the remaining target is
// asked again, up to MaxCNAME links in all; a name met twice is a loop.
func (c *Client) LookupAll(ctx context.Context, qs []Question) ([]Records, error) {
	as, err := c.QueryAll(ctx, qs)
	if err != nil {
		return nil, err
	}
	out := make([]Records, len(qs))
	for i, q := range qs {
		if out[i], err = c.follow(ctx, q.Name, q.Type, as[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// follow walks the CNAME chain from the answer a to name/qtype.
func (c *Client) follow(ctx context.Context, name string, qtype uint16, a Answer) (Records, error) {
	rec := Records{Final: strings.ToLower(strings.TrimSuffix(name, "."))}
	var seen map[string]bool // made at the first CNAME: most answers have none
	for range MaxCNAME + 1 {
		rec.Status = a.Status
		if a.Msg == nil || a.Status != result.StatusOK && a.Status != result.StatusNXDomain {
			return rec, nil
		}
		// Walk the chain through the answer section, taking only records owned by the
		// names on it: anything else in the answer is ignored (hostile or sloppy servers).
		for {
			target, ok := cnameOf(a.Msg.Answer, rec.Final)
			if !ok {
				break
			}
			if seen == nil {
				seen = map[string]bool{strings.ToLower(strings.TrimSuffix(name, ".")): true}
			}
			if seen[target] {
				rec.Status = result.StatusCNAMELoop
				return rec, nil
			}
			if len(rec.CNAME) == MaxCNAME {
				rec.Status = result.StatusCNAMELong
				return rec, nil
			}
			seen[target] = true
			rec.CNAME = append(rec.CNAME, target)
			rec.Final = target
		}
		for _, rr := range a.Msg.Answer {
			if rr.Header().Rrtype == qtype && strings.EqualFold(strings.TrimSuffix(rr.Header().Name, "."), rec.Final) {
				rec.RRs = append(rec.RRs, rr)
			}
		}
		if len(rec.RRs) > 0 || len(rec.CNAME) == 0 || a.Status == result.StatusNXDomain {
			if a.Status == result.StatusOK && len(rec.RRs) == 0 {
				rec.Status = result.StatusNoData
			}
			return rec, nil
		}
		if endsChain(a.Msg, rec.Final) {
			rec.Status = result.StatusNoData
			return rec, nil
		}
		// The chain's end was not resolved by the resolver: ask for it ourselves.
		var err error
		if a, err = c.Query(ctx, rec.Final, qtype); err != nil {
			return rec, err
		}
	}
	rec.Status = result.StatusCNAMELong
	return rec, nil
}

// endsChain reports whether the response says the chain's last name has no data (an
// SOA in the authority section is a negative answer for it).
func endsChain(m *dns.Msg, final string) bool {
	for _, rr := range m.Ns {
		if rr.Header().Rrtype == dns.TypeSOA {
			return true
		}
	}
	return false
}

func cnameOf(rrs []dns.RR, owner string) (string, bool) {
	for _, rr := range rrs {
		if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(strings.TrimSuffix(c.Hdr.Name, "."), owner) {
			return strings.ToLower(strings.TrimSuffix(c.Target, ".")), true
		}
	}
	return "", false
}

// HostQuery is one host name to look up. AAAALater asks AAAA only after A has
// answered and only when the name exists: for names that usually do not (ntp., time.),
// it saves a query at the cost of a round trip. A and AAAA are answers the caller
// already has (asked with other questions of its batch): they are not asked again.
type HostQuery struct {
	Name      string
	AAAALater bool
	A, AAAA   *Records
}

// Host looks up the A and then the AAAA records of a host name. NXDOMAIN on A ends the
// lookup (the name does not exist, so AAAA would say the same).
func (c *Client) Host(ctx context.Context, name string) (result.Host, error) {
	hs, err := c.Hosts(ctx, []HostQuery{{Name: name, AAAALater: true}})
	if err != nil {
		return result.Host{Name: name}, err
	}
	return hs[0], nil
}

// Hosts looks up the A and AAAA records of several host names in one batch (the A and
// AAAA of every name not in hand, and the AAAA of AAAALater names whose A is in hand),
// then, in a second batch, the AAAA of AAAALater names whose A that batch found.
// A later AAAA is not asked when A said the name does not exist (NXDOMAIN) or timed
// out: a server that did not answer A within the whole schedule would most likely make
// AAAA wait the schedule again, and the name is recorded only when it has an address.
func (c *Client) Hosts(ctx context.Context, hq []HostQuery) ([]result.Host, error) {
	a, aaaa := make([]*Records, len(hq)), make([]*Records, len(hq))
	var qs []Question
	var dst []**Records // where each question's records go
	ask := func(name string, qtype uint16, to **Records) {
		qs = append(qs, Question{Name: name, Type: qtype})
		dst = append(dst, to)
	}
	for i, h := range hq {
		a[i], aaaa[i] = h.A, h.AAAA
		if h.A == nil {
			ask(h.Name, dns.TypeA, &a[i])
		}
		if h.AAAA == nil && (!h.AAAALater || h.A != nil && !skipAAAA(h.A.Status)) {
			ask(h.Name, dns.TypeAAAA, &aaaa[i])
		}
	}
	if err := c.lookupInto(ctx, qs, dst); err != nil {
		return nil, err
	}
	qs, dst = qs[:0], dst[:0]
	for i, h := range hq {
		if h.AAAALater && h.A == nil && aaaa[i] == nil && !skipAAAA(a[i].Status) {
			ask(h.Name, dns.TypeAAAA, &aaaa[i])
		}
	}
	if err := c.lookupInto(ctx, qs, dst); err != nil {
		return nil, err
	}
	out := make([]result.Host, len(hq))
	for i, h := range hq {
		out[i] = result.Host{Name: h.Name, CNAME: a[i].CNAME, AStatus: a[i].Status}
		fillHost(&out[i], *a[i], aaaa[i])
	}
	return out, nil
}

// lookupInto asks qs in one batch (LookupAll) and stores each answer's records at dst.
func (c *Client) lookupInto(ctx context.Context, qs []Question, dst []**Records) error {
	if len(qs) == 0 {
		return nil
	}
	rs, err := c.LookupAll(ctx, qs)
	if err != nil {
		return err
	}
	for i := range rs {
		*dst[i] = &rs[i]
	}
	return nil
}

// skipAAAA reports an A outcome after which a later AAAA is not asked.
func skipAAAA(s result.Status) bool { return gone(s) || s == result.StatusTimeout }

// gone reports an A outcome after which AAAA is not worth asking.
func gone(s result.Status) bool {
	return s == result.StatusNXDomain || s == result.StatusCNAMELoop || s == result.StatusCNAMELong
}

// fillHost sets a host's addresses and status from its A and (when asked) AAAA records.
func fillHost(h *result.Host, a Records, aaaa *Records) {
	for _, rr := range a.RRs {
		if ip, ok := netip.AddrFromSlice(rr.(*dns.A).A.To4()); ok && len(h.V4) < MaxAddrs {
			h.V4 = append(h.V4, ip)
		}
	}
	if aaaa == nil { // not asked: the name does not exist
		h.Status = a.Status
		h.V4 = dedup(h.V4)
		h.Sort()
		return
	}
	h.AAAAStatus = aaaa.Status
	if len(h.CNAME) == 0 {
		h.CNAME = aaaa.CNAME
	}
	for _, rr := range aaaa.RRs {
		// AAAA data is 16 bytes; an IPv4-mapped address stays mapped (it is junk to be
		// classified, not an IPv4 address).
		if ip, ok := netip.AddrFromSlice(rr.(*dns.AAAA).AAAA); ok && ip.BitLen() == 128 && len(h.V6) < MaxAddrs {
			h.V6 = append(h.V6, ip)
		}
	}
	if gone(a.Status) && len(h.V6) == 0 {
		h.Status = a.Status
	} else {
		h.Status = combine(a.Status, aaaa.Status, len(h.V4)+len(h.V6) > 0)
	}
	h.V4 = dedup(h.V4)
	h.V6 = dedup(h.V6)
	h.Sort()
}

// combine gives a host's status from its A and AAAA outcomes.
func combine(a, aaaa result.Status, hasAddr bool) result.Status {
	if hasAddr {
		return result.StatusOK
	}
	if a == result.StatusNoData || a == result.StatusOK {
		if aaaa == result.StatusOK {
			return result.StatusNoData
		}
		return aaaa
	}
	return a
}

func dedup(as []netip.Addr) []netip.Addr {
	seen := make(map[netip.Addr]bool, len(as))
	out := as[:0]
	for _, a := range as {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}
