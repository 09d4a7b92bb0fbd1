package addrclass

import (
	"net/netip"
	"testing"
)

// BenchmarkClassify reports ns/op for one classification, cycling through
// the addr6 comparison corpus (every class, both families' worth of work).
func BenchmarkClassify(b *testing.B) {
	addrs := append(corpus(), netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("8.8.8.8"))
	c := New(nil, []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = c.Classify(addrs[i%len(addrs)])
		i++
	}
}
