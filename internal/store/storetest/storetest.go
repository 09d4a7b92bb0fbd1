// Package storetest is the contract every store.Store implementation keeps: Run checks
// one store's answers against what the interface promises, and Compare fills two
// stores with the same synthetic runs and requires the same answers from both, down
// to byte-identical exports. SQLite and PostgreSQL both run it.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/probe/dns53"
	"github.com/v6matrix/v6matrix/internal/probe/ping"
	"github.com/v6matrix/v6matrix/internal/probe/tcpport"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// addrCmp compares netip.Addr values (cmp cannot see their unexported fields).
var addrCmp = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// Run runs the contract against stores that open returns: each call a new, empty store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Run("runs", func(t *testing.T) { testRuns(t, open(t)) })
	t.Run("domains", func(t *testing.T) { testDomains(t, open(t)) })
	t.Run("list", func(t *testing.T) { testList(t, open(t)) })
	t.Run("save and details", func(t *testing.T) { testSave(t, open(t)) })
	t.Run("hosts written once", func(t *testing.T) { testHosts(t, open(t)) })
	t.Run("targets", func(t *testing.T) { testTargets(t, open(t)) })
	t.Run("summaries", func(t *testing.T) { testSummaries(t, open(t)) })
	t.Run("delete", func(t *testing.T) { testDelete(t, open(t)) })
	t.Run("vantages", func(t *testing.T) { testVantages(t, open(t)) })
}

func testRuns(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, err := s.LatestRun(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LatestRun of an empty store = %v, want ErrNotFound", err)
	}
	started := time.Date(2026, 11, 2, 3, 4, 5, 600, time.UTC)
	in := store.Run{Started: started, ListName: "top.csv", ListSHA256: "ab12", Options: `{"x":1}`, Vantage: "v1", State: store.RunLoading}
	a, err := s.CreateRun(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CreateRun(ctx, store.Run{Started: started.Add(time.Hour), ListName: "second.csv", State: store.RunCrawling})
	if err != nil {
		t.Fatal(err)
	}
	if b <= a {
		t.Errorf("run ids %d then %d: want increasing", a, b)
	}
	in.ID, in.Finished, in.State, in.Loaded, in.Skipped, in.Duplicates = a, started.Add(2*time.Hour), store.RunDone, true, 3, 4
	in.Options, in.ListSHA256 = `{"x":2}`, "cd34"
	if err := s.UpdateRun(ctx, in); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRun(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, got); diff != "" {
		t.Errorf("run after UpdateRun (-want +got):\n%s", diff)
	}
	if l, err := s.LatestRun(ctx); err != nil || l.ID != b {
		t.Errorf("LatestRun = %d, %v; want %d", l.ID, err, b)
	}
	runs, err := s.ListRuns(ctx)
	if err != nil || len(runs) != 2 || runs[0].ID != a || runs[1].ID != b {
		t.Errorf("ListRuns = %+v, %v; want runs %d and %d, oldest first", runs, err, a, b)
	}
	if _, err := s.GetRun(ctx, b+100); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRun of a missing run = %v, want ErrNotFound", err)
	}
}

func testDomains(t *testing.T, s store.Store) {
	ctx := context.Background()
	run, err := s.CreateRun(ctx, store.Run{Started: time.Unix(1e9, 0), ListName: "l.csv", State: store.RunLoading})
	if err != nil {
		t.Fatal(err)
	}
	es := []domains.Entry{{Rank: 5, Name: "b.uk", TLD: "uk", Suffix: "co.uk"}, {Rank: 2, Name: "a.uk", TLD: "uk"},
		{Rank: 1, Name: "b.uk", TLD: "uk", Suffix: "co.uk"}, {Rank: 3, Name: "c.net", TLD: "net"}, {Rank: 4, Name: "d.uk", TLD: "uk"},
		{Rank: 6, Name: "e.uk", TLD: "uk"}}
	if n, err := s.AddDomains(ctx, run, es); err != nil || n != 5 {
		t.Fatalf("AddDomains = %d, %v; want 5 new", n, err)
	}
	// A later batch: one new name, one known name with a worse rank, one with a better.
	more := []domains.Entry{{Rank: 7, Name: "f.net", TLD: "net"}, {Rank: 9, Name: "a.uk", TLD: "uk"}, {Rank: 3, Name: "e.uk", TLD: "uk"}}
	if n, err := s.AddDomains(ctx, run, more); err != nil || n != 1 {
		t.Fatalf("AddDomains again = %d, %v; want 1 new", n, err)
	}
	if n, err := s.KeepTop(ctx, run, 3); err != nil || n != 1 {
		t.Fatalf("KeepTop(3) = %d, %v; want d.uk dropped", n, err)
	}
	want := []result.Domain{{Name: "b.uk", Rank: 1, TLD: "uk", Suffix: "co.uk"}, {Name: "a.uk", Rank: 2, TLD: "uk"},
		{Name: "c.net", Rank: 3, TLD: "net"}, {Name: "e.uk", Rank: 3, TLD: "uk"}, {Name: "f.net", Rank: 7, TLD: "net"}}
	// One at a time through the cursor: the same list as one page.
	var paged []result.Domain
	after := store.Cursor{Rank: -1}
	for range 10 {
		page, err := s.Pending(ctx, run, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, page...)
		if len(page) < 2 {
			break
		}
		after = store.Cursor{Rank: page[1].Rank, Name: page[1].Name}
	}
	if diff := cmp.Diff(want, paged); diff != "" {
		t.Errorf("pending pages in (rank, name) order, best rank kept (-want +got):\n%s", diff)
	}
	if err := s.Save(ctx, run, store.Batch{Domains: []result.Domain{{Name: "a.uk", Rank: 2, TLD: "uk", Status: result.StatusNXDomain}}}); err != nil {
		t.Fatal(err)
	}
	page, err := s.Pending(ctx, run, store.Cursor{Rank: 1, Name: "b.uk"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[2:], page); diff != "" {
		t.Errorf("pending after b.uk, a.uk done (-want +got):\n%s", diff)
	}
	c, err := s.Counts(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(store.Counts{Total: 5, Done: 1, ByStatus: map[result.Status]int{result.StatusNXDomain: 1}}, c); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

// everyKind returns an address with a value for every measurement kind: the typed
// results the crawl writes, and a non-nil value of the other kinds' types.
func everyKind(ip netip.Addr) (result.Address, []store.Measurement) {
	ms := 12.375
	ad := result.Address{IP: ip, Class: &result.Class{Valid: true, Type: "slaac", PrefixID: "2001:db8:1::/48", IID: "0211:22ff:fe33:4455"}}
	var out []store.Measurement
	for _, k := range result.Kinds {
		f := reflect.ValueOf(ad.Measurement(k)).Elem()
		if f.Kind() == reflect.Pointer {
			f.Set(reflect.New(f.Type().Elem()))
		} else {
			f.SetString("special-purpose")
		}
	}
	ad.Ping = &ping.Result{Sent: 3, Received: 2, LossPercent: 33.333333333333336, MinMillis: &ms, AvgMillis: &ms, MaxMillis: &ms, StdMillis: &ms}
	ad.TCP443 = &tcpport.Result{Port: 443, State: "open", ConnectMillis: &ms}
	for _, k := range result.Kinds {
		out = append(out, store.Measurement{IP: ip, Kind: k, Value: reflect.ValueOf(ad.Measurement(k)).Elem().Interface()})
	}
	return ad, out
}

func testSave(t *testing.T, s store.Store) {
	ctx := context.Background()
	run, err := s.CreateRun(ctx, store.Run{Started: time.Unix(1e9, 0), ListName: "l.csv", State: store.RunCrawling})
	if err != nil {
		t.Fatal(err)
	}
	es := []domains.Entry{{Rank: 1, Name: "a.example", TLD: "example", Suffix: "example"}, {Rank: 2, Name: "nomail.example", TLD: "example", Suffix: "example"},
		{Rank: 2, Name: "broken.example", TLD: "example", Suffix: "example"}, {Rank: 4, Name: "todo.example", TLD: "example", Suffix: "example"}}
	if _, err := s.AddDomains(ctx, run, es); err != nil {
		t.Fatal(err)
	}
	v6, v4, bare := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("198.18.0.1"), netip.MustParseAddr("2001:db8::2")
	soa := &result.SOA{MName: "ns1.a.example", RName: "hostmaster.a.example", Serial: 4294967295, Refresh: 7200, Retry: 3600,
		Expire: 1209600, Minimum: 300, PrimaryByRank: "ns1.a.example", PrimaryInhouse: true, Total: 2}
	doms := []result.Domain{
		{Name: "a.example", Rank: 1, TLD: "example", Suffix: "example", Status: result.StatusOK, SOA: soa,
			Hosts:    []result.HostRef{{Role: result.RoleNS, Name: "ns1.a.example", Rank: 1}, {Role: result.RoleWWW, Name: "www.a.example"}},
			NSSource: result.NSParent,
			Delegation: &result.Delegation{Status: result.StatusOK, Zone: "example", Server: netip.MustParseAddr("2001:db8:53::1"),
				NS: []string{"ns1.a.example"}, Glue: []result.GlueAddr{{Name: "ns1.a.example", IP: v6}}, ChildOnly: []string{"ns2.a.example"}}},
		{Name: "nomail.example", Rank: 2, TLD: "example", Suffix: "example", Status: result.StatusOK, NullMX: true},
		{Name: "broken.example", Rank: 2, TLD: "example", Suffix: "example", Status: result.StatusServFail, Error: "SERVFAIL from every server"},
	}
	hosts := []result.Host{
		{Name: "ns1.a.example", Status: result.StatusOK, V4: []netip.Addr{v4}, V6: []netip.Addr{v6},
			AStatus: result.StatusOK, AAAAStatus: result.StatusTimeout},
		{Name: "www.a.example", Status: result.StatusOK, CNAME: []string{"cdn.example", "edge.cdn.example"}, V6: []netip.Addr{v6, bare}},
	}
	full, ms := everyKind(v6)
	addrs := []result.Address{full, {IP: v4}, {IP: bare, Class: &result.Class{Valid: false, Type: "documentation"}}}
	addrs[0].Class = full.Class
	if err := s.Save(ctx, run, store.Batch{Domains: doms, Hosts: hosts, Addresses: []result.Address{{IP: v6, Class: full.Class}, addrs[1], addrs[2]}}); err != nil {
		t.Fatal(err)
	}
	// A first value of a kind, replaced by the later one, in a later batch and in the
	// same batch (where the rows are written in key order, not in the batch's).
	first := store.Measurement{IP: v6, Kind: result.KindPing, Value: &ping.Result{Sent: 1}}
	if err := s.SaveMeasurements(ctx, run, []store.Measurement{first}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveMeasurements(ctx, run, append([]store.Measurement{first}, ms...)); err != nil {
		t.Fatal(err)
	}
	tcp := &tcpport.Result{Port: 25, State: "filtered"}
	if err := s.SaveMeasurements(ctx, run, []store.Measurement{{IP: v4, Kind: result.KindTCP25, Value: tcp}}); err != nil {
		t.Fatal(err)
	}
	addrs[1].TCP25 = tcp
	// A name server check belongs to a domain and an address, not to the address alone.
	serial, aa := uint32(7), true
	check := &dns53.Result{Status: "ok", Rcode: "NOERROR", Authoritative: &aa, SOASerial: &serial}
	if err := s.SaveMeasurements(ctx, run, []store.Measurement{{IP: v4, Kind: result.KindDNS53, Value: check, Domain: "a.example"}}); err != nil {
		t.Fatal(err)
	}

	var got []store.Detail
	if err := s.Details(ctx, run, "", func(d store.Detail) error { got = append(got, d); return nil }); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range got {
		names = append(names, d.Name)
	}
	if diff := cmp.Diff([]string{"a.example", "broken.example", "nomail.example", "todo.example"}, names); diff != "" {
		t.Errorf("Details in (rank, name) order (-want +got):\n%s", diff)
	}
	if len(got) == 4 {
		if diff := cmp.Diff(doms[0], got[0].Domain, addrCmp); diff != "" {
			t.Errorf("domain with SOA and delegation (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[netip.Addr]*dns53.Result{v4: check}, got[0].NSChecks, addrCmp); diff != "" {
			t.Errorf("name server checks (-want +got):\n%s", diff)
		}
		if got[1].NSChecks != nil {
			t.Errorf("a domain without checks has %v", got[1].NSChecks)
		}
		if diff := cmp.Diff(doms[2], got[1].Domain); diff != "" {
			t.Errorf("failed domain (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(doms[1], got[2].Domain); diff != "" {
			t.Errorf("null MX domain (-want +got):\n%s", diff)
		}
		if got[3].Status != "" {
			t.Errorf("unfinished domain has status %q", got[3].Status)
		}
		wantHosts := map[string]result.Host{hosts[0].Name: hosts[0], hosts[1].Name: hosts[1]}
		if diff := cmp.Diff(wantHosts, got[0].HostsByName, addrCmp, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("hosts (-want +got):\n%s", diff)
		}
		wantAddrs := map[netip.Addr]result.Address{v6: full, v4: addrs[1], bare: addrs[2]}
		if diff := cmp.Diff(wantAddrs, got[0].Addrs, addrCmp); diff != "" {
			t.Errorf("addresses with every measurement kind (-want +got):\n%s", diff)
		}
	}
	var some []string
	if err := s.DetailsOf(ctx, run, "", []string{"a.example", "missing.example", "nomail.example"}, func(d store.Detail) error {
		some = append(some, d.Name)
		if d.Name == "a.example" && len(got) > 0 {
			if diff := cmp.Diff(got[0].Addrs, d.Addrs, addrCmp); diff != "" {
				t.Errorf("DetailsOf(a.example) addresses (-Details +DetailsOf):\n%s", diff)
			}
			if diff := cmp.Diff(got[0].NSChecks, d.NSChecks, addrCmp); diff != "" {
				t.Errorf("DetailsOf(a.example) name server checks (-Details +DetailsOf):\n%s", diff)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a.example", "nomail.example"}, some); diff != "" {
		t.Errorf("DetailsOf the named domains the run has (-want +got):\n%s", diff)
	}
	one, err := s.Domain(ctx, run, "", "a.example")
	if err != nil || one.Name != "a.example" || len(one.Addrs) != 3 {
		t.Errorf("Domain(a.example) = %s with %d addresses, %v", one.Name, len(one.Addrs), err)
	}
	if _, err := s.Domain(ctx, run, "", "missing.example"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Domain(missing) = %v, want ErrNotFound", err)
	}
	// A domain's document is what Domain returns, every measurement kind included,
	// though Details shares its maps with the other domains of the page.
	if _, err := s.DomainDoc(ctx, run, "a.example"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DomainDoc before SaveDocs = %v, want ErrNotFound", err)
	}
	if err := s.SaveDocs(ctx, store.Claim{Run: run}, got); err != nil {
		t.Fatal(err)
	}
	for _, d := range got {
		want, err := s.Domain(ctx, run, "", d.Name)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := s.DomainDoc(ctx, run, d.Name)
		if diff := cmp.Diff(want, doc, addrCmp, cmpopts.EquateEmpty()); err != nil || diff != "" {
			t.Errorf("DomainDoc(%s) (%v) (-Domain +document):\n%s", d.Name, err, diff)
		}
	}
	if _, err := s.DomainDoc(ctx, run, "missing.example"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DomainDoc(missing) = %v, want ErrNotFound", err)
	}
	measured, err := s.Measured(ctx, run, "")
	if err != nil {
		t.Fatal(err)
	}
	wantMeasured := map[netip.Addr]map[string]bool{v4: {result.KindTCP25: true}, v6: {}}
	kinds := map[string]bool{result.KindTCP25: true, result.KindDNS53: true}
	for _, k := range result.Kinds {
		wantMeasured[v6][k], kinds[k] = true, true
	}
	if diff := cmp.Diff(wantMeasured, measured, addrCmp); diff != "" {
		t.Errorf("Measured (-want +got):\n%s", diff)
	}
	if got, err := s.MeasuredKinds(ctx, run, ""); err != nil || !cmp.Equal(kinds, got) {
		t.Errorf("MeasuredKinds = %v, %v; want %v", got, err, kinds)
	}
	checked, err := s.NSChecked(ctx, run, "")
	if diff := cmp.Diff(map[string]map[netip.Addr]bool{"a.example": {v4: true}}, checked, addrCmp); err != nil || diff != "" {
		t.Errorf("NSChecked (%v) (-want +got):\n%s", err, diff)
	}
	c, err := s.Counts(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	wantCounts := store.Counts{Total: 4, Done: 3, Addresses: 3,
		ByStatus: map[result.Status]int{result.StatusOK: 2, result.StatusServFail: 1}}
	if diff := cmp.Diff(wantCounts, c); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

func testList(t *testing.T, s store.Store) {
	ctx := context.Background()
	run, err := s.CreateRun(ctx, store.Run{Started: time.Unix(1e9, 0), ListName: "l.csv", State: store.RunLoading})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenList(ctx, run); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("OpenList before SaveList = %v, want ErrNotFound", err)
	}
	// More than two chunks, not a whole number of them.
	list := bytes.Repeat([]byte("1,example.com\n2,example.net\n"), 100_000)
	sum, size, err := s.SaveList(ctx, run, bytes.NewReader(list))
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(list)
	if sum != hex.EncodeToString(want[:]) || size != int64(len(list)) {
		t.Errorf("SaveList = %s, %d; want %x, %d", sum, size, want, len(list))
	}
	if r, err := s.GetRun(ctx, run); err != nil || r.ListSHA256 != sum {
		t.Errorf("run's list_sha256 = %q, %v; want %s", r.ListSHA256, err, sum)
	}
	rc, err := s.OpenList(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, list) {
		t.Errorf("OpenList read %d bytes, %v; want the %d stored", len(got), err, len(list))
	}
	empty, err := s.CreateRun(ctx, store.Run{Started: time.Unix(1e9, 0), ListName: "empty.csv", State: store.RunLoading})
	if err != nil {
		t.Fatal(err)
	}
	if _, size, err := s.SaveList(ctx, empty, bytes.NewReader(nil)); err != nil || size != 0 {
		t.Fatalf("SaveList of an empty list = %d, %v", size, err)
	}
	if rc, err := s.OpenList(ctx, empty); err != nil {
		t.Errorf("OpenList of an empty stored list = %v, want it found", err)
	} else if b, err := io.ReadAll(rc); err != nil || len(b) != 0 {
		t.Errorf("empty list read %d bytes, %v", len(b), err)
	}
}
