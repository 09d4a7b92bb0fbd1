package addrclass

import "net/netip"

// special is one entry of an IANA special-purpose address registry (or of the
// IPv6 addressing architecture, RFC 4291, for ranges the registry leaves out
// such as multicast and site-local). It is the project's one copy of those
// registries: the classifier reads class and global, the probe gate (package
// polite) reports name and ref when it refuses an address.
type special struct {
	prefix netip.Prefix
	// class is the Type reported for addresses in prefix.
	class string
	// global mirrors the registry's "Globally Reachable" column; the
	// transition prefixes whose column says N/A (6to4, Teredo) are true
	// because RECORDS.md counts them valid.
	global bool
	// name and ref are the registry's name of the block and its RFC; text is the
	// prefix as the registry writes it (::ffff:0:0/96, not ::ffff:0.0.0.0/96).
	name, ref, text string
}

func sp(prefix, class string, global bool, name, ref string) special {
	return special{prefix: netip.MustParsePrefix(prefix), class: class, global: global, name: name, ref: ref, text: prefix}
}

// Special is a row of the IANA special-purpose registries as LookupSpecial
// returns it.
type Special struct {
	Prefix netip.Prefix
	// Block is Prefix as the registry writes it, e.g. "::ffff:0:0/96".
	Block     string
	Name, Ref string // e.g. "documentation (TEST-NET-1)", "RFC 5737"
	// Global is the registry's "Globally Reachable" (6to4 and Teredo: true).
	Global bool
}

// LookupSpecial returns the most specific special-purpose block holding a
// (IPv4 and IPv6 registries, plus IPv6 multicast and the deprecated blocks),
// or false when a is in none of them.
func LookupSpecial(a netip.Addr) (Special, bool) {
	reg := registry6
	if a.Is4() {
		reg = registry4
	}
	s, ok := lookupSpecial(reg, a)
	return Special{Prefix: s.prefix, Block: s.text, Name: s.name, Ref: s.ref, Global: s.global}, ok
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
	sp("::/128", TypeUnspecified, false, "unspecified address", "RFC 4291"),
	sp("::1/128", TypeLoopback, false, "loopback address", "RFC 4291"),
	sp("::/96", TypeIPv4Compatible, false, "deprecated IPv4-compatible address", "RFC 4291"),
	sp("::ffff:0:0/96", TypeIPv4Mapped, false, "IPv4-mapped address", "RFC 4291"),
	sp("64:ff9b::/96", TypeNAT64, true, "IPv4-IPv6 translation", "RFC 6052"),
	sp("64:ff9b:1::/48", TypeNAT64, false, "local-use IPv4/IPv6 translation", "RFC 8215"),
	sp("100::/64", TypeDiscard, false, "discard-only address block", "RFC 6666"),
	sp("100:0:0:1::/64", TypeReserved, false, "dummy IPv6 prefix", "RFC 9780"),
	sp("2001::/23", TypeReserved, false, "IETF protocol assignments", "RFC 2928"),
	sp("2001::/32", TypeTeredo, true, "Teredo", "RFC 4380"),
	sp("2001:1::1/128", TypeNative, true, "port control protocol anycast", "RFC 7723"),
	sp("2001:1::2/128", TypeNative, true, "TURN anycast", "RFC 8155"),
	sp("2001:1::3/128", TypeNative, true, "DNS-SD service registration protocol anycast", "RFC 9665"),
	sp("2001:2::/48", TypeBenchmarking, false, "benchmarking", "RFC 5180"),
	sp("2001:3::/32", TypeNative, true, "AMT", "RFC 7450"),
	sp("2001:4:112::/48", TypeNative, true, "AS112-v6", "RFC 7535"),
	sp("2001:10::/28", TypeReserved, false, "deprecated ORCHID", "RFC 4843"),
	sp("2001:20::/28", TypeNative, true, "ORCHIDv2", "RFC 7343"),
	sp("2001:30::/28", TypeNative, true, "drone remote ID entity tags", "RFC 9374"),
	sp("2001:db8::/32", TypeDocumentation, false, "documentation", "RFC 3849"),
	sp("2002::/16", Type6to4, true, "6to4", "RFC 3056"),
	sp("2620:4f:8000::/48", TypeNative, true, "direct delegation AS112 service", "RFC 7534"),
	sp("3fff::/20", TypeDocumentation, false, "documentation", "RFC 9637"),
	sp("3ffe::/16", TypeReserved, false, "6bone, returned", "RFC 3701"),
	// Pre-RFC 4380 Teredo (Windows XP); the 6bone no longer routes it.
	sp("3ffe:831f::/32", TypeTeredo, false, "pre-standard Teredo", "RFC 4380"),
	sp("5f00::/16", TypeReserved, false, "segment routing SIDs", "RFC 9602"),
	sp("fc00::/7", TypeULA, false, "unique local", "RFC 4193"),
	sp("fe80::/10", TypeLinkLocal, false, "link-local unicast", "RFC 4291"),
	sp("fec0::/10", TypeSiteLocal, false, "deprecated site-local", "RFC 3879"),
	sp("ff00::/8", TypeMulticast, false, "multicast", "RFC 4291"),
}

// registry4 encodes the IANA IPv4 Special-Purpose Address Registry plus
// multicast (RFC 5771), which that registry does not list. Unmatched
// addresses are "global".
var registry4 = []special{
	sp("0.0.0.0/8", TypeThisNetwork, false, "this network", "RFC 791"),
	sp("10.0.0.0/8", TypePrivate, false, "private use", "RFC 1918"),
	sp("100.64.0.0/10", TypeShared, false, "shared address space", "RFC 6598"),
	sp("127.0.0.0/8", TypeLoopback, false, "loopback", "RFC 1122"),
	sp("169.254.0.0/16", TypeLinkLocal, false, "link local", "RFC 3927"),
	sp("172.16.0.0/12", TypePrivate, false, "private use", "RFC 1918"),
	sp("192.0.0.0/24", TypeReserved, false, "IETF protocol assignments", "RFC 6890"),
	sp("192.0.0.0/29", TypeReserved, false, "IPv4 service continuity prefix", "RFC 7335"),
	sp("192.0.0.8/32", TypeReserved, false, "IPv4 dummy address", "RFC 7600"),
	sp("192.0.0.9/32", TypeGlobal, true, "port control protocol anycast", "RFC 7723"),
	sp("192.0.0.10/32", TypeGlobal, true, "TURN anycast", "RFC 8155"),
	sp("192.0.0.170/31", TypeReserved, false, "NAT64/DNS64 discovery", "RFC 7050"),
	sp("192.0.2.0/24", TypeDocumentation, false, "documentation (TEST-NET-1)", "RFC 5737"),
	sp("192.31.196.0/24", TypeGlobal, true, "AS112-v4", "RFC 7535"),
	sp("192.52.193.0/24", TypeGlobal, true, "AMT", "RFC 7450"),
	sp("192.88.99.0/24", TypeReserved, false, "deprecated 6to4 relay anycast", "RFC 7526"),
	sp("192.168.0.0/16", TypePrivate, false, "private use", "RFC 1918"),
	sp("192.175.48.0/24", TypeGlobal, true, "direct delegation AS112 service", "RFC 7534"),
	sp("198.18.0.0/15", TypeBenchmarking, false, "benchmarking", "RFC 2544"),
	sp("198.51.100.0/24", TypeDocumentation, false, "documentation (TEST-NET-2)", "RFC 5737"),
	sp("203.0.113.0/24", TypeDocumentation, false, "documentation (TEST-NET-3)", "RFC 5737"),
	sp("224.0.0.0/4", TypeMulticast, false, "multicast", "RFC 5771"),
	sp("240.0.0.0/4", TypeReserved, false, "reserved", "RFC 1112"),
	sp("255.255.255.255/32", TypeBroadcast, false, "limited broadcast", "RFC 919"),
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
