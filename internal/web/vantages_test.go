package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/probe/ping"
	"github.com/v6matrix/v6matrix/internal/probe/tcpport"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/summary"
	"github.com/v6matrix/v6matrix/internal/synthrun"
)

// vantageRun fills a store with one finished run measured from its own vantage
// ("east") and from "west": n IPv6 www addresses that both reach, except that west
// gets no answer from the first `differ` of them on TCP 443, and one IPv4 address
// that only west reached by ping. It returns the run and the addresses.
func vantageRun(t *testing.T, st store.Store, n, differ int) (int64, []netip.Addr, netip.Addr) {
	t.Helper()
	ctx := context.Background()
	run, err := st.CreateRun(ctx, store.Run{Started: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), ListName: "v.csv", Vantage: "east", State: store.RunProbing})
	if err != nil {
		t.Fatal(err)
	}
	v4 := netip.MustParseAddr("192.0.2.7")
	var b store.Batch
	var es []domains.Entry
	var v6s []netip.Addr
	var east, west []store.Measurement
	open := func(port uint16) *tcpport.Result { return &tcpport.Result{Port: port, State: tcpport.StateOpen} }
	for i := range n {
		ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
		v6s = append(v6s, ip)
		name := fmt.Sprintf("d%03d.test", i)
		es = append(es, domains.Entry{Rank: i + 1, Name: name, TLD: "test", Suffix: "test"})
		host := result.Host{Name: "www." + name, Status: result.StatusOK, V6: []netip.Addr{ip}}
		if i == 0 {
			host.V4 = []netip.Addr{v4}
		}
		b.Domains = append(b.Domains, result.Domain{Name: name, Rank: i + 1, TLD: "test", Suffix: "test", Status: result.StatusOK,
			Hosts: []result.HostRef{{Role: result.RoleWWW, Name: host.Name}}})
		b.Hosts = append(b.Hosts, host)
		b.Addresses = append(b.Addresses, result.Address{IP: ip})
		east = append(east, store.Measurement{IP: ip, Kind: result.KindTCP443, Value: open(443)},
			store.Measurement{IP: ip, Kind: result.KindTCP80, Value: open(80)})
		w443 := open(443)
		if i < differ {
			w443 = &tcpport.Result{Port: 443, State: tcpport.StateFiltered}
		}
		west = append(west, store.Measurement{IP: ip, Kind: result.KindTCP443, Value: w443, Vantage: "west"},
			store.Measurement{IP: ip, Kind: result.KindTCP80, Value: open(80), Vantage: "west"})
	}
	b.Addresses = append(b.Addresses, result.Address{IP: v4})
	east = append(east, store.Measurement{IP: v4, Kind: result.KindPing, Value: &ping.Result{Sent: 3, LossPercent: 100}})
	west = append(west, store.Measurement{IP: v4, Kind: result.KindPing, Value: &ping.Result{Sent: 3, Received: 3}, Vantage: "west"})
	if _, err := st.AddDomains(ctx, run, es); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(ctx, run, b); err != nil {
		t.Fatal(err)
	}
	for _, ms := range [][]store.Measurement{east, west} {
		if err := st.SaveMeasurements(ctx, run, ms); err != nil {
			t.Fatal(err)
		}
	}
	r, _ := st.GetRun(ctx, run)
	r.State, r.Loaded, r.Finished = store.RunDone, true, r.Started.Add(time.Hour)
	if err := st.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := summary.Build(ctx, st, run, nil); err != nil {
		t.Fatal(err)
	}
	return run, v6s, v4
}

// TestVantagesPage serves a run measured from two vantages, where addresses differ:
// the runs page links to the comparison, which counts what each vantage reached and
// lists, a page at a time, the addresses one reached and the other did not; the API
// answers the same as JSON; unknown vantages and bad parameters are clear errors.
func TestVantagesPage(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const n, differ = 70, 60 // more than a page of differences
	run, v6s, v4 := vantageRun(t, st, n, differ)
	srv, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	get := func(path string) (int, string) {
		t.Helper()
		res, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	base := fmt.Sprintf("/runs/%d/vantages", run)
	if code, body := get("/runs"); code != 200 || !strings.Contains(body, `href="`+base+`"`) {
		t.Errorf("/runs: %d, no link to %s", code, base)
	}

	// The API: counts, then every page of east-not-west.
	type apiAnswer struct {
		Run      int64          `json:"run"`
		Vantages []vantageCount `json:"vantages"`
		A, B     string
		OnlyA    []reachDiff `json:"only_a"`
		Next     string      `json:"next"`
	}
	api := func(query string) apiAnswer {
		t.Helper()
		code, body := get(fmt.Sprintf("/api/v1/runs/%d/vantages%s", run, query))
		var a apiAnswer
		if err := json.Unmarshal([]byte(body), &a); code != 200 || err != nil {
			t.Fatalf("API %s: %d %s (%v)", query, code, body, err)
		}
		return a
	}
	first := api("")
	wantCounts := []vantageCount{
		{Vantage: "east", Own: true, V4: familyCount{Probed: 1}, V6: familyCount{Probed: n, TCP80: n, TCP443: n}},
		{Vantage: "west", V4: familyCount{Probed: 1, Ping: 1}, V6: familyCount{Probed: n, TCP80: n, TCP443: n - differ}},
	}
	if diff := cmp.Diff(wantCounts, first.Vantages); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if first.A != "east" || first.B != "west" || len(first.OnlyA) != vantagePage || first.Next == "" {
		t.Errorf("first page: a %q b %q, %d addresses, next %q; want east, west, a full page and a next", first.A, first.B, len(first.OnlyA), first.Next)
	}
	var listed []reachDiff
	page := first
	for i := 0; ; i++ {
		listed = append(listed, page.OnlyA...)
		if page.Next == "" || i > 5 {
			break
		}
		page = api("?after=" + page.Next)
	}
	var want []reachDiff
	for _, ip := range v6s[:differ] {
		want = append(want, reachDiff{IP: ip.String(), Kinds: []string{result.KindTCP443}})
	}
	slices.SortFunc(want, func(a, b reachDiff) int { return strings.Compare(a.IP, b.IP) }) // address text order
	if diff := cmp.Diff(want, listed); diff != "" {
		t.Errorf("reachable from east, not from west, all pages (-want +got):\n%s", diff)
	}
	other := api("?a=west&b=east")
	if diff := cmp.Diff([]reachDiff{{IP: v4.String(), Kinds: []string{result.KindPing}}}, other.OnlyA); diff != "" || other.Next != "" {
		t.Errorf("reachable from west, not from east (next %q) (-want +got):\n%s", other.Next, diff)
	}

	// The page: the counts, the list and the link to the next page.
	code, body := get(base)
	if code != 200 {
		t.Fatalf("%s: %d", base, code)
	}
	contains(t, base, body, "Reachable from east, not from west", "<code>"+v6s[0].String()+"</code>", "tcp443",
		`rel="next"`, "the run's own", `<option selected>west</option>`)
	if strings.Contains(body, "<code>"+v6s[differ].String()+"</code>") {
		t.Errorf("%s lists %s, which both vantages reached", base, v6s[differ])
	}
	_, body = get(base + "?a=west&b=east")
	contains(t, base+"?a=west", body, "Reachable from west, not from east", "<code>"+v4.String()+"</code>")

	// A third vantage measures the finished run: the cached runs page follows.
	if _, body := get("/runs"); !strings.Contains(body, "and 1 more") {
		t.Errorf("/runs does not say the run has one more vantage")
	}
	if err := st.SaveMeasurements(ctx, run, []store.Measurement{{IP: v4, Kind: result.KindPing, Value: &ping.Result{Sent: 1}, Vantage: "north"}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if _, body := get("/runs"); strings.Contains(body, "and 2 more") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/runs still does not show the third vantage after 10 s")
		}
	}

	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{fmt.Sprintf("/api/v1/runs/%d/vantages?b=south", run), 404, fmt.Sprintf(`run %d has no vantage \"south\": its vantages are \"east\", \"north\", \"west\"`, run)},
		{fmt.Sprintf("/api/v1/runs/%d/vantages?a=west&b=west", run), 400, `a and b name the same vantage \"west\"`},
		{fmt.Sprintf("/api/v1/runs/%d/vantages?after=x", run), 400, `after=\"x\": want an address`},
		{"/api/v1/runs/99/vantages", 404, "no run 99"},
		{base + "?a=south", 404, "has no vantage &#34;south&#34;"},
	} {
		code, body := get(c.path)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s; want %d with %s", c.path, code, body, c.code, c.want)
		}
	}
}

// TestVantagesBrowser follows the runs page's link to the comparison of vantages in
// headless Chromium, checks its accessibility basics and that nothing breaks the CSP,
// and compares the other way round with the page's form.
func TestVantagesBrowser(t *testing.T) {
	deadline := time.Now().Add(browserBound)
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id, _, v4 := vantageRun(t, st, 5, 2)
	s, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	b := newBrowser(t, srv.URL, deadline)
	page := fmt.Sprintf("/runs/%d/vantages", id)
	b.open(t, "/runs")
	b.follow(t, "/runs", `a[href="`+page+`"]`, page)
	b.checkA11y(t, page)
	b.screenshot(t, artifactDir(t), "vantages")
	b.step(t, "compare west with east", chromedp.SetValue(chromedp.CSS(`select[name="a"]`), "west"),
		chromedp.SetValue(chromedp.CSS(`select[name="b"]`), "east"))
	b.navigate(t, "submit the comparison", chromedp.Click(chromedp.CSS(`form.compare button[type="submit"]`)))
	if h2 := run(t, b, "heading", chromedp.Text(chromedp.CSS("main h2"))); h2 != "Reachable from west, not from east" {
		t.Errorf("after the form: heading %q", h2)
	}
	if got := run(t, b, "listed", chromedp.Text(chromedp.CSS("main table.data tbody code"))); got != v4.String() {
		t.Errorf("after the form: first address %q, want %s", got, v4)
	}
	b.checkEvents(t, page)
}

// BenchmarkVantageCounts counts the second vantage of a synthetic run
// (V6MATRIX_BENCH_DOMAINS domains, default 20,000: about 0.86 addresses a domain): what
// the comparison page pays once a minute per vantage. It reports the addresses read.
func BenchmarkVantageCounts(b *testing.B) {
	n := 20000
	if v := os.Getenv("V6MATRIX_BENCH_DOMAINS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil {
			b.Fatalf("V6MATRIX_BENCH_DOMAINS %q: %v", v, err)
		}
	}
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "b.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	run, err := synthrun.Fill(ctx, st, synthrun.Config{Domains: n, Seed: 1, Started: time.Now()})
	if err != nil {
		b.Fatal(err)
	}
	// West: the run's own results, with every seventh address's pings unanswered.
	var ms []store.Measurement
	err = st.VantageResults(ctx, run, "", "", vantageKinds, "", func(p store.VantagePair) bool {
		for _, k := range vantageKinds {
			v := p.A.Measurement(k)
			if k == result.KindPing && p.A.Ping != nil && p.A.IP.As16()[15]%7 == 0 {
				silent := *p.A.Ping
				silent.Received = 0
				v = &silent
			}
			if reachable(&p.A, k) != result.Unknown {
				ms = append(ms, store.Measurement{IP: p.A.IP, Kind: k, Value: v, Vantage: "west"})
			}
		}
		return true
	})
	if err == nil {
		err = st.SaveMeasurements(ctx, run, ms)
	}
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var c vantageCount
	for b.Loop() {
		clear(s.vantageCounts)
		if c, err = s.vantageCount(ctx, run, "west"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(c.V4.Probed+c.V6.Probed), "addresses")
}
