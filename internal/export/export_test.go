package export

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// readCSV reads a whole CSV file, header included.
func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}

// dirFiles lists the names in dir.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// allKinds is every measurement kind the test run has.
func allKinds(ms []store.Measurement) map[string]bool {
	out := map[string]bool{}
	for _, m := range ms {
		out[m.Kind] = true
	}
	return out
}

// exportMeasured saves the test run with the measurements and exports it in all formats.
func exportMeasured(t *testing.T, ms []store.Measurement) (dir string, paths []string) {
	t.Helper()
	ctx := context.Background()
	st := newStore(t)
	run := saveRun(t, st)
	if len(ms) > 0 {
		if err := st.SaveMeasurements(ctx, run, ms); err != nil {
			t.Fatal(err)
		}
	}
	dir = t.TempDir()
	paths, err := Write(ctx, st, run, dir, Formats)
	if err != nil {
		t.Fatal(err)
	}
	return dir, paths
}

// e is an empty cell.
const e = ""

func TestProbeFiles(t *testing.T) {
	ms := measurements(t)
	dir, paths := exportMeasured(t, ms)
	var want []string
	for _, f := range FilesFor(Formats, allKinds(ms)) {
		want = append(want, filepath.Join(dir, f))
	}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("Write returned paths (-want +got):\n%s", diff)
	}
	const (
		alpha, beta = "alpha.example", "beta.example"
		ns, mail    = "ns1.alpha.example", "mail.alpha.example"
		www, ntp    = "www.alpha.example", "ntp.alpha.example"
		wwwB        = "www.beta.example"
		n4, n6      = "192.0.2.53", "2001:db8:1::53"
		m4, m6, mU  = "198.51.100.25", "2001:db8:2::25", "fd00::25"
		w4a, w4b    = "192.0.2.80", "192.0.2.81"
		w6          = "2001:db8:1::80"
		t4, t6      = "203.0.113.200", "2001:db8:3::123"
	)
	tcp := func(port string, cells [7][2]string) [][]string {
		rows := [][]string{{"type", "domain", "host", "port", "ipv4", "ipv6", "tcp", "tcp6"}}
		hosts := [7][5]string{{"ns", alpha, ns, n4, n6}, {"mx", alpha, mail, m4, m6}, {"mx", alpha, mail, e, mU},
			{"www", alpha, www, w4a, w6}, {"www", alpha, www, w4b, e}, {"ntp", alpha, ntp, t4, t6}, {"www", beta, wwwB, e, e}}
		for i, h := range hosts {
			rows = append(rows, []string{h[0], h[1], h[2], port, h[3], h[4], cells[i][0], cells[i][1]})
		}
		return rows
	}
	london := []string{"64500", "London", "England", "GB", "-0.1257", "51.5085"}
	berlin := []string{"64501", "Berlin", "Land Berlin", "DE", "13.4105", "52.5244"}
	geo := func(role, host, v4, v6 string, g []string) []string {
		return append([]string{role, alpha, host, v4, v6}, g...)
	}
	tests := []struct {
		file string
		want [][]string
	}{
		{"reverse.csv", [][]string{
			{"type", "domain", "host", "ipv4", "ipv6", "name4", "name6"},
			{"ns", alpha, ns, n4, n6, ns, e},
			{"mx", alpha, mail, m4, m6, mail, e},
			{"mx", alpha, mail, e, mU, e, e},
			{"www", alpha, www, w4a, w6, "web-a.cdn.example", e},
			{"www", alpha, www, w4b, e, e, e},
			{"ntp", alpha, ntp, t4, t6, e, e},
			{"www", beta, wwwB, e, e, e, e},
		}},
		{"ping.csv", [][]string{
			{"type", "domain", "host", "ipv4", "ipv6", "count", "min", "avg", "max", "std", "min6", "avg6", "max6", "std6", "loss", "loss6"},
			{"ns", alpha, ns, n4, n6, "5", "0.100", "0.200", "0.300", "0.000", e, e, e, e, "0.000", e},
			{"mx", alpha, mail, m4, m6, e, e, e, e, e, e, e, e, e, e, e},
			{"mx", alpha, mail, e, mU, e, e, e, e, e, e, e, e, e, e, e},
			{"www", alpha, www, w4a, w6, "5", "1.235", "2.500", "4.000", "0.988", "10.000", "12.000", "15.500", "2.000", "0.000", "20.000"},
			{"www", alpha, www, w4b, e, "5", e, e, e, e, e, e, e, e, "100.000", e},
			{"ntp", alpha, ntp, t4, t6, e, e, e, e, e, e, e, e, e, e, e},
			{"www", beta, wwwB, e, e, e, e, e, e, e, e, e, e, e, e, e},
		}},
		{"tcp25.csv", tcp("25", [7][2]string{1: {"open", "filtered"}})},
		{"tcp80.csv", tcp("80", [7][2]string{3: {"open", "open"}, 4: {"closed", e}})},
		{"tcp443.csv", tcp("443", [7][2]string{3: {"open", "unreachable"}, 4: {"filtered", e}})},
		{"tls.csv", [][]string{
			{"type", "domain", "host", "ipv4", "reachable", "tls", "ipv6", "reachable6", "tls6", "cert_valid", "cert_expiry",
				"cert_valid4", "cert_expiry4", "cert_valid6", "cert_expiry6"},
			// STARTTLS (not the 443 result of the same address); no certificate over
			// IPv4 (tls none): the combined columns are the IPv6 one's, the IPv4 ones empty.
			{"mx", alpha, mail, m4, "1", "none", m6, "1", "TLS1.3", "1", "2026-09-01T12:30:00Z", e, e, "1", "2026-09-01T12:30:00Z"},
			{"mx", alpha, mail, e, e, e, mU, e, e, e, e, e, e, e, e},
			{"www", alpha, www, w4a, "1", "TLS1.3", w6, "1", "TLS1.2", "1", "2026-07-01T12:30:00Z", "1", "2026-07-01T12:30:00Z", "0", "2025-07-01T12:30:00Z"},
			{"www", alpha, www, w4b, "0", e, e, e, e, e, e, e, e, e, e},
			{"www", beta, wwwB, e, e, e, e, e, e, e, e, e, e, e, e},
		}},
		{"path.csv", [][]string{
			{"type", "domain", "host", "ipv4", "ipv6", "mtu4", "hops4", "back4", "path4", "mtu6", "hops6", "back6", "path6"},
			{"ns", alpha, ns, n4, n6, e, e, e, e, e, e, e, e},
			{"mx", alpha, mail, m4, m6, e, e, e, e, e, e, e, e},
			{"mx", alpha, mail, e, mU, e, e, e, e, e, e, e, e},
			{"www", alpha, www, w4a, w6, "1500", "3", "3", "192.0.2.1 * 192.0.2.80",
				"1280", "4", "5", "2001:db8:1::1 2001:db8:ffff::1 * 2001:db8:1::80"},
			{"www", alpha, www, w4b, e, e, e, e, e, e, e, e, e}, // not reached: max hops
			{"ntp", alpha, ntp, t4, t6, e, e, e, e, e, e, e, e},
			{"www", beta, wwwB, e, e, e, e, e, e, e, e, e, e},
		}},
		{"geoip.csv", [][]string{
			{"type", "domain", "host", "ipv4", "ipv6", "asn", "city", "region_name", "country_code", "longitude", "latitude"},
			geo("ns", ns, n4, e, london),
			geo("ns", ns, e, n6, london),
			geo("mx", mail, m4, e, berlin),
			geo("mx", mail, e, m6, berlin),
			geo("mx", mail, e, mU, []string{e, e, e, e, e, e}), // skipped, not looked up
			geo("www", www, w4a, e, london),
			geo("www", www, w4b, e, london),
			geo("www", www, e, w6, london),
			geo("ntp", ntp, t4, e, []string{e, "Sydney", "New South Wales", "AU", "151.2073", "-33.8678"}), // no ASN
			geo("ntp", ntp, e, t6, []string{"65550", "San Francisco", "California", "US", "-122.4194", "37.7749"}),
		}},
		{"dns53.csv", [][]string{
			{"type", "domain", "host", "ipv4", "ipv6", "dns", "dns6", "serial", "serial6"},
			{"ns", alpha, ns, n4, n6, "authoritative", "timeout", "2025030101", e},
		}},
		{"ntp123.csv", [][]string{
			{"type", "domain", "host", "ipv4", "ipv6", "ntp", "ntp6", "offset_ms", "offset6_ms"},
			{"ntp", alpha, ntp, t4, t6, "2", "timeout", "0.400", e},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got := readCSV(t, filepath.Join(dir, tc.file))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.file, diff)
			}
		})
	}
}

// TestOnlyMeasuredFiles checks that a probe record file is written exactly when the run
// has measurements of its kind.
func TestOnlyMeasuredFiles(t *testing.T) {
	dnsFiles := []string{"domains.jsonl", "ipv6domain.csv", "ipv6type.csv", "mx.csv", "ns.csv", "ntp.csv", "soa.csv", "www.csv"}
	all := measurements(t)
	only := func(kinds ...string) []store.Measurement {
		var out []store.Measurement
		for _, m := range all {
			if slices.Contains(kinds, m.Kind) {
				out = append(out, m)
			}
		}
		return out
	}
	tests := []struct {
		name  string
		ms    []store.Measurement
		extra []string
	}{
		{"no measurements", nil, nil},
		{"skipped only", only(result.KindSkipped), nil},
		{"ptr", only(result.KindPTR), []string{"reverse.csv"}},
		{"starttls only", only(result.KindSTARTTLS), []string{"tls.csv"}},
		{"tcp80 and geo", only(result.KindTCP80, result.KindGeo), []string{"geoip.csv", "tcp80.csv"}},
		{"all", all, []string{"dns53.csv", "geoip.csv", "ntp123.csv", "path.csv", "ping.csv", "reverse.csv",
			"tcp25.csv", "tcp443.csv", "tcp80.csv", "tls.csv"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, paths := exportMeasured(t, tc.ms)
			want := slices.Sorted(slices.Values(append(slices.Clone(dnsFiles), tc.extra...)))
			if diff := cmp.Diff(want, dirFiles(t, dir)); diff != "" {
				t.Errorf("files in the export directory (-want +got):\n%s", diff)
			}
			var got []string
			for _, p := range paths {
				got = append(got, filepath.Base(p))
			}
			if diff := cmp.Diff(want, slices.Sorted(slices.Values(got))); diff != "" {
				t.Errorf("paths Write returned (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFiles(t *testing.T) {
	tests := []struct {
		name     string
		formats  []string
		measured map[string]bool
		want     []string
	}{
		{"jsonl", []string{"jsonl"}, map[string]bool{"ping": true}, []string{"domains.jsonl"}},
		{"csv unmeasured", []string{"csv"}, nil,
			[]string{"ns.csv", "mx.csv", "www.csv", "ntp.csv", "soa.csv", "ipv6type.csv", "ipv6domain.csv"}},
		{"csv tls443 and unknown kind", []string{"csv"}, map[string]bool{"tls443": true, "future": true},
			[]string{"ns.csv", "mx.csv", "www.csv", "ntp.csv", "soa.csv", "ipv6type.csv", "ipv6domain.csv", "tls.csv"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, FilesFor(tc.formats, tc.measured)); diff != "" {
				t.Errorf("FilesFor (-want +got):\n%s", diff)
			}
		})
	}
	if diff := cmp.Diff(FilesFor(Formats, nil), Files(Formats)); diff != "" {
		t.Errorf("Files is not FilesFor without measurements (-want +got):\n%s", diff)
	}
}

// jsonLines decodes domains.jsonl into generic values, so that the comparison sees
// exactly the keys written.
func jsonLines(t *testing.T, dir string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "domains.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		out = append(out, decodeJSON(t, line).(map[string]any))
	}
	return out
}

// TestStaleFiles exports a run without probe measurements into a directory holding an
// earlier export with them (and a file of the user's): the earlier record files must go,
// so that the directory never mixes two runs; the user's file stays.
func TestStaleFiles(t *testing.T) {
	ctx := context.Background()
	dir, _ := exportMeasured(t, measurements(t))
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := newStore(t)
	run := saveRun(t, st)
	paths, err := Write(ctx, st, run, dir, []string{"csv"})
	if err != nil {
		t.Fatal(err)
	}
	want := append(FilesFor([]string{"csv"}, nil), "notes.txt")
	slices.Sort(want)
	if diff := cmp.Diff(want, dirFiles(t, dir)); diff != "" {
		t.Errorf("files after the second export (-want +got):\n%s", diff)
	}
	if len(paths) != len(want)-1 {
		t.Errorf("Write returned %d paths, want %d", len(paths), len(want)-1)
	}
}
