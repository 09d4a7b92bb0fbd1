// Package addrclass classifies IP addresses the way v6matrix reports them in
// ipv6type.csv (shared/RECORDS.md): whether an address is valid (usable on
// the Internet, so worth probing), the id of the most specific prefix-table
// entry it falls in, its type (native, 6to4, teredo, 6rd, ...) and, for IPv6,
// the class of its interface identifier (RFC 7707).
//
// Validity follows the IANA IPv4 and IPv6 special-purpose address registries,
// encoded as data in registry.go; 6to4 and Teredo count as valid, and so does
// anything inside a range the run allows (a lab). Nothing is unmapped behind
// the caller's back: ::ffff:192.0.2.1 is an invalid "ipv4-mapped" IPv6
// address, not an IPv4 address.
package addrclass

import (
	"net/netip"
	"slices"
)

// Class is the classification of one address.
type Class struct {
	// Valid is true when the address is usable on the Internet (global and
	// not marked otherwise by the IANA registries; 6to4 and Teredo included)
	// or lies inside an allowed range.
	Valid bool
	// Allowed is true when the address lies inside an allowed range.
	Allowed bool
	// PrefixID is the UID of the most specific prefix-table entry containing
	// the address, "" when none does (always "" for IPv4).
	PrefixID string
	// Type is the class name: for IPv6 one of native, 6to4, teredo, 6rd,
	// isatap, nat64, ipv4-mapped, ipv4-compatible, tunnel-broker, ula,
	// site-local, link-local, documentation, benchmarking, discard,
	// loopback, multicast, unspecified, reserved, or a class of a custom
	// prefix table; for IPv4 one of global, private, shared, loopback,
	// link-local, documentation, benchmarking, multicast, broadcast,
	// this-network, reserved. Empty only for the zero netip.Addr.
	Type string
	// IID is the interface-identifier class of an IPv6 unicast address
	// (eui64, isatap, embedded-ipv4, embedded-port, low-byte, pattern,
	// randomized); "" for IPv4, multicast, the unspecified address and
	// Teredo (whose low 64 bits are decoded into Teredo instead).
	IID string
	// EmbeddedIPv4 is the IPv4 address the IPv6 address carries, when its
	// type defines one: 6to4, ISATAP, IPv4-mapped, IPv4-compatible, NAT64
	// (64:ff9b::/96) and the Teredo client. Zero otherwise.
	EmbeddedIPv4 netip.Addr
	// Teredo is the decoded Teredo address (RFC 4380 §4), nil unless Type is
	// teredo.
	Teredo *TeredoInfo
}

// TeredoInfo holds what a Teredo address encodes.
type TeredoInfo struct {
	Server     netip.Addr // the Teredo server's IPv4 address
	Client     netip.Addr // the client's public (mapped) IPv4 address
	ClientPort uint16     // the client's public (mapped) UDP port
	Flags      uint16     // the flags word; 0x8000 is the cone bit
}

// Classifier classifies addresses against a prefix table and a list of
// allowed ranges. It is immutable and safe for concurrent use.
type Classifier struct {
	table *Table
	allow []netip.Prefix
}

// New returns a Classifier using table (DefaultTable when nil) and treating
// the addresses inside allow as valid. Inside an allowed range,
// documentation, benchmarking, private, shared, ULA, site-local and reserved
// space is classified as if it were global unicast: a lab simulates the
// Internet with such space, and its 2001:db8::25 should read "native".
func New(table *Table, allow []netip.Prefix) *Classifier {
	if table == nil {
		table = DefaultTable()
	}
	c := &Classifier{table: table}
	for _, p := range allow {
		if p.IsValid() {
			c.allow = append(c.allow, p.Masked())
		}
	}
	return c
}

// Table returns the prefix table the classifier uses.
func (c *Classifier) Table() *Table { return c.table }

func (c *Classifier) allowed(a netip.Addr) bool {
	return slices.ContainsFunc(c.allow, func(p netip.Prefix) bool { return p.Contains(a) })
}

// Classify classifies a. A zone (fe80::1%eth0) is ignored. The zero
// netip.Addr gives the zero Class.
func (c *Classifier) Classify(a netip.Addr) Class {
	if !a.IsValid() {
		return Class{}
	}
	a = a.WithZone("")
	if a.Is4() {
		return c.classify4(a)
	}
	return c.classify6(a)
}

func (c *Classifier) classify4(a netip.Addr) Class {
	cl := Class{Type: TypeGlobal, Allowed: c.allowed(a)}
	global := true
	if s, ok := lookupSpecial(registry4, a); ok {
		cl.Type, global = s.class, s.global
	}
	if cl.Allowed && labOverridable[cl.Type] {
		cl.Type = TypeGlobal
	}
	cl.Valid = global || cl.Allowed
	return cl
}

func (c *Classifier) classify6(a netip.Addr) Class {
	cl := Class{Allowed: c.allowed(a)}
	var global bool
	if s, ok := lookupSpecial(registry6, a); ok {
		cl.Type, global = s.class, s.global
	} else if globalUnicast6.Contains(a) {
		cl.Type, global = TypeNative, true
	} else {
		cl.Type = TypeReserved
	}
	if cl.Allowed && labOverridable[cl.Type] {
		cl.Type, global = TypeNative, true
	}
	cl.Valid = global || cl.Allowed
	if e, ok := c.table.Lookup(a); ok {
		cl.PrefixID = e.UID
		if cl.Type == TypeNative {
			cl.Type = e.Class
		}
	}
	b := a.As16()
	v4 := func(i int) netip.Addr { return netip.AddrFrom4([4]byte(b[i : i+4])) }
	switch cl.Type {
	case TypeUnspecified, TypeMulticast:
		return cl
	case TypeTeredo:
		cl.Teredo = decodeTeredo(b)
		cl.EmbeddedIPv4 = cl.Teredo.Client
		return cl
	case Type6to4:
		cl.EmbeddedIPv4 = v4(2)
	case TypeIPv4Mapped:
		// An IPv4 address written as IPv6 (RFC 4291 2.5.5.2): no interface identifier.
		cl.EmbeddedIPv4 = v4(12)
		return cl
	case TypeIPv4Compatible:
		cl.EmbeddedIPv4 = v4(12)
	}
	cl.IID = classifyIID(a)
	if cl.IID == IIDISATAP {
		if !cl.EmbeddedIPv4.IsValid() {
			cl.EmbeddedIPv4 = v4(12)
		}
		if cl.Type == TypeNative {
			cl.Type = TypeISATAP
		}
	}
	if cl.Type == TypeNAT64 && nat64WKP.Contains(a) {
		cl.EmbeddedIPv4 = v4(12)
	}
	return cl
}

// nat64WKP is the only NAT64 prefix whose IPv4 position is fixed (RFC 6052).
var nat64WKP = netip.MustParsePrefix("64:ff9b::/96")

// decodeTeredo decodes 2001:0:SSSS:SSSS:FFFF:PPPP:CCCC:CCCC, where the port
// and client address are stored with every bit inverted.
func decodeTeredo(b [16]byte) *TeredoInfo {
	return &TeredoInfo{
		Server:     netip.AddrFrom4([4]byte(b[4:8])),
		Flags:      uint16(b[8])<<8 | uint16(b[9]),
		ClientPort: ^(uint16(b[10])<<8 | uint16(b[11])),
		Client:     netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}),
	}
}
