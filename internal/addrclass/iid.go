package addrclass

import "net/netip"

// Interface-identifier classes of RFC 7707 §4.1.1, named as ipv6toolkit's
// addr6 names them (its "ieee-derived" is our "eui64", its "byte-pattern"
// our "pattern", and its embedded-ipv4-32/-64 and embedded-port/-rev
// variants are folded into one class each).
const (
	IIDEUI64        = "eui64"
	IIDISATAP       = "isatap"
	IIDEmbeddedIPv4 = "embedded-ipv4"
	IIDEmbeddedPort = "embedded-port"
	IIDLowByte      = "low-byte"
	IIDPattern      = "pattern"
	IIDRandomized   = "randomized"
)

// servicePorts are the well-known ports addr6 looks for in an interface id,
// written either in decimal (::80 read as 0x80) or in hex (::50).
var servicePorts = func() map[uint16]bool {
	m := map[uint16]bool{}
	for _, p := range []uint16{21, 22, 23, 25, 49, 53, 80, 110, 123, 179, 220, 389,
		443, 547, 993, 995, 1194, 3306, 5060, 5061, 5432, 6446, 8080} {
		m[p] = true
		m[decimalAsHex(p)] = true
	}
	return m
}()

// decimalAsHex returns the number whose hex digits spell p in decimal, e.g.
// 443 -> 0x443: how people write ports into addresses (2001:db8::443).
func decimalAsHex(p uint16) uint16 {
	var v, shift uint16
	for ; p > 0; p /= 10 {
		v |= (p % 10) << shift
		shift += 4
	}
	return v
}

// classifyIID returns the class of the low 64 bits of a (an IPv6 address).
// The tests are applied in this order, the first that matches wins:
//   - eui64: the u bit set and ff:fe in the middle (modified EUI-64, RFC 4291);
//   - isatap: 0000:5efe or 0200:5efe followed by an IPv4 address (RFC 5214);
//   - the upper 32 bits zero and then: an IPv4 address (first byte non-zero,
//     last 16 bits non-zero), a service port in the last or the third 16-bit
//     word, or just a low value ("low-byte");
//   - every 16-bit word at most 0x255: an IPv4 address written one byte per
//     word (2001:db8::192:0:2:1);
//   - more than two zero bytes: a "pattern" (manually assigned);
//   - otherwise "randomized" (RFC 4941, RFC 7217 and the like).
func classifyIID(a netip.Addr) string {
	b := a.As16()
	w := func(i int) uint16 { return uint16(b[i])<<8 | uint16(b[i+1]) }
	switch {
	case b[8]&0x02 != 0 && b[11] == 0xff && b[12] == 0xfe:
		return IIDEUI64
	case b[8]&0xfd == 0 && b[9] == 0 && b[10] == 0x5e && b[11] == 0xfe:
		return IIDISATAP
	}
	if b[8]|b[9]|b[10]|b[11] == 0 {
		switch {
		case b[12] != 0 && w(14) != 0:
			return IIDEmbeddedIPv4
		case b[12] == 0 && servicePorts[w(14)]:
			return IIDEmbeddedPort
		case b[14] == 0 && servicePorts[w(12)]:
			return IIDEmbeddedPort
		case b[12] == 0 && w(14) != 0:
			return IIDLowByte
		}
	}
	if w(8) <= 0x255 && w(10) <= 0x255 && w(12) <= 0x255 && w(14) <= 0x255 {
		return IIDEmbeddedIPv4
	}
	zeros := 0
	for _, x := range b[8:] {
		if x == 0 {
			zeros++
		}
	}
	if zeros > 2 {
		return IIDPattern
	}
	return IIDRandomized
}
