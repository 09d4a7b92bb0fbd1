package addrclass

import "net/netip"

// special is one entry of an IANA special-purpose address registry (or of the
// IPv6 addressing architecture, RFC 4291, for ranges the registry leaves out
// such as multicast and site-local).
type special struct {
	prefix netip.Prefix
	// class is the Type reported for addresses in prefix.
	class string
	// global mirrors the registry's "Globally Reachable" column; the
	// transition prefixes whose column says N/A (6to4, Teredo) are true
	// because RECORDS.md counts them valid.
	global bool
}

func sp(prefix, class string, global bool) special {
	return special{prefix: netip.MustParsePrefix(prefix), class: class, global: global}
}

// Class names shared by IPv4 and IPv6.
const (
	TypeNative         = "native"
	TypeGlobal         = "global"
	Type6to4           = "6to4"
	TypeTeredo         = "teredo"
	Type6rd            = "6rd"
	TypeISATAP         = "isatap"
	TypeNAT64          = "nat64"
	TypeIPv4Mapped     = "ipv4-mapped"
	TypeIPv4Compatible = "ipv4-compatible"
	TypeTunnelBroker   = "tunnel-broker"
	TypeULA            = "ula"
	TypeSiteLocal      = "site-local"
	TypeLinkLocal      = "link-local"
	TypeDocumentation  = "documentation"
	TypeBenchmarking   = "benchmarking"
	TypeLoopback       = "loopback"
	TypeMulticast      = "multicast"
	TypeUnspecified    = "unspecified"
	TypeReserved       = "reserved"
	TypeDiscard        = "discard"
	TypePrivate        = "private"
	TypeShared         = "shared"
	TypeThisNetwork    = "this-network"
	TypeBroadcast      = "broadcast"
)

// registry6 encodes the IANA IPv6 Special-Purpose Address Registry
// (iana-ipv6-special-registry, as updated to 2025) plus the architecture
// ranges of RFC 4291 it does not list. Lookups take the most specific match;
// an address of 2000::/3 that matches nothing is global unicast ("native"),
// any other unmatched address is "reserved" by the IETF.
var registry6 = []special{
	sp("::/128", TypeUnspecified, false),
	sp("::1/128", TypeLoopback, false),
	sp("::/96", TypeIPv4Compatible, false), // deprecated, RFC 4291 §2.5.5.1
	sp("::ffff:0:0/96", TypeIPv4Mapped, false),
	sp("64:ff9b::/96", TypeNAT64, true),       // RFC 6052 well-known prefix
	sp("64:ff9b:1::/48", TypeNAT64, false),    // RFC 8215 local-use
	sp("100::/64", TypeDiscard, false),        // RFC 6666
	sp("100:0:0:1::/64", TypeReserved, false), // RFC 9780 dummy prefix
	sp("2001::/23", TypeReserved, false),      // IETF protocol assignments
	sp("2001::/32", TypeTeredo, true),         // RFC 4380
	sp("2001:1::1/128", TypeNative, true),     // PCP anycast
	sp("2001:1::2/128", TypeNative, true),     // TURN anycast
	sp("2001:1::3/128", TypeNative, true),     // DNS-SD SRP anycast
	sp("2001:2::/48", TypeBenchmarking, false),
	sp("2001:3::/32", TypeNative, true),     // AMT
	sp("2001:4:112::/48", TypeNative, true), // AS112-v6
	sp("2001:10::/28", TypeReserved, false), // deprecated ORCHID
	sp("2001:20::/28", TypeNative, true),    // ORCHIDv2
	sp("2001:30::/28", TypeNative, true),    // drone remote ID DETs
	sp("2001:db8::/32", TypeDocumentation, false),
	sp("2002::/16", Type6to4, true),           // RFC 3056
	sp("2620:4f:8000::/48", TypeNative, true), // AS112 direct delegation
	sp("3fff::/20", TypeDocumentation, false), // RFC 9637
	sp("3ffe::/16", TypeReserved, false),      // 6bone, returned (RFC 3701)
	// Pre-RFC 4380 Teredo (Windows XP); the 6bone no longer routes it.
	sp("3ffe:831f::/32", TypeTeredo, false),
	sp("5f00::/16", TypeReserved, false), // SRv6 SIDs, RFC 9602
	sp("fc00::/7", TypeULA, false),
	sp("fe80::/10", TypeLinkLocal, false),
	sp("fec0::/10", TypeSiteLocal, false), // deprecated, RFC 3879
	sp("ff00::/8", TypeMulticast, false),
}

// registry4 encodes the IANA IPv4 Special-Purpose Address Registry plus
// multicast (RFC 5771), which that registry does not list. Unmatched
// addresses are "global".
var registry4 = []special{
	sp("0.0.0.0/8", TypeThisNetwork, false),
	sp("10.0.0.0/8", TypePrivate, false),
	sp("100.64.0.0/10", TypeShared, false),
	sp("127.0.0.0/8", TypeLoopback, false),
	sp("169.254.0.0/16", TypeLinkLocal, false),
	sp("172.16.0.0/12", TypePrivate, false),
	sp("192.0.0.0/24", TypeReserved, false), // IETF protocol assignments
	sp("192.0.0.9/32", TypeGlobal, true),    // PCP anycast
	sp("192.0.0.10/32", TypeGlobal, true),   // TURN anycast
	sp("192.0.2.0/24", TypeDocumentation, false),
	sp("192.31.196.0/24", TypeGlobal, true),   // AS112-v4
	sp("192.52.193.0/24", TypeGlobal, true),   // AMT
	sp("192.88.99.0/24", TypeReserved, false), // 6to4 relay anycast, deprecated by RFC 7526
	sp("192.168.0.0/16", TypePrivate, false),
	sp("192.175.48.0/24", TypeGlobal, true), // AS112 direct delegation
	sp("198.18.0.0/15", TypeBenchmarking, false),
	sp("198.51.100.0/24", TypeDocumentation, false),
	sp("203.0.113.0/24", TypeDocumentation, false),
	sp("224.0.0.0/4", TypeMulticast, false),
	sp("240.0.0.0/4", TypeReserved, false),
	sp("255.255.255.255/32", TypeBroadcast, false),
}

// globalUnicast6 is the IPv6 global unicast space (RFC 4291).
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// lookupSpecial returns the most specific entry of reg containing a.
func lookupSpecial(reg []special, a netip.Addr) (special, bool) {
	var best special
	found := false
	for _, s := range reg {
		if s.prefix.Contains(a) && (!found || s.prefix.Bits() > best.prefix.Bits()) {
			best, found = s, true
		}
	}
	return best, found
}

// labOverridable lists the classes an allowed (lab) range turns into plain
// global unicast: a lab simulates the Internet with documentation, private or
// reserved space, and its addresses should classify like the real thing.
var labOverridable = map[string]bool{
	TypeDocumentation: true,
	TypeBenchmarking:  true,
	TypeReserved:      true,
	TypeULA:           true,
	TypeSiteLocal:     true,
	TypePrivate:       true,
	TypeShared:        true,
}
