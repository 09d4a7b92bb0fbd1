package labcrawl_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/addrclass"
)

// checkPath (issue 5): path.csv's mtu, hops and back per address equal tracepath's from
// the vantage; a target tracepath does not reach has empty cells (and reached=false in JSON).
func checkPath(t *testing.T, r *crawlRun, tools *toolRuns, targets []*target) {
	f, err := readCSV(r.records, "path.csv")
	if err != nil {
		t.Fatal(err)
	}
	// cells[addr] = every (mtu, hops, back) triple path.csv gives the address.
	cells := map[netip.Addr][][3]string{}
	for _, row := range f.Rows {
		for _, fam := range []string{"4", "6"} {
			a, err := netip.ParseAddr(row["ipv"+fam])
			if err != nil {
				continue
			}
			cells[a] = append(cells[a], [3]string{row["mtu"+fam], row["hops"+fam], row["back"+fam]})
		}
	}
	tools.trace.Wait()
	for _, tg := range targets {
		t.Run(tg.Addr.String(), func(t *testing.T) {
			tr := tools.by[tg.Addr].trace
			if tr.Err != nil {
				t.Fatalf("tracepath: %v\n%s", tr.Err, tr.Out)
			}
			want := [3]string{}
			if tr.Val.Reached {
				want = [3]string{strconv.Itoa(tr.Val.PMTU), strconv.Itoa(tr.Val.Hops), ""}
				if tr.Val.Back > 0 {
					want[2] = strconv.Itoa(tr.Val.Back)
				}
			}
			rows := cells[tg.Addr]
			if len(rows) == 0 {
				t.Fatalf("path.csv has no row with %s", tg.Addr)
			}
			for _, got := range rows {
				if got != want {
					t.Errorf("path.csv mtu,hops,back = %q, tracepath %q (reached %v)\n%s", got, want, tr.Val.Reached, tr.Out)
					break
				}
			}
			p := tg.Doc.Path
			switch {
			case p == nil:
				t.Errorf("domains.jsonl has no path for %s", tg.Addr)
			case p.Reached != tr.Val.Reached:
				t.Errorf("reached: crawl %v (%s), tracepath %v\n%s", p.Reached, p.Reason, tr.Val.Reached, tr.Out)
			case !p.Reached && p.MTU != tr.Val.PMTU:
				t.Errorf("not reached: crawl pmtu %d (%s), tracepath pmtu %d\n%s", p.MTU, p.Reason, tr.Val.PMTU, tr.Out)
			}
		})
	}
}

// addr6Types and addr6IIDs map ipv6toolkit's `addr6 -d` names to ours, as
// internal/addrclass/addr6_test.go does (addr6's "global" covers native, documentation,
// 6rd... and Teredo, which ipv6toolkit 2.0 misdetects).
var (
	addr6Types = map[string]string{
		"loopback": addrclass.TypeLoopback, "ipv4-mapped": addrclass.TypeIPv4Mapped,
		"ipv4-compatible": addrclass.TypeIPv4Compatible, "link-local": addrclass.TypeLinkLocal,
		"site-local": addrclass.TypeSiteLocal, "unique-local": addrclass.TypeULA,
		"6to4": addrclass.Type6to4, "teredo": addrclass.TypeTeredo,
	}
	addr6IIDs = map[string]string{
		"ieee-derived": addrclass.IIDEUI64, "isatap": addrclass.IIDISATAP,
		"embedded-ipv4": addrclass.IIDEmbeddedIPv4, "embedded-port": addrclass.IIDEmbeddedPort,
		"embedded-port-rev": addrclass.IIDEmbeddedPort, "low-byte": addrclass.IIDLowByte,
		"pattern-bytes": addrclass.IIDPattern, "randomized": addrclass.IIDRandomized,
	}
)

// checkIPv6Type (issue 5): ipv6type.csv's class agrees with `addr6 -i -d` where both name one.
func checkIPv6Type(t *testing.T, r *crawlRun) {
	f, err := readCSV(r.records, "ipv6type.csv")
	if err != nil {
		t.Fatal(err)
	}
	type class struct{ typ, iid string }
	ours := map[netip.Addr]class{}
	for _, row := range f.Rows {
		a, err := netip.ParseAddr(row["ipv6"])
		if err != nil {
			t.Fatalf("ipv6type.csv: ipv6 %q: %v", row["ipv6"], err)
		}
		c := class{row["ipv6type"], row["iid"]}
		if old, ok := ours[a]; ok && old != c {
			t.Errorf("%s classified twice differently: %v and %v", a, old, c)
		}
		ours[a] = c
	}
	var addrs []netip.Addr
	for a := range ours {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	if len(addrs) < 5 {
		t.Fatalf("ipv6type.csv has %d distinct addresses", len(addrs))
	}
	var in strings.Builder
	for _, a := range addrs {
		in.WriteString(a.String() + "\n")
	}
	out, code, err := r.v.runStdin(context.Background(), 30*time.Second, strings.NewReader(in.String()), "addr6", "-i", "-d")
	if err != nil || code != 0 {
		t.Fatalf("addr6 -i -d: exit %d, %v\n%s", code, err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(addrs) {
		t.Fatalf("addr6 printed %d lines for %d addresses:\n%s", len(lines), len(addrs), out)
	}
	for i, a := range addrs {
		got := ours[a]
		t.Run(a.String(), func(t *testing.T) {
			fields := strings.Split(lines[i], "=")
			if len(fields) != 5 {
				t.Fatalf("addr6 line %q: want 5 fields", lines[i])
			}
			kind, sub, iid := fields[0], fields[1], fields[3]
			switch {
			case kind == "multicast" || kind == "unspecified":
				if got.typ != kind {
					t.Errorf("type %q, addr6 %q", got.typ, kind)
				}
			case addr6Types[sub] != "":
				if got.typ != addr6Types[sub] {
					t.Errorf("type %q, addr6 %q (= our %q)", got.typ, sub, addr6Types[sub])
				}
			case sub == "global":
				for a6, o := range addr6Types {
					if got.typ == o && o != addrclass.TypeTeredo {
						t.Errorf("type %q, addr6 says global, not %s", got.typ, a6)
					}
				}
			default:
				t.Errorf("addr6 class %s=%s not mapped", kind, sub)
			}
			if want, named := addr6IIDs[iid]; named && got.iid != "" && got.iid != want {
				t.Errorf("iid %q, addr6 %q (= our %q)", got.iid, iid, want)
			}
		})
	}
}

// geoField is one geoip.csv column and the mmdblookup path that gives it.
type geoField struct {
	col   string
	asnDB bool
	path  []string
	float bool
}

var geoFields = []geoField{
	{"asn", true, []string{"autonomous_system_number"}, false},
	{"city", false, []string{"city", "names", "en"}, false},
	{"region_name", false, []string{"subdivisions", "0", "names", "en"}, false},
	{"country_code", false, []string{"country", "iso_code"}, false},
	{"longitude", false, []string{"location", "longitude"}, true},
	{"latitude", false, []string{"location", "latitude"}, true},
}

// mmdblookup returns the value at path for a, "" when there is none (exit 5 or 6).
func (v vantage) mmdblookup(ctx context.Context, file string, a netip.Addr, path []string) (string, error) {
	argv := append([]string{"mmdblookup", "--file", file, "--ip", a.String()}, path...)
	out, code, err := v.run(ctx, 10*time.Second, argv...)
	switch {
	case err != nil:
		return "", err
	case code == 5 || code == 6:
		return "", nil
	case code != 0:
		return "", fmt.Errorf("%s: exit %d\n%s", strings.Join(argv, " "), code, out)
	}
	s := strings.TrimSpace(out)
	i := strings.LastIndex(s, " <")
	if i < 0 {
		return "", fmt.Errorf("%s: unexpected output %q", strings.Join(argv, " "), s)
	}
	s = s[:i]
	if unq, err := strconv.Unquote(s); err == nil {
		s = unq
	}
	return s, nil
}

// checkGeoIP (issues 5, 9): every geoip.csv row agrees with mmdblookup on the fixtures,
// probed or not (GeoIP sends no packet); an IPv4-mapped address is looked up as its IPv4.
func checkGeoIP(t *testing.T, r *crawlRun, _ map[string]domainDoc) {
	f, err := readCSV(r.records, "geoip.csv")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[netip.Addr]map[string]string{}
	for _, row := range f.Rows {
		s := row["ipv4"] + row["ipv6"]
		a, err := netip.ParseAddr(s)
		if err != nil {
			t.Fatalf("geoip.csv: address %q: %v", s, err)
		}
		rows[a] = row
	}
	var addrs []netip.Addr
	for a := range rows {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	// mmdblookup reads local files only; the runs are many and short, so a few at a time.
	want := make([][]string, len(addrs))
	errs := make([]error, len(addrs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			for _, gf := range geoFields {
				file := r.city
				if gf.asnDB {
					file = r.asn
				}
				// An IPv4-mapped address is looked up as its IPv4 address (issue 9).
				v, err := r.v.mmdblookup(context.Background(), file, a.Unmap(), gf.path)
				want[i] = append(want[i], v)
				errs[i] = errors.Join(errs[i], err)
			}
		}()
	}
	wg.Wait()
	found := 0
	for i, a := range addrs {
		t.Run(a.String(), func(t *testing.T) {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			for j, gf := range geoFields {
				// GeoIP sends nothing: addresses not probed have it too (issue 9).
				got, w := rows[a][gf.col], want[i][j]
				if gf.float && got != "" && w != "" {
					g, err1 := strconv.ParseFloat(got, 64)
					m, err2 := strconv.ParseFloat(w, 64)
					if err1 != nil || err2 != nil || math.Abs(g-m) > 1e-6 {
						t.Errorf("%s: geoip.csv %q, mmdblookup %q", gf.col, got, w)
					}
					continue
				}
				if got != w {
					t.Errorf("%s: geoip.csv %q, mmdblookup %q", gf.col, got, w)
				}
			}
		})
		if want[i][3] != "" {
			found++
		}
	}
	if found == 0 {
		t.Errorf("no address of the crawl is in the GeoIP fixtures: the comparison shows nothing")
	}
}
