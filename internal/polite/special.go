package polite

// specialRange is one row of the IANA special-purpose address registries
// (https://www.iana.org/assignments/iana-ipv4-special-registry and
// iana-ipv6-special-registry), plus multicast and the deprecated blocks
// that are not in them. Global is the registry's "Globally Reachable"
// column; "N/A" (deprecated blocks) counts as false, except that 6to4 and
// Teredo stay allowed because real hosts still publish such addresses.
type specialRange struct {
	prefix string
	name   string
	ref    string
	global bool
}

// specialRanges returns the table; a more specific row overrides a wider
// one (192.0.0.9/32 inside 192.0.0.0/24).
func specialRanges() []specialRange {
	return []specialRange{
		// IPv4 special-purpose registry.
		{"0.0.0.0/8", "this network", "RFC 791", false},
		{"10.0.0.0/8", "private use", "RFC 1918", false},
		{"100.64.0.0/10", "shared address space", "RFC 6598", false},
		{"127.0.0.0/8", "loopback", "RFC 1122", false},
		{"169.254.0.0/16", "link local", "RFC 3927", false},
		{"172.16.0.0/12", "private use", "RFC 1918", false},
		{"192.0.0.0/24", "IETF protocol assignments", "RFC 6890", false},
		{"192.0.0.0/29", "IPv4 service continuity prefix", "RFC 7335", false},
		{"192.0.0.8/32", "IPv4 dummy address", "RFC 7600", false},
		{"192.0.0.9/32", "port control protocol anycast", "RFC 7723", true},
		{"192.0.0.10/32", "TURN anycast", "RFC 8155", true},
		{"192.0.0.170/31", "NAT64/DNS64 discovery", "RFC 7050", false},
		{"192.0.2.0/24", "documentation (TEST-NET-1)", "RFC 5737", false},
		{"192.31.196.0/24", "AS112-v4", "RFC 7535", true},
		{"192.52.193.0/24", "AMT", "RFC 7450", true},
		{"192.88.99.0/24", "deprecated 6to4 relay anycast", "RFC 7526", false},
		{"192.168.0.0/16", "private use", "RFC 1918", false},
		{"192.175.48.0/24", "direct delegation AS112 service", "RFC 7534", true},
		{"198.18.0.0/15", "benchmarking", "RFC 2544", false},
		{"198.51.100.0/24", "documentation (TEST-NET-2)", "RFC 5737", false},
		{"203.0.113.0/24", "documentation (TEST-NET-3)", "RFC 5737", false},
		{"240.0.0.0/4", "reserved", "RFC 1112", false},
		{"255.255.255.255/32", "limited broadcast", "RFC 919", false},
		// IPv4 multicast address space registry.
		{"224.0.0.0/4", "multicast", "RFC 5771", false},

		// IPv6 special-purpose registry.
		{"::/128", "unspecified address", "RFC 4291", false},
		{"::1/128", "loopback address", "RFC 4291", false},
		{"::ffff:0:0/96", "IPv4-mapped address", "RFC 4291", false},
		{"64:ff9b::/96", "IPv4-IPv6 translation", "RFC 6052", true},
		{"64:ff9b:1::/48", "local-use IPv4/IPv6 translation", "RFC 8215", false},
		{"100::/64", "discard-only address block", "RFC 6666", false},
		{"100:0:0:1::/64", "dummy IPv6 prefix", "RFC 9780", false},
		{"2001::/23", "IETF protocol assignments", "RFC 2928", false},
		{"2001::/32", "Teredo", "RFC 4380", true},
		{"2001:1::1/128", "port control protocol anycast", "RFC 7723", true},
		{"2001:1::2/128", "TURN anycast", "RFC 8155", true},
		{"2001:1::3/128", "DNS-SD service registration protocol anycast", "RFC 9665", true},
		{"2001:2::/48", "benchmarking", "RFC 5180", false},
		{"2001:3::/32", "AMT", "RFC 7450", true},
		{"2001:4:112::/48", "AS112-v6", "RFC 7535", true},
		{"2001:10::/28", "deprecated ORCHID", "RFC 4843", false},
		{"2001:20::/28", "ORCHIDv2", "RFC 7343", true},
		{"2001:30::/28", "drone remote ID entity tags", "RFC 9374", true},
		{"2001:db8::/32", "documentation", "RFC 3849", false},
		{"2002::/16", "6to4", "RFC 3056", true},
		{"2620:4f:8000::/48", "direct delegation AS112 service", "RFC 7534", true},
		{"3fff::/20", "documentation", "RFC 9637", false},
		{"5f00::/16", "segment routing SIDs", "RFC 9602", false},
		{"fc00::/7", "unique local", "RFC 4193", false},
		{"fe80::/10", "link-local unicast", "RFC 4291", false},
		// IPv6 address space registry: deprecated and multicast blocks.
		{"fec0::/10", "deprecated site-local", "RFC 3879", false},
		{"ff00::/8", "multicast", "RFC 4291", false},
	}
}
