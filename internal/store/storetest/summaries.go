package storetest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/v6matrix/v6matrix/internal/export"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/summary"
	"github.com/v6matrix/v6matrix/internal/synthrun"
)

// SynthDomains is the size of the synthetic runs: more than one page of Details.
const SynthDomains = 1200

// FillSynthetic writes two summarised synthetic "months" (the second with more IPv6)
// and returns their ids.
func FillSynthetic(t *testing.T, s store.Store) (a, b int64) {
	t.Helper()
	ctx := context.Background()
	var ids [2]int64
	for i := range ids {
		id, err := synthrun.Fill(ctx, s, synthrun.Config{Domains: SynthDomains, Seed: uint64(i + 1), V6Boost: float64(10 * i),
			Started: time.Date(2026, time.Month(10+i), 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		if err := summary.Build(ctx, s, id, nil); err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	return ids[0], ids[1]
}

func testSummaries(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := FillSynthetic(t, s)
	if at, err := s.Summarised(ctx, b); err != nil || at.IsZero() {
		t.Errorf("Summarised(%d) = %v, %v; want a time", b, at, err)
	}
	tlds, err := s.Aggregates(ctx, b, "tld")
	if err != nil || len(tlds) < 10 {
		t.Fatalf("Aggregates(tld) = %d, %v; want the synthetic TLDs", len(tlds), err)
	}
	total := 0
	for _, g := range tlds {
		total += g.Domains
		one, err := s.Aggregate(ctx, b, "tld", g.Key)
		if err != nil || !cmp.Equal(g, one) {
			t.Errorf("Aggregate(tld, %s) = %+v, %v; want %+v", g.Key, one, err, g)
		}
	}
	if total != SynthDomains {
		t.Errorf("TLD aggregates count %d domains, want %d", total, SynthDomains)
	}
	if trend, err := s.Trend(ctx, "run", ""); err != nil || len(trend) != 2 || trend[0].Run != a || trend[1].Run != b {
		t.Errorf("Trend(run) = %+v, %v; want runs %d and %d", trend, err, a, b)
	}
	// Every order, both directions: pages of 7 through the cursor are the whole list in
	// one query, in the order's key.
	tld := tlds[0].Key
	for _, k := range store.SortKeys {
		for _, desc := range []bool{false, true} {
			whole, err := s.DomainSummaries(ctx, b, store.SummaryQuery{TLD: tld, Sort: k, Desc: desc, Limit: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if len(whole) != tlds[0].Domains {
				t.Errorf("%s desc=%v: %d domains of %s, want %d", k, desc, len(whole), tld, tlds[0].Domains)
			}
			if !sort.SliceIsSorted(whole, func(i, j int) bool { return less(&whole[i], &whole[j], k) != desc }) {
				t.Errorf("%s desc=%v: not in order", k, desc)
			}
			paged := pages(t, s, b, store.SummaryQuery{TLD: tld, Sort: k, Desc: desc, Limit: 7})
			if diff := cmp.Diff(whole, paged); diff != "" {
				t.Errorf("%s desc=%v: pages differ from the whole list (-whole +pages):\n%s", k, desc, diff)
			}
		}
	}
	name := "d0000001." + synthrun.SuffixOf(0)
	if d, err := s.DomainSummary(ctx, b, name); err != nil || d.Name != name || d.Rank != 1 {
		t.Errorf("DomainSummary(%s) = %+v, %v", name, d, err)
	}
	if h, err := s.History(ctx, name); err != nil || len(h) != 2 || h[0].Run != a || h[1].Run != b {
		t.Errorf("History(%s) = %+v, %v; want runs %d and %d", name, h, err, a, b)
	}
	// A run being crawled again (a provisional summary) is no point of the history but
	// on its own page.
	rb, err := s.GetRun(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	crawling := rb
	crawling.State = store.RunCrawling
	if err := s.UpdateRun(ctx, crawling); err != nil {
		t.Fatal(err)
	}
	if h, err := s.History(ctx, name); err != nil || len(h) != 1 || h[0].Run != a {
		t.Errorf("History(%s) with run %d crawling = %+v, %v; want run %d alone", name, b, h, err, a)
	}
	if _, h, err := s.DomainPage(ctx, b, name); err != nil || len(h) != 2 {
		t.Errorf("DomainPage(%d, %s) with the run crawling: history %+v, %v; want runs %d and %d", b, name, h, err, a, b)
	}
	if err := s.UpdateRun(ctx, rb); err != nil {
		t.Fatal(err)
	}
	// Build stored every domain's document: the same as its tables give.
	n := 0
	err = s.Details(ctx, b, "", func(d store.Detail) error {
		want, err := s.Domain(ctx, b, "", d.Name)
		if err != nil {
			return err
		}
		doc, err := s.DomainDoc(ctx, b, d.Name)
		if diff := cmp.Diff(want, doc, addrCmp, cmpopts.EquateEmpty()); err != nil || diff != "" {
			t.Errorf("DomainDoc(%s) (%v) (-Domain +document):\n%s", d.Name, err, diff)
		}
		if n%100 == 0 {
			page, hist, err := s.DomainPage(ctx, b, d.Name)
			wantHist, _ := s.History(ctx, d.Name)
			if diff := cmp.Diff(want, page, addrCmp, cmpopts.EquateEmpty()); err != nil || diff != "" {
				t.Errorf("DomainPage(%s) (%v) (-Domain +document):\n%s", d.Name, err, diff)
			}
			if diff := cmp.Diff(wantHist, hist); diff != "" || len(hist) != 2 {
				t.Errorf("DomainPage(%s): history (-History +page):\n%s", d.Name, diff)
			}
		}
		n++
		return nil
	})
	if err != nil || n != SynthDomains {
		t.Errorf("documents of %d domains checked (%v), want %d", n, err, SynthDomains)
	}
	if ok, err := s.Documented(ctx, b); err != nil || !ok {
		t.Errorf("Documented(%d) = %v, %v after Build; want true", b, ok, err)
	}
	if err := s.ClearSummary(ctx, store.Claim{Run: b}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DomainDoc(ctx, b, name); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DomainDoc after ClearSummary = %v, want ErrNotFound", err)
	}
	if ok, err := s.Documented(ctx, b); err != nil || ok {
		t.Errorf("Documented(%d) = %v, %v after ClearSummary; want false", b, ok, err)
	}
	if _, hist, err := s.DomainPage(ctx, b, name); !errors.Is(err, store.ErrNotFound) || len(hist) != 1 || hist[0].Run != a {
		t.Errorf("DomainPage(%s) after ClearSummary = history %+v, %v; want run %d's, ErrNotFound", name, hist, err, a)
	}
	// BuildDocs stores the documents alone, as Build does.
	if err := summary.BuildDocs(ctx, s, b, nil); err != nil {
		t.Fatal(err)
	}
	if doc, err := s.DomainDoc(ctx, b, name); err != nil || doc.Name != name {
		t.Errorf("DomainDoc(%s) after BuildDocs = %s, %v", name, doc.Name, err)
	}
	if err := summary.Build(ctx, s, b, nil); err != nil {
		t.Fatal(err)
	}
	found, _, err := s.Search(ctx, b, "d000001", 5)
	if err != nil || len(found) != 5 {
		t.Fatalf("Search domains = %d, %v; want 5", len(found), err)
	}
	for _, d := range found {
		if one, err := s.DomainSummary(ctx, b, d.Name); err != nil || !cmp.Equal(one, d) {
			t.Errorf("Search found %+v, DomainSummary says %+v, %v", d, one, err)
		}
	}
	for i, d := range found {
		if !strings.HasPrefix(d.Name, "d000001") || (i > 0 && found[i-1].Name >= d.Name) {
			t.Errorf("Search: %s at %d: want the prefix, in name order", d.Name, i)
		}
	}
	testProvisional(t, s, b, found[0])
	some, hosts, err := s.Search(ctx, b, "", 3)
	if err != nil || len(hosts) != 3 || !sort.StringsAreSorted(hosts) || len(some) != 3 {
		t.Errorf("Search hosts = %v, %v (and %d domains); want 3 names in order, 3 domains", hosts, err, len(some))
	}
	if ds, hs, err := s.Search(ctx, b, "no such prefix", 3); err != nil || len(ds)+len(hs) != 0 {
		t.Errorf("Search(no such prefix) = %v, %v, %v; want nothing", ds, hs, err)
	}
	de, err := s.Located(ctx, b, "country", "DE", 1000, 0)
	if err != nil || len(de) == 0 {
		t.Fatalf("Located(DE) = %d, %v", len(de), err)
	}
	for i, l := range de {
		if l.CountryCode != "DE" || (i > 0 && de[i-1].Domains < l.Domains) {
			t.Errorf("Located(DE) %d: %+v: want DE, the most used first", i, l)
		}
	}
	c, ok, err := s.Diff(ctx, a, b)
	if err != nil || !ok || c.Common != SynthDomains {
		t.Errorf("Diff = %+v, %v, %v; want %d domains in common", c, ok, err, SynthDomains)
	}
	gained := 0
	for _, role := range result.Roles {
		gained += len(changes(t, s, a, b, role, "gained", 1<<20))
		if diff := cmp.Diff(changes(t, s, a, b, role, "lost", 1<<20), changes(t, s, a, b, role, "lost", 3)); diff != "" {
			t.Errorf("%s lost: pages differ (-whole +pages):\n%s", role, diff)
		}
	}
	if want := c.Gained[0] + c.Gained[1] + c.Gained[2] + c.Gained[3]; gained != want || gained == 0 {
		t.Errorf("Changes list %d gains, Diff counts %d: want the same, more than none", gained, want)
	}
}

// less orders summaries as DomainSummaries does.
func less(x, y *result.DomainSummary, k store.SortKey) bool {
	if k == store.SortName {
		return x.Name < y.Name
	}
	kx, ky := store.SortValue(x, k), store.SortValue(y, k)
	return kx < ky || (kx == ky && x.Name < y.Name)
}

// pages reads a whole order through the cursor, a page of q.Limit at a time.
func pages(t *testing.T, s store.Store, run int64, q store.SummaryQuery) []result.DomainSummary {
	t.Helper()
	var out []result.DomainSummary
	for range 10000 {
		page, err := s.DomainSummaries(context.Background(), run, q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < q.Limit {
			return out
		}
		last := &page[len(page)-1]
		q.After = &store.PageCursor{Key: store.SortValue(last, q.Sort), Name: last.Name}
	}
	t.Fatal("paging does not end")
	return nil
}

// changes reads a whole list of changes through the cursor.
func changes(t *testing.T, s store.Store, a, b int64, role result.Role, change string, limit int) []store.Change {
	t.Helper()
	var out []store.Change
	after := store.Cursor{Rank: -1}
	for range 10000 {
		page, err := s.Changes(context.Background(), a, b, role, change, after, limit)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < limit {
			return out
		}
		after = store.Cursor{Rank: page[len(page)-1].Rank, Name: page[len(page)-1].Name}
	}
	t.Fatal("paging does not end")
	return nil
}

// Compare fills two empty stores with the same synthetic runs and requires the same
// answers to every question, and byte-identical exports.
func Compare(t *testing.T, x, y store.Store) {
	xa, xb := FillSynthetic(t, x)
	ya, yb := FillSynthetic(t, y)
	if xa != ya || xb != yb {
		t.Fatalf("run ids %d,%d and %d,%d: want the same in two empty stores", xa, xb, ya, yb)
	}
	Same(t, x, y, xb)
	ctx := context.Background()
	same := func(what string, f func(s store.Store) (any, error)) {
		t.Helper()
		gx, errx := f(x)
		gy, erry := f(y)
		if errx != nil || erry != nil {
			t.Fatalf("%s: %v / %v", what, errx, erry)
		}
		if diff := cmp.Diff(gx, gy, addrCmp); diff != "" {
			t.Errorf("%s differs (-first +second):\n%s", what, diff)
		}
	}
	for _, kind := range []string{"run", "tld", "country", "asn"} {
		same("aggregates "+kind, func(s store.Store) (any, error) { return s.Aggregates(ctx, xb, kind) })
	}
	same("trend", func(s store.Store) (any, error) { return s.Trend(ctx, "tld", "com") })
	tlds, _ := x.Aggregates(ctx, xb, "tld")
	for _, g := range tlds {
		for _, k := range store.SortKeys {
			for _, desc := range []bool{false, true} {
				q := store.SummaryQuery{TLD: g.Key, Sort: k, Desc: desc, Limit: 25}
				same("domains of "+g.Key+" by "+string(k), func(s store.Store) (any, error) { return pages(t, s, xb, q), nil })
			}
		}
	}
	for _, n := range []string{"d0000001." + synthrun.SuffixOf(0), "d0000777." + synthrun.SuffixOf(776)} {
		same("history of "+n, func(s store.Store) (any, error) { return s.History(ctx, n) })
		same("domain "+n, func(s store.Store) (any, error) { return s.Domain(ctx, xb, "", n) })
		same("summary of "+n, func(s store.Store) (any, error) { return s.DomainSummary(ctx, xb, n) })
	}
	for _, q := range []string{"d00002", "ns", "www.d0000", ""} {
		same("search "+q, func(s store.Store) (any, error) {
			ds, hs, err := s.Search(ctx, xb, q, 50)
			return struct {
				D []result.DomainSummary
				H []string
			}{ds, hs}, err
		})
	}
	for _, loc := range [][2]string{{"country", "DE"}, {"country", "US"}, {"asn", "64500"}} {
		same("located "+loc[1], func(s store.Store) (any, error) { return s.Located(ctx, xb, loc[0], loc[1], 40, 5) })
	}
	same("diff", func(s store.Store) (any, error) { c, _, err := s.Diff(ctx, xa, xb); return c, err })
	for _, role := range result.Roles {
		for _, ch := range []string{"gained", "lost"} {
			same("changes", func(s store.Store) (any, error) { return changes(t, s, xa, xb, role, ch, 10), nil })
		}
	}
	same("measured", func(s store.Store) (any, error) { return s.Measured(ctx, xb, "") })
	same("counts", func(s store.Store) (any, error) { return s.Counts(ctx, xb) })

	// A second vantage: both stores answer for it alike and export it byte for byte.
	addVantage(t, x, xb, "west")
	addVantage(t, y, yb, "west")
	same("vantages", func(s store.Store) (any, error) { return s.Vantages(ctx, xb) })
	same("measured from west", func(s store.Store) (any, error) { return s.Measured(ctx, xb, "west") })
	same("checked from west", func(s store.Store) (any, error) { return s.NSChecked(ctx, xb, "west") })
	same("own and west", func(s store.Store) (any, error) {
		var out []store.VantagePair
		err := s.VantageResults(ctx, xb, "", "west", []string{result.KindPing, result.KindTCP443}, "", func(p store.VantagePair) bool {
			out = append(out, p)
			return true
		})
		return out, err
	})
	dx, dy := t.TempDir(), t.TempDir()
	for _, d := range []struct {
		s   store.Store
		dir string
	}{{x, dx}, {y, dy}} {
		if _, err := export.WriteVantage(ctx, d.s, xb, "west", d.dir, []string{"csv", "jsonl"}); err != nil {
			t.Fatal(err)
		}
	}
	SameFiles(t, dx, dy)
}

// addVantage measures run again from vantage v: the run's own results of every
// address, except that the addresses whose last byte is even no longer answer pings.
func addVantage(t *testing.T, s store.Store, run int64, v string) {
	t.Helper()
	ctx := context.Background()
	var ms []store.Measurement
	err := s.Details(ctx, run, "", func(d store.Detail) error {
		for ip, a := range d.Addrs {
			if a.Ping == nil {
				continue
			}
			p := *a.Ping
			if ip.As16()[15]%2 == 0 {
				p.Received, p.LossPercent, p.MinMillis, p.AvgMillis, p.MaxMillis, p.StdMillis = 0, 100, nil, nil, nil, nil
			}
			ms = append(ms, store.Measurement{IP: ip, Kind: result.KindPing, Value: &p, Vantage: v})
			if a.TCP443 != nil {
				ms = append(ms, store.Measurement{IP: ip, Kind: result.KindTCP443, Value: a.TCP443, Vantage: v})
			}
		}
		for ip, c := range d.NSChecks {
			ms = append(ms, store.Measurement{IP: ip, Kind: result.KindDNS53, Value: c, Domain: d.Name, Vantage: v})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveMeasurements(ctx, run, ms); err != nil {
		t.Fatal(err)
	}
}

// Same requires run's exports (CSV and JSON Lines) from two stores to be byte-identical.
func Same(t *testing.T, x, y store.Store, run int64) {
	t.Helper()
	dx, dy := t.TempDir(), t.TempDir()
	for _, d := range []struct {
		s   store.Store
		dir string
	}{{x, dx}, {y, dy}} {
		if _, err := export.Write(context.Background(), d.s, run, d.dir, []string{"csv", "jsonl"}); err != nil {
			t.Fatal(err)
		}
	}
	SameFiles(t, dx, dy)
}

// SameFiles requires two directories to hold the same files with the same bytes.
func SameFiles(t *testing.T, dx, dy string) {
	t.Helper()
	fx, _ := os.ReadDir(dx)
	fy, _ := os.ReadDir(dy)
	var nx, ny []string
	for _, f := range fx {
		nx = append(nx, f.Name())
	}
	for _, f := range fy {
		ny = append(ny, f.Name())
	}
	if diff := cmp.Diff(nx, ny); diff != "" || len(nx) == 0 {
		t.Fatalf("exported files differ (-first +second):\n%s", diff)
	}
	for _, n := range nx {
		bx, _ := os.ReadFile(filepath.Join(dx, n))
		by, _ := os.ReadFile(filepath.Join(dy, n))
		if !bytes.Equal(bx, by) {
			t.Errorf("%s differs between the stores (%d and %d bytes)", n, len(bx), len(by))
		}
	}
}

// testProvisional: once a run's final summary has begun, every write of a provisional
// summary of it is refused and changes nothing; the final summary's writes go on; a run
// crawled again takes provisional summaries again.
func testProvisional(t *testing.T, s store.Store, run int64, one result.DomainSummary) {
	ctx := context.Background()
	prov := store.Claim{Run: run, Provisional: true}
	stale := one
	stale.Rank = one.Rank + 1_000_000
	doc, err := s.DomainDoc(ctx, run, one.Name)
	if err != nil {
		t.Fatal(err)
	}
	built, err := s.Summarised(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetSummaryFinal(ctx, run, true); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"ClearSummary":   s.ClearSummary(ctx, prov),
		"SaveSummaries":  s.SaveSummaries(ctx, prov, []result.DomainSummary{stale}),
		"SaveDocs":       s.SaveDocs(ctx, prov, []store.Detail{{Domain: result.Domain{Name: one.Name, Rank: stale.Rank}}}),
		"SaveAggregates": s.SaveAggregates(ctx, prov, nil, nil),
	} {
		if !errors.Is(err, store.ErrSuperseded) {
			t.Errorf("provisional %s after the final summary began = %v, want ErrSuperseded", what, err)
		}
	}
	if got, err := s.DomainSummary(ctx, run, one.Name); err != nil || got != one {
		t.Errorf("DomainSummary(%s) after refused provisional writes = %+v, %v; want %+v", one.Name, got, err, one)
	}
	if got, err := s.DomainDoc(ctx, run, one.Name); err != nil || got.Rank != doc.Rank {
		t.Errorf("DomainDoc(%s) after refused provisional writes: rank %d, %v; want %d", one.Name, got.Rank, err, doc.Rank)
	}
	if at, err := s.Summarised(ctx, run); err != nil || !at.Equal(built) {
		t.Errorf("Summarised after refused provisional writes = %v, %v; want %v", at, err, built)
	}
	// The final summary writes as before (SetSummaryFinal again is no error).
	if err := s.SetSummaryFinal(ctx, run, true); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSummaries(ctx, store.Claim{Run: run}, []result.DomainSummary{one}); err != nil {
		t.Errorf("final SaveSummaries = %v", err)
	}
	// Crawled again: a provisional write goes through.
	if err := s.SetSummaryFinal(ctx, run, false); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSummaries(ctx, prov, []result.DomainSummary{stale}); err != nil {
		t.Errorf("provisional SaveSummaries of a run crawled again = %v", err)
	}
	if got, err := s.DomainSummary(ctx, run, one.Name); err != nil || got != stale {
		t.Errorf("DomainSummary(%s) after a provisional write = %+v, %v; want %+v", one.Name, got, err, stale)
	}
	if err := s.SaveSummaries(ctx, store.Claim{Run: run}, []result.DomainSummary{one}); err != nil {
		t.Fatal(err)
	}
}
