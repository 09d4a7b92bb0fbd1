package addrclass

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// addr6Types maps addr6's unicast subtype (field 2 of `addr6 -d`) to our
// Type. addr6's "global" is generic: it covers our native, 6rd, nat64,
// tunnel-broker, isatap, documentation, reserved... and also Teredo, because
// ipv6toolkit 2.0's IN6_IS_ADDR_TEREDO tests 2002::/32 instead of 2001::/32,
// so it only recognises the legacy 3ffe:831f::/32 Teredo prefix.
var addr6Types = map[string]string{
	"loopback":        TypeLoopback,
	"ipv4-mapped":     TypeIPv4Mapped,
	"ipv4-compatible": TypeIPv4Compatible,
	"link-local":      TypeLinkLocal,
	"site-local":      TypeSiteLocal,
	"unique-local":    TypeULA,
	"6to4":            Type6to4,
	"teredo":          TypeTeredo,
}

// addr6IIDs maps addr6's interface-id type (field 4) to our IID class. Its
// other values (unspecified, rfc4380, rfc5991, unknown) name no class.
var addr6IIDs = map[string]string{
	"ieee-derived":      IIDEUI64,
	"isatap":            IIDISATAP,
	"embedded-ipv4":     IIDEmbeddedIPv4,
	"embedded-port":     IIDEmbeddedPort,
	"embedded-port-rev": IIDEmbeddedPort,
	"low-byte":          IIDLowByte,
	"pattern-bytes":     IIDPattern,
	"randomized":        IIDRandomized,
}

// corpus returns at least 200 IPv6 addresses covering every class and IID
// class, deterministically (fixed seed).
func corpus() []netip.Addr {
	r := rand.New(rand.NewPCG(6, 4))
	nets := []string{
		"2a00:1450:4001:81c", "2001:db8:1:2", "2002:c000:201:0", "2002:cb00:7101:1",
		"2001:0:4136:e378", "3ffe:831f:4136:e378", "2a01:e30:1234:5600", "2a01:e3f:0:1",
		"2602:304:abcd:1200", "2602:12:34:56", "2001:470:1f0a:1", "2001:470:dead:0",
		"fd12:3456:789a:1", "fc00:0:0:0", "fe80:0:0:0", "fec0:0:0:1", "2001:2:0:1",
		"3fff:0:0:1", "100:0:0:0", "5f00:0:0:1", "4000:0:0:0", "2620:4f:8000:0",
		"2001:4:112:0", "2001:20:0:0", "64:ff9b:1:0", "2001:5:0:0",
	}
	iids := []func() string{
		func() string { return "::1" },
		func() string { return "::2:3" },
		func() string { return "::443" },
		func() string { return "::25" },
		func() string { return "::50" },
		func() string { return "::25:1" },
		func() string { return "::c000:201" },
		func() string { return "::192:0:2:1" },
		func() string { return "::200:5efe:c000:201" },
		func() string { return "::5efe:a00:1" },
		func() string { return "::1111:0:0:1" },
		func() string { return "::" },
		func() string { // modified EUI-64
			return netip.AddrFrom16([16]byte{8: byte(r.IntN(256)) | 2, 9: byte(r.IntN(256)), 10: byte(r.IntN(256)),
				11: 0xff, 12: 0xfe, 13: byte(r.IntN(256)), 14: byte(r.IntN(256)), 15: byte(r.IntN(256))}).String()
		},
		func() string { // random
			var b [16]byte
			for i := 8; i < 16; i++ {
				b[i] = byte(r.IntN(256))
			}
			return netip.AddrFrom16(b).String()
		},
	}
	var out []netip.Addr
	for _, n := range nets {
		pfx := netip.MustParseAddr(n + "::").As16()
		for _, f := range iids {
			low := netip.MustParseAddr(f()).As16()
			b := pfx
			copy(b[8:], low[8:])
			out = append(out, netip.AddrFrom16(b))
		}
	}
	for _, s := range []string{
		"::", "::1", "::2", "::ffff:0:0", "::ffff:192.0.2.1", "::ffff:1.2.3.4", "::1.2.3.4",
		"::198.51.100.7", "64:ff9b::c000:201", "64:ff9b::808:808", "ff02::1", "ff05::2",
		"ff0e::101", "ff3e::1", "ff7e:1234::1", "ff12::1:ff00:1", "2001:db8::",
		"2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:53aa:64c:0:0:0:1",
	} {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

// TestAgreesWithAddr6 compares our classes with ipv6toolkit's `addr6 -d`
// wherever both name a class (see addr6Types and addr6IIDs).
func TestAgreesWithAddr6(t *testing.T) {
	bin, err := exec.LookPath("addr6")
	if err != nil {
		t.Skip("addr6 not installed (Debian package ipv6toolkit); skipping the comparison")
	}
	addrs := corpus()
	if len(addrs) < 200 {
		t.Fatalf("corpus has %d addresses, want >= 200", len(addrs))
	}
	var in bytes.Buffer
	for _, a := range addrs {
		in.WriteString(a.String() + "\n")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-i", "-d")
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("addr6 -i -d: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(addrs) {
		t.Fatalf("addr6 printed %d lines for %d addresses", len(lines), len(addrs))
	}
	c := New(nil, nil)
	seenTypes, seenIIDs := map[string]bool{}, map[string]bool{}
	for i, a := range addrs {
		f := strings.Split(lines[i], "=")
		if len(f) != 5 {
			t.Fatalf("addr6 line %q: want 5 '='-separated fields", lines[i])
		}
		got := c.Classify(a)
		seenTypes[got.Type], seenIIDs[got.IID] = true, true
		t.Run(a.String(), func(t *testing.T) {
			checkAgainstAddr6(t, got, f)
		})
	}
	for _, want := range []string{"native", "6to4", "teredo", "6rd", "isatap", "nat64", "ipv4-mapped",
		"ipv4-compatible", "tunnel-broker", "ula", "site-local", "link-local", "documentation",
		"benchmarking", "discard", "loopback", "multicast", "unspecified", "reserved"} {
		if !seenTypes[want] {
			t.Errorf("corpus has no address of type %s", want)
		}
	}
	for _, want := range addr6IIDs {
		if !seenIIDs[want] {
			t.Errorf("corpus has no address with IID class %s", want)
		}
	}
}

func checkAgainstAddr6(t *testing.T, got Class, f []string) {
	t.Helper()
	kind, sub, iid := f[0], f[1], f[3]
	switch kind {
	case "unspecified", "multicast":
		if got.Type != kind {
			t.Errorf("type %q, addr6 says %q", got.Type, kind)
		}
		return
	case "unicast":
	default:
		t.Fatalf("unknown addr6 kind %q", kind)
	}
	if want, named := addr6Types[sub]; named {
		if got.Type != want {
			t.Errorf("type %q, addr6 says %q (= our %q)", got.Type, sub, want)
		}
	} else if sub == "global" {
		for a6, ours := range addr6Types {
			if got.Type == ours && ours != TypeTeredo {
				t.Errorf("type %q, addr6 says global, not %q", got.Type, a6)
			}
		}
		if got.Type == TypeMulticast || got.Type == TypeUnspecified {
			t.Errorf("type %q, addr6 says unicast global", got.Type)
		}
	} else {
		t.Fatalf("unknown addr6 unicast subtype %q", sub)
	}
	if want, named := addr6IIDs[iid]; named && got.IID != "" && got.IID != want {
		t.Errorf("iid %q, addr6 says %q (= our %q)", got.IID, iid, want)
	}
}
