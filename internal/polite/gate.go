package polite

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/v6matrix/v6matrix/internal/addrclass"
)

// Gate decides which addresses may be probed at all. The crawl asks it
// before queueing. It refuses addresses that are not globally reachable
// (loopback, private, link-local, multicast, documentation, benchmarking,
// ULA, IPv4-mapped and the other IANA special-purpose blocks) unless they
// are inside an allowed prefix (--allow-ranges, for the lab), and it always
// refuses opted-out networks: an opt-out wins over an allow.
type Gate struct {
	allow  prefixTable[netip.Prefix]
	optOut prefixTable[netip.Prefix]
	// Blocks with special rules, parsed once.
	globalUnicast, sixToFour, nat64, teredo netip.Prefix
}

// NewGate returns a gate that allows the special-purpose addresses inside
// allow and refuses every address inside optOut.
func NewGate(allow, optOut []netip.Prefix) (*Gate, error) {
	g := &Gate{
		// IANA allocates 2000::/3 for global unicast; the rest of the
		// IPv6 space is reserved or listed in the special table.
		globalUnicast: netip.MustParsePrefix("2000::/3"),
		sixToFour:     netip.MustParsePrefix("2002::/16"),
		nat64:         nat64,
		teredo:        netip.MustParsePrefix("2001::/32"),
	}
	for i, p := range allow {
		if !p.IsValid() {
			return nil, fmt.Errorf("polite: allow range %d (%v) is not a valid prefix", i, p)
		}
		g.allow.add(p.Masked(), p.Masked())
	}
	for i, p := range optOut {
		if !p.IsValid() {
			return nil, fmt.Errorf("polite: opt-out range %d (%v) is not a valid prefix", i, p)
		}
		g.optOut.add(p.Masked(), p.Masked())
	}
	return g, nil
}

// Allowed reports whether a may be probed and why. The reason is empty for
// an ordinary global address, names the allow range that let a special
// address through, and otherwise says why a is refused.
func (g *Gate) Allowed(a netip.Addr) (ok bool, reason string) {
	if !a.IsValid() {
		return false, "invalid address"
	}
	a = a.WithZone("")
	for _, x := range []netip.Addr{a, a.Unmap()} {
		if p, hit := g.optOut.lookup(x); hit {
			return false, fmt.Sprintf("opted out (%v)", p)
		}
	}
	if p, hit := g.allow.lookup(a); hit {
		return true, fmt.Sprintf("in --allow-ranges %v", p)
	}
	if why := g.notGlobal(a); why != "" {
		return false, why
	}
	// Transition addresses whose packets are relayed to an embedded IPv4
	// address are refused when that address would be.
	b := a.As16()
	var v4 netip.Addr
	kind := ""
	switch {
	case g.sixToFour.Contains(a):
		v4, kind = netip.AddrFrom4([4]byte(b[2:6])), "6to4"
	case g.nat64.Contains(a):
		v4, kind = netip.AddrFrom4([4]byte(b[12:16])), "NAT64"
	case g.teredo.Contains(a):
		v4, kind = netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}), "Teredo"
	}
	if kind != "" {
		// An embedded address inside --allow-ranges is as probe-able as the range (a
		// lab's 6to4 and Teredo addresses embed its documentation addresses).
		if why := g.notGlobal(v4); why != "" {
			if _, allowed := g.allow.lookup(v4); !allowed {
				return false, fmt.Sprintf("%s address embeds %v: %s", kind, v4, why)
			}
		}
		if p, hit := g.optOut.lookup(v4); hit {
			return false, fmt.Sprintf("%s address embeds %v: opted out (%v)", kind, v4, p)
		}
	}
	return true, ""
}

// notGlobal returns why a is not globally reachable, or "".
func (g *Gate) notGlobal(a netip.Addr) string {
	// The IANA special-purpose registries, as the address classifier has them.
	if r, hit := addrclass.LookupSpecial(a); hit {
		if r.Global {
			return ""
		}
		return fmt.Sprintf("special-purpose: %s %s (%s)", r.Name, r.Block, r.Ref)
	}
	if a.Is6() && !g.globalUnicast.Contains(a) {
		return "outside the IPv6 global unicast space 2000::/3"
	}
	return ""
}

// prefixTable finds the longest prefix holding an address with one map
// lookup per distinct prefix length, so that long opt-out lists cost the
// same per address as short ones.
type prefixTable[V any] struct {
	byLen map[netip.Prefix]V
	lens4 []int // descending
	lens6 []int
}

func (t *prefixTable[V]) add(p netip.Prefix, v V) {
	if t.byLen == nil {
		t.byLen = make(map[netip.Prefix]V)
	}
	t.byLen[p] = v
	lens := &t.lens6
	if p.Addr().Is4() {
		lens = &t.lens4
	}
	if !slices.Contains(*lens, p.Bits()) {
		*lens = append(*lens, p.Bits())
		slices.Sort(*lens)
		slices.Reverse(*lens)
	}
}

func (t *prefixTable[V]) lookup(a netip.Addr) (V, bool) {
	lens := t.lens6
	if a.Is4() {
		lens = t.lens4
	}
	for _, l := range lens {
		p, _ := a.Prefix(l)
		if v, ok := t.byLen[p]; ok {
			return v, true
		}
	}
	var zero V
	return zero, false
}
