// Package probe holds what the per-address probes share: the IPv4/IPv6 choice (one helper,
// so that every probe dials the address, never a name) and the crawler's identification
// (HTTP User-Agent, SMTP EHLO name). Each measurement family lives in its own subpackage:
// ping, tcpport, tlsprobe, ptr, dns53 and ntpprobe.
package probe

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
)

// Network returns the family-specific network name for base ("tcp", "udp", "ip") and addr:
// "tcp4" for an IPv4 address, "tcp6" for an IPv6 one. IPv4-mapped IPv6 addresses count as
// IPv6: the address is dialled exactly as it was resolved, and the probes' callers never hand
// them over for probing anyway (they are not globally reachable). Invalid addresses get an
// error, so a zero netip.Addr never reaches a socket.
func Network(base string, addr netip.Addr) (string, error) {
	if !addr.IsValid() {
		return "", fmt.Errorf("probe: invalid address")
	}
	if addr.Is4() {
		return base + "4", nil
	}
	return base + "6", nil
}

// HostPort formats addr and port for net.Dial: "192.0.2.1:25", "[2001:db8::1]:25",
// keeping the zone of a link-local address.
func HostPort(addr netip.Addr, port uint16) string {
	return net.JoinHostPort(addr.String(), strconv.Itoa(int(port)))
}

// Family returns 4 or 6, the family number used in records.
func Family(addr netip.Addr) int {
	if addr.Is4() {
		return 4
	}
	return 6
}
