package storetest

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/probe/ping"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// FillUnfinished writes an interrupted run whose probe stage has work left: three of
// five domains done, targets merged from two batches, two of three name server pairs
// pending, one address measured. It returns the run's id.
func FillUnfinished(t *testing.T, s store.Store) int64 {
	t.Helper()
	ctx := context.Background()
	run, err := s.CreateRun(ctx, store.Run{Started: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), ListName: "u.csv",
		Vantage: "v", Options: `{"probes":["ping"]}`, State: store.RunInterrupted, Loaded: true})
	if err != nil {
		t.Fatal(err)
	}
	var es []domains.Entry
	for i, n := range []string{"a.example", "b.example", "c.example", "d.example", "e.example"} {
		es = append(es, domains.Entry{Rank: i + 1, Name: n, TLD: "example", Suffix: "example"})
	}
	if _, err := s.AddDomains(ctx, run, es); err != nil {
		t.Fatal(err)
	}
	dom := func(name string, rank int, hosts ...result.HostRef) result.Domain {
		return result.Domain{Name: name, Rank: rank, TLD: "example", Suffix: "example", Status: result.StatusOK, Hosts: hosts}
	}
	host := func(name string, ip netip.Addr) result.Host {
		h := result.Host{Name: name, Status: result.StatusOK, AStatus: result.StatusOK, AAAAStatus: result.StatusOK}
		if ip.Is4() {
			h.V4 = []netip.Addr{ip}
		} else {
			h.V6 = []netip.Addr{ip}
		}
		return h
	}
	ip1, ip2, ip3 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::3")
	batches := []store.Batch{
		{Domains: []result.Domain{dom("c.example", 3, result.HostRef{Role: result.RoleWWW, Name: "www.c.example"}),
			dom("b.example", 2, result.HostRef{Role: result.RoleMX, Name: "mx.b.example", Rank: 10}, result.HostRef{Role: result.RoleNS, Name: "ns.b.example"})},
			Hosts:     []result.Host{host("www.c.example", ip1), host("mx.b.example", ip2), host("ns.b.example", ip2)},
			Addresses: []result.Address{{IP: ip1}, {IP: ip2}},
			Targets: []store.Target{
				{IP: ip1, Roles: store.RoleAddr | store.RoleWWW, WWW: "www.c.example", WWWRank: 3, Host: "www.c.example", HostRank: 3},
				{IP: ip2, Roles: store.RoleAddr | store.RoleMX, MX: "mx.b.example", MXRank: 2, Host: "mx.b.example", HostRank: 2},
			},
			NSTargets: []store.NSTarget{{Domain: "b.example", Host: "ns.b.example", IP: ip2}, {Domain: "c.example", Host: "ns.c.example", IP: ip2}}},
		{Domains: []result.Domain{dom("a.example", 1, result.HostRef{Role: result.RoleNTP, Name: "ntp.a.example"}, result.HostRef{Role: result.RoleNS, Name: "ns.a.example"})},
			Hosts:     []result.Host{host("ntp.a.example", ip1), host("ns.a.example", ip3)},
			Addresses: []result.Address{{IP: ip3}},
			Targets: []store.Target{
				{IP: ip1, Roles: store.RoleAddr | store.RoleNTP, Host: "ntp.a.example", HostRank: 1},
				{IP: ip3, Roles: store.RoleAddr | store.RoleNS, Host: "ns.a.example", HostRank: 1},
			},
			NSTargets: []store.NSTarget{{Domain: "a.example", Host: "ns.a.example", IP: ip3}}},
	}
	for _, b := range batches {
		if err := s.Save(ctx, run, b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveMeasurements(ctx, run, []store.Measurement{{IP: ip1, Kind: result.KindPing, Value: &ping.Result{Sent: 5, Received: 5}},
		{IP: ip2, Kind: result.KindDNS53, Domain: "b.example", Value: &ping.Result{Sent: 1}}}); err != nil {
		t.Fatal(err)
	}
	return run
}

// SameInput requires run rx of x and run ry of y to give a resume the same input: the
// run's state, counts and pending domains, its targets with the kinds measured, its
// name server pairs (all of them, and those pending) and its checks.
func SameInput(t *testing.T, x store.Store, rx int64, y store.Store, ry int64) {
	t.Helper()
	type input struct {
		Run       store.Run
		Counts    store.Counts
		Pending   []result.Domain
		Targets   []store.Target
		NS        []store.NSTarget
		PendingNS []store.NSTarget
		Checked   map[string]map[netip.Addr]bool
	}
	read := func(s store.Store, run int64) input {
		ctx := context.Background()
		var in input
		var err error
		if in.Run, err = s.GetRun(ctx, run); err != nil {
			t.Fatal(err)
		}
		in.Run.ID = 0
		if in.Counts, err = s.Counts(ctx, run); err != nil {
			t.Fatal(err)
		}
		if in.Pending, err = s.Pending(ctx, run, store.Cursor{}, 1000); err != nil {
			t.Fatal(err)
		}
		if in.Targets, err = s.Targets(ctx, run, "", "", 1000); err != nil {
			t.Fatal(err)
		}
		for i := range in.Targets {
			slices.Sort(in.Targets[i].Measured)
		}
		if in.NS, err = s.NSTargets(ctx, run, store.NSCursor{}, 1000); err != nil {
			t.Fatal(err)
		}
		if in.PendingNS, err = s.PendingNSTargets(ctx, run, "", store.NSCursor{}, 1000); err != nil {
			t.Fatal(err)
		}
		if in.Checked, err = s.NSChecked(ctx, run, ""); err != nil {
			t.Fatal(err)
		}
		return in
	}
	a, b := read(x, rx), read(y, ry)
	if len(a.Targets) == 0 || len(a.NS) == 0 {
		t.Fatalf("run %d has %d targets and %d name server pairs: nothing to compare", rx, len(a.Targets), len(a.NS))
	}
	if diff := cmp.Diff(a, b, addrCmp, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("the input of a resume differs (-run %d +run %d):\n%s", rx, ry, diff)
	}
}

// SameDocs requires run rx of x and run ry of y to hold the same domain documents.
func SameDocs(t *testing.T, x store.Store, rx int64, y store.Store, ry int64) {
	t.Helper()
	ctx := context.Background()
	n := 0
	err := x.Details(ctx, rx, "", func(d store.Detail) error {
		want, err := x.DomainDoc(ctx, rx, d.Name)
		if err != nil {
			return err
		}
		got, err := y.DomainDoc(ctx, ry, d.Name)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(want, got, addrCmp, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("document of %s (-run %d +run %d):\n%s", d.Name, rx, ry, diff)
		}
		n++
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("documents: %v after %d", err, n)
	}
}
