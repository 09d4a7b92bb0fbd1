package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
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

// testVantages measures one run from its own vantage ("east") and a second one
// ("west"): every reading call answers for the vantage asked ("" the run's own), a
// result saved again from one vantage leaves the other's alone, the vantages are
// listed own first, two vantages' results pair up by address and kind, a copy of the
// run keeps both, and deleting the run removes both.
func testVantages(t *testing.T, s store.Store) {
	ctx := context.Background()
	run, err := s.CreateRun(ctx, store.Run{Started: time.Unix(1e9, 0), ListName: "l.csv", Vantage: "east", State: store.RunProbing})
	if err != nil {
		t.Fatal(err)
	}
	if vs, err := s.Vantages(ctx, run); err != nil || !cmp.Equal(vs, []string{"east"}) {
		t.Errorf("Vantages before any measurement = %q, %v; want the run's own", vs, err)
	}
	ip1, ip2 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1")
	if _, err := s.AddDomains(ctx, run, []domains.Entry{{Rank: 1, Name: "a.example", TLD: "example", Suffix: "example"}}); err != nil {
		t.Fatal(err)
	}
	b := store.Batch{
		Domains: []result.Domain{{Name: "a.example", Rank: 1, TLD: "example", Suffix: "example", Status: result.StatusOK,
			Hosts: []result.HostRef{{Role: result.RoleNS, Name: "ns.a.example"}, {Role: result.RoleWWW, Name: "www.a.example"}}}},
		Hosts: []result.Host{{Name: "ns.a.example", Status: result.StatusOK, V4: []netip.Addr{ip2}},
			{Name: "www.a.example", Status: result.StatusOK, V6: []netip.Addr{ip1}}},
		Addresses: []result.Address{{IP: ip1}, {IP: ip2}},
		Targets: []store.Target{{IP: ip1, Roles: store.RoleAddr | store.RoleWWW, WWW: "www.a.example", Host: "www.a.example"},
			{IP: ip2, Roles: store.RoleAddr | store.RoleNS, Host: "ns.a.example"}},
		NSTargets: []store.NSTarget{{Domain: "a.example", Host: "ns.a.example", IP: ip2}},
	}
	if err := s.Save(ctx, run, b); err != nil {
		t.Fatal(err)
	}
	answered, silent := &ping.Result{Sent: 3, Received: 3}, &ping.Result{Sent: 3, LossPercent: 100}
	open, filtered := &tcpport.Result{Port: 80, State: tcpport.StateOpen}, &tcpport.Result{Port: 80, State: tcpport.StateFiltered}
	serial := uint32(9)
	check := &dns53.Result{Status: "ok", Rcode: "NOERROR", SOASerial: &serial}
	// The run's own vantage: "" and its name alike.
	own := []store.Measurement{{IP: ip1, Kind: result.KindPing, Value: silent}, {IP: ip1, Kind: result.KindTCP80, Value: open},
		{IP: ip2, Kind: result.KindPing, Value: answered, Vantage: "east"}}
	west := []store.Measurement{{IP: ip1, Kind: result.KindPing, Value: silent, Vantage: "west"},
		{IP: ip1, Kind: result.KindTCP80, Value: filtered, Vantage: "west"},
		{IP: ip2, Kind: result.KindDNS53, Value: check, Domain: "a.example", Vantage: "west"}}
	for _, ms := range [][]store.Measurement{own, west} {
		if err := s.SaveMeasurements(ctx, run, ms); err != nil {
			t.Fatal(err)
		}
	}
	// Measured again from the run's own vantage: west's ping stays as it was.
	if err := s.SaveMeasurements(ctx, run, []store.Measurement{{IP: ip1, Kind: result.KindPing, Value: answered}}); err != nil {
		t.Fatal(err)
	}

	if vs, err := s.Vantages(ctx, run); err != nil || !cmp.Equal(vs, []string{"east", "west"}) {
		t.Errorf("Vantages = %q, %v; want east (own) then west", vs, err)
	}
	if _, err := s.Vantages(ctx, run+100); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Vantages of a missing run: %v, want ErrNotFound", err)
	}
	wantMeasured := map[string]map[netip.Addr]map[string]bool{
		"east": {ip1: {result.KindPing: true, result.KindTCP80: true}, ip2: {result.KindPing: true}},
		"west": {ip1: {result.KindPing: true, result.KindTCP80: true}},
	}
	wantKinds := map[string]map[string]bool{
		"east": {result.KindPing: true, result.KindTCP80: true},
		"west": {result.KindPing: true, result.KindTCP80: true, result.KindDNS53: true},
	}
	wantChecked := map[string]map[string]map[netip.Addr]bool{"east": {}, "west": {"a.example": {ip2: true}}}
	for _, v := range []string{"", "east", "west", "north"} {
		name := v
		if v == "" {
			name = "east"
		}
		m, err := s.Measured(ctx, run, v)
		if diff := cmp.Diff(wantMeasured[name], m, addrCmp, cmpopts.EquateEmpty()); err != nil || diff != "" {
			t.Errorf("Measured(%q) (%v) (-want +got):\n%s", v, err, diff)
		}
		k, err := s.MeasuredKinds(ctx, run, v)
		if diff := cmp.Diff(wantKinds[name], k, cmpopts.EquateEmpty()); err != nil || diff != "" {
			t.Errorf("MeasuredKinds(%q) (%v) (-want +got):\n%s", v, err, diff)
		}
		c, err := s.NSChecked(ctx, run, v)
		if diff := cmp.Diff(wantChecked[name], c, addrCmp, cmpopts.EquateEmpty()); err != nil || diff != "" {
			t.Errorf("NSChecked(%q) (%v) (-want +got):\n%s", v, err, diff)
		}
	}
	ts, err := s.Targets(ctx, run, "west", "", 10)
	if err != nil || len(ts) != 2 || !cmp.Equal(ts[1].Measured, []string{result.KindPing, result.KindTCP80}) || len(ts[0].Measured) != 0 {
		t.Errorf("Targets of west = %+v, %v; want ip2 (192.0.2.1) unmeasured, ip1 with ping and tcp80", ts, err)
	}
	if ns, err := s.PendingNSTargets(ctx, run, "", store.NSCursor{}, 10); err != nil || len(ns) != 1 {
		t.Errorf("PendingNSTargets of the run's own vantage = %+v, %v; want the pair west checked", ns, err)
	}
	if ns, err := s.PendingNSTargets(ctx, run, "west", store.NSCursor{}, 10); err != nil || len(ns) != 0 {
		t.Errorf("PendingNSTargets of west = %+v, %v; want none", ns, err)
	}
	for v, want := range map[string]*tcpport.Result{"": open, "west": filtered} {
		var got []store.Detail
		if err := s.Details(ctx, run, v, func(d store.Detail) error { got = append(got, d); return nil }); err != nil || len(got) != 1 {
			t.Fatalf("Details(%q): %d domains, %v", v, len(got), err)
		}
		one, err := s.Domain(ctx, run, v, "a.example")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []store.Detail{got[0], one} {
			if diff := cmp.Diff(want, d.Addrs[ip1].TCP80); diff != "" {
				t.Errorf("tcp80 of %s from %q (-want +got):\n%s", ip1, v, diff)
			}
			if (v == "west") != (d.NSChecks[ip2] != nil) {
				t.Errorf("name server checks from %q: %v", v, d.NSChecks)
			}
		}
	}

	// Pairs: east's results of ping and tcp80, west's beside them.
	type pair struct {
		IP           netip.Addr
		PingA, PingB *ping.Result
		TCPA, TCPB   *tcpport.Result
	}
	pairs := func(a, b, after string, stop int) []pair {
		var out []pair
		err := s.VantageResults(ctx, run, a, b, []string{result.KindPing, result.KindTCP80}, after, func(p store.VantagePair) bool {
			out = append(out, pair{p.A.IP, p.A.Ping, p.B.Ping, p.A.TCP80, p.B.TCP80})
			return len(out) < stop
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	want := []pair{{ip2, answered, nil, nil, nil}, {ip1, answered, silent, open, filtered}} // in address text order
	if diff := cmp.Diff(want, pairs("", "west", "", 10), addrCmp); diff != "" {
		t.Errorf("VantageResults(east, west) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[1:], pairs("east", "west", ip2.String(), 10), addrCmp); diff != "" {
		t.Errorf("VantageResults after %s (-want +got):\n%s", ip2, diff)
	}
	if diff := cmp.Diff(want[:1], pairs("east", "west", "", 1), addrCmp); diff != "" {
		t.Errorf("VantageResults stopped after one (-want +got):\n%s", diff)
	}
	wantWest := []pair{{ip1, silent, answered, filtered, open}}
	if diff := cmp.Diff(wantWest, pairs("west", "", "", 10), addrCmp); diff != "" {
		t.Errorf("VantageResults(west, east) (-want +got):\n%s", diff)
	}
	wantSelf := []pair{{ip1, silent, silent, filtered, filtered}} // one vantage: B is A
	if diff := cmp.Diff(wantSelf, pairs("west", "west", "", 10), addrCmp); diff != "" {
		t.Errorf("VantageResults(west, west) (-want +got):\n%s", diff)
	}

	if err := store.CheckVantage(ctx, s, run, "west"); err != nil {
		t.Errorf("CheckVantage(west): %v", err)
	}
	wantErr := fmt.Sprintf(`run %d has no vantage "north": its vantages are "east", "west"`, run)
	if err := store.CheckVantage(ctx, s, run, "north"); err == nil || !strings.Contains(err.Error(), wantErr) {
		t.Errorf("CheckVantage(north) = %v; want an error naming the run and its vantages", err)
	}

	// A copy keeps both vantages' results.
	cp, err := store.Copy(ctx, s, s, run)
	if err != nil {
		t.Fatal(err)
	}
	if vs, err := s.Vantages(ctx, cp); err != nil || !cmp.Equal(vs, []string{"east", "west"}) {
		t.Errorf("Vantages of the copy = %q, %v", vs, err)
	}
	for _, v := range []string{"east", "west"} {
		a, _ := s.Measured(ctx, run, v)
		b, err := s.Measured(ctx, cp, v)
		if diff := cmp.Diff(a, b, addrCmp); err != nil || diff != "" {
			t.Errorf("Measured(%s) of the copy (%v) (-run +copy):\n%s", v, err, diff)
		}
		a2, _ := s.NSChecked(ctx, run, v)
		b2, err := s.NSChecked(ctx, cp, v)
		if diff := cmp.Diff(a2, b2, addrCmp); err != nil || diff != "" {
			t.Errorf("NSChecked(%s) of the copy (%v) (-run +copy):\n%s", v, err, diff)
		}
	}
	if err := s.DeleteRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	if m, err := s.Measured(ctx, run, "west"); err != nil || len(m) != 0 {
		t.Errorf("Measured(west) of the deleted run = %v, %v", m, err)
	}
}
