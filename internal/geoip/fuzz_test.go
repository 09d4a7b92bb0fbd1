package geoip

import (
	"math"
	"net/netip"
	"testing"
	"unicode/utf8"
)

// FuzzLookup opens arbitrary bytes as City and ASN databases (a damaged or hostile
// .mmdb) and looks addresses up: no panic, and results within bounds (coordinates
// finite and on the globe, names valid UTF-8).
func FuzzLookup(f *testing.F) {
	f.Add(FixtureCity())
	f.Add(FixtureASN())
	f.Add([]byte("\xab\xcd\xefMaxMind.com"))
	addrs := []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("::ffff:198.51.100.7"), netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("::")}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, pair := range [][2][]byte{{data, nil}, {nil, data}} {
			d, err := OpenBytes(pair[0], pair[1])
			if err != nil {
				continue
			}
			for _, a := range addrs {
				r := d.Lookup(a)
				if (r.Lat == nil) != (r.Lon == nil) {
					t.Fatalf("%s: latitude %v, longitude %v: one without the other", a, r.Lat, r.Lon)
				}
				if r.Lat != nil && (math.IsNaN(*r.Lat) || math.Abs(*r.Lat) > 90 || math.IsNaN(*r.Lon) || math.Abs(*r.Lon) > 180) {
					t.Fatalf("%s: coordinates %v, %v off the globe", a, *r.Lat, *r.Lon)
				}
				for _, s := range []string{r.City, r.Region, r.CountryCode, r.ASOrg} {
					if !utf8.ValidString(s) {
						t.Fatalf("%s: name %q is not UTF-8", a, s)
					}
				}
			}
			d.Close()
		}
	})
}
