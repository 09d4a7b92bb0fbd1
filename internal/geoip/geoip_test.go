package geoip

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func u32(v uint32) *uint32   { return &v }
func f64(v float64) *float64 { return &v }

func openFixtures(t testing.TB) *DB {
	t.Helper()
	db, err := Open(filepath.Join("testdata", FixtureCityFile), filepath.Join("testdata", FixtureASNFile))
	if err != nil {
		t.Fatalf("Open fixtures: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// TestLookupFixtures checks named lookups against the values documented in
// testdata/README.md; London (west) and Sydney (south) catch a lat/lon swap.
func TestLookupFixtures(t *testing.T) {
	london := Record{ASN: u32(64500), ASOrg: "V6Matrix Lab Transit GB", City: "London", Region: "England",
		CountryCode: "GB", Lat: f64(51.5085), Lon: f64(-0.1257)}
	berlin := Record{ASN: u32(64501), ASOrg: "V6Matrix Lab Berlin Hosting", City: "Berlin", Region: "Land Berlin",
		CountryCode: "DE", Lat: f64(52.5244), Lon: f64(13.4105)}
	paris := Record{ASN: u32(64502), ASOrg: "V6Matrix Lab Paris Telecom", City: "Paris", Region: "Île-de-France",
		CountryCode: "FR", Lat: f64(48.8534), Lon: f64(2.3488)}
	sydney := Record{City: "Sydney", Region: "New South Wales", CountryCode: "AU", Lat: f64(-33.8678), Lon: f64(151.2073)}
	tests := []struct {
		name, addr string
		want       Record
	}{
		{"ipv4 london", "192.0.2.1", london},
		{"ipv4 first half", "198.51.100.127", berlin},
		{"ipv4 second half", "198.51.100.128", paris},
		{"ipv4 no asn record", "203.0.113.200", sydney},
		{"ipv4 miss", "8.8.8.8", Record{}},
		{"ipv4-mapped answers like ipv4", "::ffff:192.0.2.1", london},
		{"ipv6 london", "2001:db8:1::25", london},
		{"ipv6 sao paulo", "2001:db8:4:ffff::1", Record{ASN: u32(64504), ASOrg: "Rede Lab São Paulo", City: "São Paulo",
			Region: "São Paulo", CountryCode: "BR", Lat: f64(-23.5475), Lon: f64(-46.6361)}},
		{"ipv6 32-bit asn", "2001:db8:3::1", Record{ASN: u32(65550), ASOrg: "V6Matrix Lab SF Cloud", City: "San Francisco",
			Region: "California", CountryCode: "US", Lat: f64(37.7749), Lon: f64(-122.4194)}},
		{"ipv6 country only", "2001:db8:f123::1", Record{ASN: u32(64511), ASOrg: "V6Matrix Lab NL Exchange", CountryCode: "NL"}},
		{"ipv6 miss inside 2001:db8", "2001:db8:5::1", Record{}},
		{"ipv6 miss", "2a00:1450::1", Record{}},
		{"6to4 answers like its ipv4", "2002:c633:6480::1", paris},
		{"teredo answers like its server", "2001:0:c000:201:8000:63bf:3fff:fdd2", london},
		{"zone ignored", "2001:db8:2::1%eth0", berlin},
		{"zero addr", "", Record{}},
	}
	db := openFixtures(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a netip.Addr
			if tt.addr != "" {
				a = netip.MustParseAddr(tt.addr)
			}
			if diff := cmp.Diff(tt.want, db.Lookup(a)); diff != "" {
				t.Errorf("Lookup(%s) mismatch (-want +got):\n%s", tt.addr, diff)
			}
		})
	}
}

// TestOpenErrors checks the one message a database that cannot be used gives.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	corrupt := FixtureCity()
	for i := 0; i < 64; i++ { // scribble over the search tree
		corrupt[i] = 0xff
	}
	empty := write("empty.mmdb", nil)
	text := write("text.mmdb", []byte("not a database\n"))
	bad := write("corrupt.mmdb", corrupt)
	missing := filepath.Join(dir, "missing.mmdb")
	good := filepath.Join("testdata", FixtureASNFile)
	tests := []struct {
		name, city, asn, want string
	}{
		{"missing city", missing, good, "geoip: city database " + missing + ": open " + missing + ": no such file or directory"},
		{"missing asn", "", missing, "geoip: ASN database " + missing + ": open " + missing + ": no such file or directory"},
		{"empty", empty, "", "geoip: city database " + empty + ": file is empty"},
		{"not a database", "", text, "geoip: ASN database " + text + ": error opening database: invalid MaxMind DB file"},
		{"corrupt tree", bad, good, "geoip: city database " + bad + ": the MaxMind DB file's search tree is corrupt"},
		{"a directory", dir, "", "geoip: city database " + dir + ": read " + dir + ": is a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(tt.city, tt.asn)
			if err == nil {
				_ = db.Close()
				t.Fatalf("Open: no error, want %q", tt.want)
			}
			// Messages ending in ": " only fix the prefix naming the file:
			// the rest is the library's description of the damage.
			t.Logf("err: %v", err)
			if strings.HasSuffix(tt.want, ": ") && strings.HasPrefix(err.Error(), tt.want) && len(err.Error()) > len(tt.want) {
				return
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %q\nwant %q", err, tt.want)
			}
		})
	}
}

// TestOpenOrWarn checks that a bad database is one warning and empty
// columns, while the good one keeps answering.
func TestOpenOrWarn(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	missing := filepath.Join(t.TempDir(), "nope.mmdb")
	db := OpenOrWarn(logger, filepath.Join("testdata", FixtureCityFile), missing)
	defer db.Close()
	got := db.Lookup(netip.MustParseAddr("192.0.2.1"))
	if got.City != "London" || got.ASN != nil {
		t.Errorf("Lookup = %+v, want London with no ASN", got)
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 || !strings.Contains(logs.String(), missing) {
		t.Errorf("want one warning naming %s, got:\n%s", missing, logs.String())
	}
	if got := OpenOrWarn(logger, "", "").Lookup(netip.MustParseAddr("192.0.2.1")); got != (Record{}) {
		t.Errorf("no databases: Lookup = %+v, want empty", got)
	}
	var nilDB *DB
	if got := nilDB.Lookup(netip.MustParseAddr("192.0.2.1")); got != (Record{}) {
		t.Errorf("nil DB: Lookup = %+v, want empty", got)
	}
}

// TestFixturesEmbedded checks that the embedded copies are the committed
// files and that WriteFixtures reproduces them.
func TestFixturesEmbedded(t *testing.T) {
	city, asn, err := WriteFixtures(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]string{{city, filepath.Join("testdata", FixtureCityFile)}, {asn, filepath.Join("testdata", FixtureASNFile)}} {
		a, errA := os.ReadFile(pair[0])
		b, errB := os.ReadFile(pair[1])
		if errA != nil || errB != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs from %s (%v, %v)", pair[0], pair[1], errA, errB)
		}
	}
	db, err := OpenFixtures()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Lookup(netip.MustParseAddr("2001:db8:2::1")); got.City != "Berlin" {
		t.Errorf("OpenFixtures: Lookup = %+v, want Berlin", got)
	}
}
