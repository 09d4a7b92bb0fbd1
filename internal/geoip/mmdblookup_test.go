package geoip

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
)

// field is one Record field and the mmdblookup path that reads it.
type field struct {
	db   string // FixtureCityFile or FixtureASNFile
	path []string
	get  func(Record) string // our value, formatted like mmdblookup; "" = absent
}

func fmtF(p *float64) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf("%f", *p) // mmdblookup prints doubles with %f
}

var fields = []field{
	{FixtureCityFile, []string{"city", "names", "en"}, func(r Record) string { return r.City }},
	{FixtureCityFile, []string{"subdivisions", "0", "names", "en"}, func(r Record) string { return r.Region }},
	{FixtureCityFile, []string{"country", "iso_code"}, func(r Record) string { return r.CountryCode }},
	{FixtureCityFile, []string{"location", "longitude"}, func(r Record) string { return fmtF(r.Lon) }},
	{FixtureCityFile, []string{"location", "latitude"}, func(r Record) string { return fmtF(r.Lat) }},
	{FixtureASNFile, []string{"autonomous_system_number"}, func(r Record) string {
		if r.ASN == nil {
			return ""
		}
		return strconv.FormatUint(uint64(*r.ASN), 10)
	}},
	{FixtureASNFile, []string{"autonomous_system_organization"}, func(r Record) string { return r.ASOrg }},
}

// mmdblookup runs `mmdblookup --file F --ip A PATH...` and returns the value
// it prints, without its type tag and quotes; "" when the address or the path
// has no data (exit status 6 or 5).
func mmdblookup(t *testing.T, bin, file string, a netip.Addr, path []string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	args := append([]string{"--file", file, "--ip", a.String()}, path...)
	out, err := exec.CommandContext(ctx, bin, args...).Output()
	var exit *exec.ExitError
	if errors.As(err, &exit) && (exit.ExitCode() == 5 || exit.ExitCode() == 6) {
		return ""
	}
	if err != nil {
		t.Fatalf("mmdblookup %s: %v", strings.Join(args, " "), err)
	}
	s := strings.TrimSpace(string(out))
	i := strings.LastIndex(s, " <")
	if i < 0 {
		t.Fatalf("mmdblookup %s: unexpected output %q", strings.Join(args, " "), s)
	}
	s = s[:i]
	if unq, err := strconv.Unquote(s); err == nil {
		s = unq
	}
	return s
}

// probeAddrs returns the addresses to compare: for every network of both
// fixtures its first and last address and their neighbours outside it, plus
// misses, IPv4-mapped, 6to4 and Teredo forms.
func probeAddrs(t *testing.T) []netip.Addr {
	t.Helper()
	set := map[netip.Addr]bool{}
	for _, name := range []string{FixtureCityFile, FixtureASNFile} {
		r, err := maxminddb.Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		for res := range r.Networks() {
			p := res.Prefix()
			first := p.Masked().Addr()
			last := lastAddr(p)
			for _, a := range []netip.Addr{first, last, first.Prev(), last.Next()} {
				if a.IsValid() {
					set[a] = true
				}
			}
		}
		_ = r.Close()
	}
	for _, s := range []string{
		"8.8.8.8", "::ffff:192.0.2.1", "::ffff:198.51.100.200", "2002:c000:201::1", "2002:cb00:71ff::1",
		"2001:0:c633:6401:8000:63bf:3fff:fdd2", "2001:db8::1", "2001:db8:5::1", "2a00:1450::1", "::1",
	} {
		set[netip.MustParseAddr(s)] = true
	}
	var out []netip.Addr
	for a := range set {
		out = append(out, a)
	}
	return out
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// TestAgreesWithMmdblookup compares every field of every probe address with
// libmaxminddb's mmdblookup on the fixture files.
func TestAgreesWithMmdblookup(t *testing.T) {
	bin, err := exec.LookPath("mmdblookup")
	if err != nil {
		t.Skip("mmdblookup not installed (Debian package mmdb-bin); skipping the comparison")
	}
	db := openFixtures(t)
	addrs := probeAddrs(t)
	found := 0
	for _, a := range addrs {
		rec := db.Lookup(a)
		if rec.CountryCode != "" {
			found++
		}
		t.Run(a.String(), func(t *testing.T) {
			for _, f := range fields {
				want := mmdblookup(t, bin, filepath.Join("testdata", f.db), a, f.path)
				if got := f.get(rec); got != want {
					t.Errorf("%s %s: got %q, mmdblookup says %q", f.db, strings.Join(f.path, "."), got, want)
				}
			}
		})
	}
	if found < 20 || found == len(addrs) {
		t.Errorf("%d of %d probe addresses found: the probe list should mix hits and misses", found, len(addrs))
	}
}

// BenchmarkLookup reports lookups per second on the fixtures (City + ASN).
func BenchmarkLookup(b *testing.B) {
	db, err := OpenFixtures()
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	addrs := []netip.Addr{
		netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8:1::25"),
		netip.MustParseAddr("203.0.113.200"), netip.MustParseAddr("2001:db8:5::1"),
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = db.Lookup(addrs[i%len(addrs)])
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}
