package storetest

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// crawlingRun creates a crawling run of pending domains, ranked in the order given.
func crawlingRun(t *testing.T, s store.Store, names ...string) int64 {
	t.Helper()
	ctx := context.Background()
	run, err := s.CreateRun(ctx, store.Run{Started: time.Unix(1e9, 0), ListName: "l.csv", State: store.RunCrawling})
	if err != nil {
		t.Fatal(err)
	}
	var es []domains.Entry
	for i, name := range names {
		es = append(es, domains.Entry{Rank: i + 1, Name: name, TLD: "example", Suffix: "example"})
	}
	if _, err := s.AddDomains(ctx, run, es); err != nil {
		t.Fatal(err)
	}
	return run
}

// testHosts: a host row is written once. A later batch carrying the same host (a
// lookup of a resumed crawl that timed out) leaves the row the done domains use, a
// batch carrying it twice keeps the first, and Hosts reads the rows back.
func testHosts(t *testing.T, s store.Store) {
	ctx := context.Background()
	run := crawlingRun(t, s, "a.example", "b.example", "c.example")
	const ns = "ns.shared.example"
	domain := func(name string) result.Domain {
		return result.Domain{Name: name, TLD: "example", Suffix: "example", Status: result.StatusOK,
			Hosts: []result.HostRef{{Role: result.RoleNS, Name: ns, Rank: 1}}}
	}
	found := result.Host{Name: ns, Status: result.StatusOK, V4: []netip.Addr{netip.MustParseAddr("192.0.2.53")},
		V6: []netip.Addr{netip.MustParseAddr("2001:db8::53")}, AStatus: result.StatusOK, AAAAStatus: result.StatusOK}
	lost := result.Host{Name: ns, Status: result.StatusTimeout, AStatus: result.StatusTimeout, AAAAStatus: result.StatusTimeout}
	for _, b := range []store.Batch{
		{Domains: []result.Domain{domain("a.example")}, Hosts: []result.Host{found, lost},
			Addresses: []result.Address{{IP: found.V4[0]}, {IP: found.V6[0]}}},
		{Domains: []result.Domain{domain("b.example")}, Hosts: []result.Host{lost}},
	} {
		if err := s.Save(ctx, run, b); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Hosts(ctx, run, []string{ns, "www.c.example"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]result.Host{ns: found}, got, addrCmp, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Hosts (-want +got):\n%s", diff)
	}
	if got, err := s.Hosts(ctx, run, nil); err != nil || len(got) != 0 {
		t.Errorf("Hosts of no name = %v, %v; want none", got, err)
	}
	err = s.DetailsOf(ctx, run, "", []string{"a.example", "b.example"}, func(d store.Detail) error {
		if diff := cmp.Diff(found, d.HostsByName[ns], addrCmp, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s's name server (-want +got):\n%s", d.Name, diff)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
