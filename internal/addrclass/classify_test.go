package addrclass

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestClassifyEdgeCases(t *testing.T) {
	lab := []netip.Prefix{
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("192.0.2.0/24"),
		netip.MustParsePrefix("10.9.0.0/16"),
	}
	tests := []struct {
		name  string
		addr  string
		allow []netip.Prefix
		want  Class
	}{
		{name: "native low-byte", addr: "2a00:1450:4001:81c::1",
			want: Class{Valid: true, Type: "native", IID: "low-byte"}},
		{name: "native eui64", addr: "2a00:1450:4001:81c:21a:2bff:fe3c:4d5e",
			want: Class{Valid: true, Type: "native", IID: "eui64"}},
		{name: "native randomized", addr: "2a00:1450:4001:81c:a1b2:c3d4:e5f6:1234",
			want: Class{Valid: true, Type: "native", IID: "randomized"}},
		{name: "native embedded port 443", addr: "2a00:1450:4001:81c::443",
			want: Class{Valid: true, Type: "native", IID: "embedded-port"}},
		{name: "native embedded ipv4", addr: "2a00:1450:4001:81c::c000:201",
			want: Class{Valid: true, Type: "native", IID: "embedded-ipv4"}},
		{name: "6to4 embeds its IPv4", addr: "2002:c000:201::1",
			want: Class{Valid: true, PrefixID: "U0001", Type: "6to4", IID: "low-byte", EmbeddedIPv4: ip("192.0.2.1")}},
		{name: "teredo decoded (RFC 4380 example)", addr: "2001:0:4136:e378:8000:63bf:3fff:fdd2",
			want: Class{Valid: true, PrefixID: "U3000", Type: "teredo", EmbeddedIPv4: ip("192.0.2.45"),
				Teredo: &TeredoInfo{Server: ip("65.54.227.120"), Client: ip("192.0.2.45"), ClientPort: 40000, Flags: 0x8000}}},
		{name: "legacy teredo is not routed", addr: "3ffe:831f:4136:e378:8000:63bf:3fff:fdd2",
			want: Class{Type: "teredo", EmbeddedIPv4: ip("192.0.2.45"),
				Teredo: &TeredoInfo{Server: ip("65.54.227.120"), Client: ip("192.0.2.45"), ClientPort: 40000, Flags: 0x8000}}},
		{name: "free 6rd /32 beats /28", addr: "2a01:e30:1234::1",
			want: Class{Valid: true, PrefixID: "U2000", Type: "6rd", IID: "low-byte"}},
		{name: "free 6rd /28 only", addr: "2a01:e35::1",
			want: Class{Valid: true, PrefixID: "U2001", Type: "6rd", IID: "low-byte"}},
		{name: "HE server /48 beats HE /32", addr: "2001:470:1f0a:12::2",
			want: Class{Valid: true, PrefixID: "U70A0", Type: "tunnel-broker", IID: "low-byte"}},
		{name: "HE /32", addr: "2001:470:dead::2",
			want: Class{Valid: true, PrefixID: "U4020", Type: "tunnel-broker", IID: "low-byte"}},
		{name: "nat64 well-known prefix", addr: "64:ff9b::c000:201",
			want: Class{Valid: true, PrefixID: "U4000", Type: "nat64", IID: "embedded-ipv4", EmbeddedIPv4: ip("192.0.2.1")}},
		{name: "nat64 local-use is not global", addr: "64:ff9b:1::a",
			want: Class{PrefixID: "U4001", Type: "nat64", IID: "low-byte"}},
		{name: "isatap global", addr: "2a00:1450:4001:81c:200:5efe:c000:201",
			want: Class{Valid: true, Type: "isatap", IID: "isatap", EmbeddedIPv4: ip("192.0.2.1")}},
		{name: "isatap private ipv4", addr: "2a00:1450:4001:81c:0:5efe:a00:1",
			want: Class{Valid: true, Type: "isatap", IID: "isatap", EmbeddedIPv4: ip("10.0.0.1")}},
		{name: "isatap link-local stays link-local", addr: "fe80::5efe:a00:1",
			want: Class{Type: "link-local", IID: "isatap", EmbeddedIPv4: ip("10.0.0.1")}},
		{name: "ipv4-mapped is not unmapped", addr: "::ffff:192.0.2.1",
			want: Class{Type: "ipv4-mapped", EmbeddedIPv4: ip("192.0.2.1")}},
		{name: "ipv4-mapped not allowed by IPv4 range", addr: "::ffff:192.0.2.1", allow: lab,
			want: Class{Type: "ipv4-mapped", EmbeddedIPv4: ip("192.0.2.1")}},
		{name: "ipv4-compatible", addr: "::198.51.100.7",
			want: Class{Type: "ipv4-compatible", IID: "embedded-ipv4", EmbeddedIPv4: ip("198.51.100.7")}},
		{name: "unspecified", addr: "::", want: Class{Type: "unspecified"}},
		{name: "loopback", addr: "::1", want: Class{Type: "loopback", IID: "low-byte"}},
		{name: "link-local with zone", addr: "fe80::1%eth0", want: Class{Type: "link-local", IID: "low-byte"}},
		{name: "ula", addr: "fd12:3456:789a:1::1", want: Class{Type: "ula", IID: "low-byte"}},
		{name: "site-local", addr: "fec0::1", want: Class{Type: "site-local", IID: "low-byte"}},
		{name: "multicast", addr: "ff02::1", want: Class{Type: "multicast"}},
		{name: "documentation", addr: "2001:db8::25", want: Class{Type: "documentation", IID: "embedded-port"}},
		{name: "documentation 3fff::/20", addr: "3fff:fff::1", want: Class{Type: "documentation", IID: "low-byte"}},
		{name: "after 3fff::/20", addr: "3fff:1000::1", want: Class{Valid: true, Type: "native", IID: "low-byte"}},
		{name: "lab documentation reads native", addr: "2001:db8::25", allow: lab,
			want: Class{Valid: true, Allowed: true, Type: "native", IID: "embedded-port"}},
		{name: "benchmarking", addr: "2001:2::1", want: Class{Type: "benchmarking", IID: "low-byte"}},
		{name: "ietf protocol assignment", addr: "2001:5::1", want: Class{Type: "reserved", IID: "low-byte"}},
		{name: "AS112 is global", addr: "2001:4:112::1", want: Class{Valid: true, Type: "native", IID: "low-byte"}},
		{name: "ORCHIDv2 is global", addr: "2001:20::1", want: Class{Valid: true, Type: "native", IID: "low-byte"}},
		{name: "outside 2000::/3", addr: "4000::1", want: Class{Type: "reserved", IID: "low-byte"}},
		{name: "discard-only", addr: "100::1", want: Class{Type: "discard", IID: "low-byte"}},
		{name: "srv6 sids", addr: "5f00::1", want: Class{Type: "reserved", IID: "low-byte"}},
		{name: "v4 global", addr: "8.8.8.8", want: Class{Valid: true, Type: "global"}},
		{name: "v4 private", addr: "10.1.2.3", want: Class{Type: "private"}},
		{name: "v4 lab private", addr: "10.9.2.3", allow: lab, want: Class{Valid: true, Allowed: true, Type: "global"}},
		{name: "v4 shared", addr: "100.64.0.1", want: Class{Type: "shared"}},
		{name: "v4 loopback", addr: "127.0.0.1", want: Class{Type: "loopback"}},
		{name: "v4 link-local", addr: "169.254.1.1", want: Class{Type: "link-local"}},
		{name: "v4 documentation", addr: "203.0.113.9", want: Class{Type: "documentation"}},
		{name: "v4 lab documentation", addr: "192.0.2.9", allow: lab, want: Class{Valid: true, Allowed: true, Type: "global"}},
		{name: "v4 benchmarking", addr: "198.19.255.255", want: Class{Type: "benchmarking"}},
		{name: "v4 after benchmarking", addr: "198.20.0.0", want: Class{Valid: true, Type: "global"}},
		{name: "v4 ietf", addr: "192.0.0.1", want: Class{Type: "reserved"}},
		{name: "v4 pcp anycast is global", addr: "192.0.0.9", want: Class{Valid: true, Type: "global"}},
		{name: "v4 deprecated 6to4 relay", addr: "192.88.99.1", want: Class{Type: "reserved"}},
		{name: "v4 multicast", addr: "224.0.0.1", want: Class{Type: "multicast"}},
		{name: "v4 reserved", addr: "240.0.0.1", want: Class{Type: "reserved"}},
		{name: "v4 broadcast", addr: "255.255.255.255", want: Class{Type: "broadcast"}},
		{name: "v4 this network", addr: "0.1.2.3", want: Class{Type: "this-network"}},
		{name: "zero addr", want: Class{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a netip.Addr
			if tt.addr != "" {
				a = netip.MustParseAddr(tt.addr)
			}
			got := New(nil, tt.allow).Classify(a)
			if diff := cmp.Diff(tt.want, got, addrCmp); diff != "" {
				t.Errorf("Classify(%s) mismatch (-want +got):\n%s", tt.addr, diff)
			}
		})
	}
}

// TestClassifyCustomTable checks that a replacement table is used instead of
// the builtin one, including inside an allowed lab range.
func TestClassifyCustomTable(t *testing.T) {
	const csv = "uid,class,tag,operator,country,prefix,description\n" +
		"U4100,6rd,lab6rd,Lab ISP,GB,2001:db8:6::/48,lab 6rd\n"
	table := mustParse(t, csv)
	c := New(table, []netip.Prefix{netip.MustParsePrefix("2001:db8::/32")})
	tests := []struct {
		name, addr string
		want       Class
	}{
		{"custom entry", "2001:db8:6::1", Class{Valid: true, Allowed: true, PrefixID: "U4100", Type: "6rd", IID: "low-byte"}},
		{"builtin entry gone", "2001:470:dead::2", Class{Valid: true, Type: "native", IID: "low-byte"}},
		{"6to4 from registry", "2002:c000:201::1", Class{Valid: true, Type: "6to4", IID: "low-byte", EmbeddedIPv4: ip("192.0.2.1")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Classify(ip(tt.addr))
			if diff := cmp.Diff(tt.want, got, addrCmp, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Classify(%s) mismatch (-want +got):\n%s", tt.addr, diff)
			}
		})
	}
}

// TestNoIIDForIPv4InIPv6 checks that an IPv4 address written as IPv6 gets no
// interface-identifier class (it was called "randomized").
func TestNoIIDForIPv4InIPv6(t *testing.T) {
	c := New(nil, nil)
	for _, s := range []string{"::ffff:192.0.2.1", "::ffff:8.8.8.8", "::ffff:203.0.113.254"} {
		got := c.Classify(netip.MustParseAddr(s))
		if got.IID != "" || !got.EmbeddedIPv4.IsValid() {
			t.Errorf("%s: IID %q, embedded %v; want no IID and the IPv4 address", s, got.IID, got.EmbeddedIPv4)
		}
	}
}
