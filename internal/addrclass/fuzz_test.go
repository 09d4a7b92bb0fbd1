package addrclass

import (
	"bytes"
	"net/netip"
	"testing"
)

// invalidTypes never make an address valid outside an allowed range.
var invalidTypes = map[string]bool{
	TypeLoopback: true, TypeLinkLocal: true, TypeSiteLocal: true, TypeULA: true,
	TypeMulticast: true, TypeUnspecified: true, TypeIPv4Mapped: true, TypeIPv4Compatible: true,
	TypeDocumentation: true, TypeBenchmarking: true, TypeDiscard: true, TypePrivate: true,
	TypeShared: true, TypeBroadcast: true, TypeThisNetwork: true,
}

// FuzzClassify checks invariants of Classify on arbitrary 16- and 4-byte
// addresses: no panic, a type always, validity never for the invalid types,
// a PrefixID only inside that entry's prefix, the IID only for IPv6.
func FuzzClassify(f *testing.F) {
	for _, a := range corpus() {
		b := a.As16()
		f.Add(b[:])
	}
	f.Add([]byte{192, 0, 2, 1})
	f.Add([]byte{8, 8, 8, 8})
	c := New(nil, nil)
	entries := map[string]netip.Prefix{}
	for _, e := range c.Table().Entries() {
		entries[e.UID] = e.Prefix
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		a, ok := netip.AddrFromSlice(raw)
		if !ok {
			return
		}
		got := c.Classify(a)
		if got.Type == "" {
			t.Fatalf("%s: empty type", a)
		}
		if got.Valid && invalidTypes[got.Type] {
			t.Errorf("%s: valid but type %s", a, got.Type)
		}
		if got.Allowed {
			t.Errorf("%s: allowed with no allowed ranges", a)
		}
		if got.PrefixID != "" {
			p, ok := entries[got.PrefixID]
			if !ok || !p.Contains(a) {
				t.Errorf("%s: prefix id %s (%s) does not contain it", a, got.PrefixID, p)
			}
		}
		if a.Is4() && (got.IID != "" || got.PrefixID != "" || got.Teredo != nil) {
			t.Errorf("%s: IPv4 with IPv6 fields %+v", a, got)
		}
		if (got.Type == TypeTeredo) != (got.Teredo != nil) {
			t.Errorf("%s: type %s with Teredo %v", a, got.Type, got.Teredo)
		}
		if got.EmbeddedIPv4.IsValid() && !got.EmbeddedIPv4.Is4() {
			t.Errorf("%s: embedded %s is not IPv4", a, got.EmbeddedIPv4)
		}
	})
}

// FuzzParseTable checks that ParseTable never panics, that an error names
// the input, and that every accepted entry is found again by Lookup.
func FuzzParseTable(f *testing.F) {
	f.Add(defaultTableCSV)
	f.Add([]byte(header + "U0001,6to4,x,y,,2002::/16,d\n"))
	f.Add([]byte(header + "U0001,6to4,x,\"y,,2002::/16,d\n"))
	f.Add([]byte("# c\n" + header + "U4000,nat64,a,b,,64:ff9b::/96,\"q\"\"x\"\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		table, err := ParseTable(bytes.NewReader(in), "fuzz.csv")
		if err != nil {
			if !bytes.HasPrefix([]byte(err.Error()), []byte("fuzz.csv")) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for _, e := range table.Entries() {
			got, ok := table.Lookup(e.Prefix.Addr())
			if !ok || got.Prefix.Bits() < e.Prefix.Bits() || !got.Prefix.Contains(e.Prefix.Addr()) {
				t.Errorf("entry %s %s: Lookup of its first address gave %s %v", e.UID, e.Prefix, got.UID, ok)
			}
		}
	})
}
