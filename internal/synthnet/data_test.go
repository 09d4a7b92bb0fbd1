package synthnet

import (
	"net/netip"
	"testing"
)

// TestDataPlan checks the address plan without a network: about 0.45 addresses per
// domain, every address in the allowed ranges and inside the world's AnyIP prefixes, and
// HotShare of them in HotNet, the largest network (/24, /48) by far.
func TestDataPlan(t *testing.T) {
	d := Data{Domains: 20_000, HotShare: 0.02}
	seen := map[netip.Addr]bool{}
	for n := 1; n <= d.Domains; n++ {
		for _, a := range d.Addrs(n) {
			seen[a] = true
		}
	}
	hot := 0
	perNet := map[netip.Prefix]int{}
	for a := range seen {
		bits := 24
		if a.Is6() {
			bits = 48
		}
		perNet[netip.PrefixFrom(a, bits).Masked()]++
		allowed, world := false, false
		for _, p := range AllowRanges {
			allowed = allowed || p.Contains(a)
		}
		for _, p := range append(append([]netip.Prefix(nil), worldV4...), worldV6...) {
			world = world || p.Masked().Contains(a)
		}
		if !allowed || !world {
			t.Errorf("address %s: outside the allowed ranges (%v) or the world's prefixes (%v)", a, allowed, world)
		}
		if HotNet.Contains(a) {
			hot++
		}
		if a == ResolverAddr.Addr() {
			t.Errorf("address %s is the resolver's", a)
		}
	}
	if got := float64(len(seen)) / float64(d.Domains); got < 0.40 || got > 0.50 {
		t.Errorf("%d addresses for %d domains: %.2f per domain, want about 0.45", len(seen), d.Domains, got)
	}
	if share := float64(hot) / float64(len(seen)); share < 0.015 || share > 0.025 {
		t.Errorf("%d of %d addresses in %s: share %.3f, want about 0.02", hot, len(seen), HotNet, share)
	}
	for p, n := range perNet {
		if p != HotNet && n >= hot/2 {
			t.Errorf("network %s has %d addresses, HotNet %d: want HotNet the largest by far", p, n, hot)
		}
	}
	if got := d.CountAddrs(); got != len(seen) {
		t.Errorf("CountAddrs = %d, want %d", got, len(seen))
	}
}
