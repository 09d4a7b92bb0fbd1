package storetest

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/v6matrix/v6matrix/internal/probe/ping"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// testTargets checks the probe stage's input: targets merged by address across
// batches (roles added, the best-ranked names kept), Added and Changed reported on the
// first entry of an address, a failed batch leaving nothing, and the pages that a
// resume reads.
func testTargets(t *testing.T, s store.Store) {
	ctx := context.Background()
	run := crawlingRun(t, s, "a.example", "b.example", "c.example", "d.example")
	ip1, ip2, ip3 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::3")
	dom := func(name string, rank int) result.Domain {
		return result.Domain{Name: name, Rank: rank, TLD: "example", Suffix: "example", Status: result.StatusOK}
	}
	// Batch 1: c.example (rank 3) names ip1 as www, b.example (rank 2) names it as www too
	// and ip2 as mx; the same address twice in one batch.
	b1 := store.Batch{Domains: []result.Domain{dom("c.example", 3), dom("b.example", 2)},
		Targets: []store.Target{
			{IP: ip1, Roles: store.RoleAddr | store.RoleWWW, WWW: "www.c.example", WWWRank: 3, Host: "www.c.example", HostRank: 3},
			{IP: ip1, Roles: store.RoleAddr | store.RoleWWW, WWW: "www.b.example", WWWRank: 2, Host: "www.b.example", HostRank: 2},
			{IP: ip2, Roles: store.RoleAddr | store.RoleMX, MX: "mx.b.example", MXRank: 2, Host: "mx.b.example", HostRank: 2},
		},
		NSTargets: []store.NSTarget{{Domain: "b.example", Host: "ns.b.example", IP: ip2}, {Domain: "c.example", Host: "ns.c.example", IP: ip2}},
	}
	if err := s.Save(ctx, run, b1); err != nil {
		t.Fatal(err)
	}
	ip1Row := store.Target{IP: ip1, Roles: store.RoleAddr | store.RoleWWW, WWW: "www.b.example", WWWRank: 2, Host: "www.b.example", HostRank: 2}
	want1 := []store.Target{ip1Row, ip1Row,
		{IP: ip2, Roles: store.RoleAddr | store.RoleMX, MX: "mx.b.example", MXRank: 2, Host: "mx.b.example", HostRank: 2}}
	want1[0].Added, want1[0].Changed = store.RoleAddr|store.RoleWWW, true
	want1[2].Added, want1[2].Changed = store.RoleAddr|store.RoleMX, true
	if diff := cmp.Diff(want1, b1.Targets, addrCmp); diff != "" {
		t.Errorf("first batch's targets after Save (-want +got):\n%s", diff)
	}

	// Batch 2: a.example (rank 1) gives ip1 a better www name and the ntp role; d.example
	// (rank 4) names ip2 as mx again (nothing new) and ip3 for the first time.
	b2 := store.Batch{Domains: []result.Domain{dom("a.example", 1), dom("d.example", 4)},
		Targets: []store.Target{
			{IP: ip1, Roles: store.RoleAddr | store.RoleWWW | store.RoleNTP, WWW: "www.a.example", WWWRank: 1, Host: "www.a.example", HostRank: 1},
			{IP: ip2, Roles: store.RoleAddr | store.RoleMX, MX: "mx.d.example", MXRank: 4, Host: "mx.d.example", HostRank: 4},
			{IP: ip3, Roles: store.RoleAddr | store.RoleNS, Host: "ns.d.example", HostRank: 4},
		},
		NSTargets: []store.NSTarget{{Domain: "d.example", Host: "ns.d.example", IP: ip3}},
	}
	if err := s.Save(ctx, run, b2); err != nil {
		t.Fatal(err)
	}
	got := []struct {
		Added   store.Roles
		Changed bool
	}{{b2.Targets[0].Added, b2.Targets[0].Changed}, {b2.Targets[1].Added, b2.Targets[1].Changed}, {b2.Targets[2].Added, b2.Targets[2].Changed}}
	want2 := []struct {
		Added   store.Roles
		Changed bool
	}{{store.RoleNTP, true}, {0, false}, {store.RoleAddr | store.RoleNS, true}}
	if diff := cmp.Diff(want2, got); diff != "" {
		t.Errorf("second batch: roles added and changes (-want +got):\n%s", diff)
	}
	if b2.Targets[1].MX != "mx.b.example" {
		t.Errorf("ip2's mx after a worse-ranked domain = %q, want mx.b.example (the best-ranked one)", b2.Targets[1].MX)
	}

	// Measured kinds come back with the targets; ns pairs with a check are not pending.
	if err := s.SaveMeasurements(ctx, run, []store.Measurement{{IP: ip1, Kind: result.KindPing, Value: &ping.Result{Sent: 1}},
		{IP: ip1, Kind: result.KindTCP80, Value: &ping.Result{Sent: 1}},
		{IP: ip2, Kind: result.KindDNS53, Domain: "b.example", Value: &ping.Result{Sent: 1}}}); err != nil {
		t.Fatal(err)
	}
	var all []store.Target
	for after := ""; ; {
		page, err := s.Targets(ctx, run, "", after, 2)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].IP.String()
	}
	for i := range all {
		slices.Sort(all[i].Measured)
	}
	wantAll := []store.Target{
		{IP: ip2, Roles: store.RoleAddr | store.RoleMX, MX: "mx.b.example", MXRank: 2, Host: "mx.b.example", HostRank: 2},
		{IP: ip1, Roles: store.RoleAddr | store.RoleWWW | store.RoleNTP, WWW: "www.a.example", WWWRank: 1, Host: "www.a.example", HostRank: 1,
			Measured: []string{result.KindPing, result.KindTCP80}},
		{IP: ip3, Roles: store.RoleAddr | store.RoleNS, Host: "ns.d.example", HostRank: 4},
	}
	if diff := cmp.Diff(wantAll, all, addrCmp, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Targets in address text order, by pages of 2 (-want +got):\n%s", diff)
	}
	var ns []store.NSTarget
	for after := (store.NSCursor{}); ; {
		page, err := s.PendingNSTargets(ctx, run, "", after, 1)
		if err != nil {
			t.Fatal(err)
		}
		ns = append(ns, page...)
		if len(page) < 1 {
			break
		}
		after = store.NSCursor{Domain: page[0].Domain, IP: page[0].IP.String()}
	}
	wantNS := []store.NSTarget{{Domain: "c.example", Host: "ns.c.example", IP: ip2}, {Domain: "d.example", Host: "ns.d.example", IP: ip3}}
	if diff := cmp.Diff(wantNS, ns, addrCmp); diff != "" {
		t.Errorf("PendingNSTargets (-want +got):\n%s", diff)
	}
	// NSTargets: every pair, the checked one too, after a cursor.
	allNS, err := s.NSTargets(ctx, run, store.NSCursor{Domain: "a.example"}, 10)
	if err != nil {
		t.Fatal(err)
	}
	wantAllNS := append([]store.NSTarget{{Domain: "b.example", Host: "ns.b.example", IP: ip2}}, wantNS...)
	if diff := cmp.Diff(wantAllNS, allNS, addrCmp); diff != "" {
		t.Errorf("NSTargets (-want +got):\n%s", diff)
	}

	// A batch that fails (a domain of another run's list is fine, a cancelled context is
	// not) writes none of its targets.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	ip4 := netip.MustParseAddr("2001:db8::4")
	if err := s.Save(cctx, run, store.Batch{Targets: []store.Target{{IP: ip4, Roles: store.RoleAddr}}}); err == nil {
		t.Error("Save with a cancelled context succeeded")
	}
	page, err := s.Targets(ctx, run, "", ip3.String(), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 0 {
		t.Errorf("targets after a failed Save: %v, want none", page)
	}
}
