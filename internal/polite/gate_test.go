package polite_test

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/polite"
)

func prefixes(ss ...string) []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range ss {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}

func TestGate(t *testing.T) {
	type verdict struct {
		OK     bool
		Reason string
	}
	refused := func(r string) verdict { return verdict{false, r} }
	global := verdict{true, ""}
	tests := []struct {
		name          string
		allow, optOut []netip.Prefix
		addr          string
		want          verdict
	}{
		{name: "global IPv4", addr: "8.8.8.8", want: global},
		{name: "global IPv6", addr: "2606:4700:4700::1111", want: global},
		{name: "loopback v4", addr: "127.0.0.1", want: refused("special-purpose: loopback 127.0.0.0/8 (RFC 1122)")},
		{name: "loopback v6", addr: "::1", want: refused("special-purpose: loopback address ::1/128 (RFC 4291)")},
		{name: "unspecified v4", addr: "0.0.0.0", want: refused("special-purpose: this network 0.0.0.0/8 (RFC 791)")},
		{name: "unspecified v6", addr: "::", want: refused("special-purpose: unspecified address ::/128 (RFC 4291)")},
		{name: "private 10", addr: "10.1.2.3", want: refused("special-purpose: private use 10.0.0.0/8 (RFC 1918)")},
		{name: "private 172", addr: "172.31.255.255", want: refused("special-purpose: private use 172.16.0.0/12 (RFC 1918)")},
		{name: "private 192.168", addr: "192.168.1.1", want: refused("special-purpose: private use 192.168.0.0/16 (RFC 1918)")},
		{name: "just outside 172.16/12", addr: "172.32.0.1", want: global},
		{name: "shared address space", addr: "100.64.0.1", want: refused("special-purpose: shared address space 100.64.0.0/10 (RFC 6598)")},
		{name: "link local v4", addr: "169.254.1.1", want: refused("special-purpose: link local 169.254.0.0/16 (RFC 3927)")},
		{name: "link local v6", addr: "fe80::1", want: refused("special-purpose: link-local unicast fe80::/10 (RFC 4291)")},
		{name: "link local v6 with zone", addr: "fe80::1%eth0", want: refused("special-purpose: link-local unicast fe80::/10 (RFC 4291)")},
		{name: "multicast v4", addr: "224.0.0.251", want: refused("special-purpose: multicast 224.0.0.0/4 (RFC 5771)")},
		{name: "multicast v6", addr: "ff02::1", want: refused("special-purpose: multicast ff00::/8 (RFC 4291)")},
		{name: "documentation v4", addr: "198.51.100.7", want: refused("special-purpose: documentation (TEST-NET-2) 198.51.100.0/24 (RFC 5737)")},
		{name: "documentation v6", addr: "2001:db8::1", want: refused("special-purpose: documentation 2001:db8::/32 (RFC 3849)")},
		{name: "documentation 3fff", addr: "3fff:1::1", want: refused("special-purpose: documentation 3fff::/20 (RFC 9637)")},
		{name: "benchmarking v4", addr: "198.19.0.1", want: refused("special-purpose: benchmarking 198.18.0.0/15 (RFC 2544)")},
		{name: "benchmarking v6", addr: "2001:2::1", want: refused("special-purpose: benchmarking 2001:2::/48 (RFC 5180)")},
		{name: "ULA", addr: "fd12:3456::1", want: refused("special-purpose: unique local fc00::/7 (RFC 4193)")},
		{name: "site-local", addr: "fec0::1", want: refused("special-purpose: deprecated site-local fec0::/10 (RFC 3879)")},
		{name: "IPv4-mapped", addr: "::ffff:8.8.8.8", want: refused("special-purpose: IPv4-mapped address ::ffff:0:0/96 (RFC 4291)")},
		{name: "reserved 240/4", addr: "250.1.1.1", want: refused("special-purpose: reserved 240.0.0.0/4 (RFC 1112)")},
		{name: "broadcast", addr: "255.255.255.255", want: refused("special-purpose: limited broadcast 255.255.255.255/32 (RFC 919)")},
		{name: "IETF block", addr: "192.0.0.100", want: refused("special-purpose: IETF protocol assignments 192.0.0.0/24 (RFC 6890)")},
		{name: "global exception in IETF block", addr: "192.0.0.9", want: global},
		{name: "NAT64 discovery", addr: "192.0.0.171", want: refused("special-purpose: NAT64/DNS64 discovery 192.0.0.170/31 (RFC 7050)")},
		{name: "AS112 anycast", addr: "192.175.48.1", want: global},
		{name: "discard-only", addr: "100::1", want: refused("special-purpose: discard-only address block 100::/64 (RFC 6666)")},
		{name: "SRv6 SIDs", addr: "5f00::1", want: refused("special-purpose: segment routing SIDs 5f00::/16 (RFC 9602)")},
		{name: "IETF v6 block", addr: "2001:100::1", want: refused("special-purpose: IETF protocol assignments 2001::/23 (RFC 2928)")},
		{name: "AMT v6", addr: "2001:3::1", want: global},
		{name: "outside 2000::/3", addr: "4000::1", want: refused("outside the IPv6 global unicast space 2000::/3")},
		{name: "6to4 of a global address", addr: "2002:808:808::1", want: global},
		{name: "6to4 of loopback", addr: "2002:7f00:1::1", want: refused("6to4 address embeds 127.0.0.1: special-purpose: loopback 127.0.0.0/8 (RFC 1122)")},
		{name: "Teredo of a global client", addr: "2001:0:4136:e378:8000:63bf:f7f7:f7f7", want: global},
		{name: "Teredo of a documentation client (RFC 4380 example)", addr: "2001:0:4136:e378:8000:63bf:3fff:fdd2",
			want: refused("Teredo address embeds 192.0.2.45: special-purpose: documentation (TEST-NET-1) 192.0.2.0/24 (RFC 5737)")},
		{name: "Teredo of an allowed documentation client (a lab)", allow: prefixes("192.0.2.0/24"), addr: "2001:0:4136:e378:8000:63bf:3fff:fdd2", want: global},
		{name: "6to4 of an allowed documentation address (a lab)", allow: prefixes("198.51.100.0/24"), addr: "2002:c633:6450::1", want: global},
		{name: "6to4 of an allowed but opted-out address", allow: prefixes("198.51.100.0/24"), optOut: prefixes("198.51.100.80/32"), addr: "2002:c633:6450::1",
			want: refused("6to4 address embeds 198.51.100.80: opted out (198.51.100.80/32)")},
		{name: "NAT64 of a global address", addr: "64:ff9b::808:808", want: global},
		{name: "NAT64 of a private address", addr: "64:ff9b::a00:1", want: refused("NAT64 address embeds 10.0.0.1: special-purpose: private use 10.0.0.0/8 (RFC 1918)")},
		{name: "allowed loopback", allow: prefixes("127.0.0.0/8", "::1/128"), addr: "127.0.0.53", want: verdict{true, "in --allow-ranges 127.0.0.0/8"}},
		{name: "allowed v6 loopback", allow: prefixes("127.0.0.0/8", "::1/128"), addr: "::1", want: verdict{true, "in --allow-ranges ::1/128"}},
		{name: "allow range is masked", allow: prefixes("fd00:1:2:3::99/64"), addr: "fd00:1:2:3::1", want: verdict{true, "in --allow-ranges fd00:1:2:3::/64"}},
		{name: "allow does not cover mapped form", allow: prefixes("127.0.0.0/8"), addr: "::ffff:127.0.0.1", want: refused("special-purpose: IPv4-mapped address ::ffff:0:0/96 (RFC 4291)")},
		{name: "opt-out wins over allow", allow: prefixes("127.0.0.0/8"), optOut: prefixes("127.0.0.0/24"), addr: "127.0.0.1", want: refused("opted out (127.0.0.0/24)")},
		{name: "opt-out of a global network", optOut: prefixes("8.8.8.0/24"), addr: "8.8.8.8", want: refused("opted out (8.8.8.0/24)")},
		{name: "opt-out covers the mapped form", optOut: prefixes("8.8.8.0/24"), addr: "::ffff:8.8.8.8", want: refused("opted out (8.8.8.0/24)")},
		{name: "opt-out covers the 6to4 form", optOut: prefixes("8.8.8.0/24"), addr: "2002:808:808::1", want: refused("6to4 address embeds 8.8.8.8: opted out (8.8.8.0/24)")},
		{name: "longest opt-out is reported", optOut: prefixes("2600::/12", "2606:4700::/32"), addr: "2606:4700::1", want: refused("opted out (2606:4700::/32)")},
		{name: "neighbour of opt-out", optOut: prefixes("2606:4700::/32"), addr: "2606:4701::1", want: global},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := polite.NewGate(tc.allow, tc.optOut)
			if err != nil {
				t.Fatalf("NewGate: %v", err)
			}
			ok, reason := g.Allowed(netip.MustParseAddr(tc.addr))
			if diff := cmp.Diff(tc.want, verdict{ok, reason}); diff != "" {
				t.Errorf("Allowed(%s) (-want +got):\n%s", tc.addr, diff)
			}
		})
	}
}

func TestGateInvalid(t *testing.T) {
	g, err := polite.NewGate(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ok, reason := g.Allowed(netip.Addr{}); ok || reason != "invalid address" {
		t.Errorf("Allowed(zero Addr) = %v, %q", ok, reason)
	}
	tests := []struct {
		name          string
		allow, optOut []netip.Prefix
		want          string
	}{
		{"bad allow", []netip.Prefix{{}}, nil, "polite: allow range 0 (invalid Prefix) is not a valid prefix"},
		{"bad opt-out", nil, append(prefixes("192.0.2.0/24"), netip.Prefix{}), "polite: opt-out range 1 (invalid Prefix) is not a valid prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := polite.NewGate(tc.allow, tc.optOut)
			if err == nil || err.Error() != tc.want {
				t.Errorf("NewGate = %v, want %q", err, tc.want)
			}
		})
	}
}

func BenchmarkGateAllowed(b *testing.B) {
	var optOut []netip.Prefix
	for i := range 10000 {
		optOut = append(optOut, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(i >> 8), byte(i), 0, 0}), 16+i%9))
	}
	g, err := polite.NewGate(prefixes("127.0.0.0/8"), optOut)
	if err != nil {
		b.Fatal(err)
	}
	addrs := []netip.Addr{netip.MustParseAddr("8.8.8.8"), netip.MustParseAddr("2606:4700::1"), netip.MustParseAddr("2002:808:808::1")}
	for i := 0; b.Loop(); i++ {
		g.Allowed(addrs[i%len(addrs)])
	}
}
