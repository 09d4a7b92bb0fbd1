package measure

import (
	"context"
	"math"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// TestRunTwoVantages measures one run (its DNS stage done once) from its own vantage
// and from a second one, with fake probes. Each vantage starts with part of its work
// saved (as after an interruption), and each run of the stage probes exactly what its
// own vantage lacks, whatever the other one has: the vantages' results never stand in
// for each other.
func TestRunTwoVantages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run, _ := st.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "v", Vantage: "east", State: store.RunDone})
	const n = 10
	var b store.Batch
	var es []domains.Entry
	var ips []netip.Addr
	for i := range n {
		ip := netip.AddrFrom4([4]byte{127, 5, 0, byte(i + 1)})
		ips = append(ips, ip)
		name := "d" + strconv.Itoa(i) + ".test"
		es = append(es, domains.Entry{Rank: i + 1, Name: name, TLD: "test"})
		b.Domains = append(b.Domains, result.Domain{Name: name, Rank: i + 1, TLD: "test", Status: result.StatusOK,
			Hosts: []result.HostRef{{Role: result.RoleNS, Name: "ns." + name}}})
		b.Hosts = append(b.Hosts, result.Host{Name: "ns." + name, Status: result.StatusOK, V4: []netip.Addr{ip}})
	}
	if _, err := st.AddDomains(ctx, run, es); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(ctx, run, withTargets(b)); err != nil {
		t.Fatal(err)
	}
	// Saved before: east pinged the first half; west has TCP 80 of every address and
	// the name server check of d0.test.
	var east, west []store.Measurement
	for i, ip := range ips {
		if i < n/2 {
			east = append(east, store.Measurement{IP: ip, Kind: result.KindPing, Value: map[string]int{"Sent": 1}})
		}
		west = append(west, store.Measurement{IP: ip, Kind: result.KindTCP80, Value: map[string]string{"State": "open"}, Vantage: "west"})
	}
	west = append(west, store.Measurement{IP: ips[0], Kind: result.KindDNS53, Domain: "d0.test", Value: map[string]string{"Status": "ok"}, Vantage: "west"})
	for _, ms := range [][]store.Measurement{east, west} {
		if err := st.SaveMeasurements(ctx, run, ms); err != nil {
			t.Fatal(err)
		}
	}

	cfg := DefaultConfig()
	cfg.Kinds = map[string]bool{result.KindPing: true, result.KindTCP80: true, result.KindDNS53: true}
	cfg.Gate, _ = polite.NewGate([]netip.Prefix{netip.MustParsePrefix("127.5.0.0/16")}, nil)
	cfg.Polite.AddrGap, cfg.Polite.NetGap, cfg.Polite.PortWindow, cfg.Polite.Rate = 0, 0, 0, math.Inf(1)
	cfg.NSCheck.AddrGap = 0
	measure := func(vantage string) map[netip.Addr][]string {
		t.Helper()
		fake := newFakeProbes(0)
		c := cfg
		c.Vantage, c.Probes = vantage, fake.funcs()
		var p Progress
		if err := Run(ctx, c, st, run, &p); err != nil {
			t.Fatal(err)
		}
		fake.mu.Lock()
		defer fake.mu.Unlock()
		got := map[netip.Addr][]string{}
		for ip, kinds := range fake.calls {
			got[ip] = slices.Sorted(slices.Values(kinds))
		}
		return got
	}
	want := func(f func(i int) []string) map[netip.Addr][]string {
		out := map[netip.Addr][]string{}
		for i, ip := range ips {
			if ks := f(i); len(ks) > 0 {
				out[ip] = slices.Sorted(slices.Values(ks))
			}
		}
		return out
	}
	// West lacks every ping (east's do not count) and every check but d0.test's.
	wantWest := want(func(i int) []string {
		if i == 0 {
			return []string{result.KindPing}
		}
		return []string{result.KindPing, result.KindDNS53}
	})
	if diff := cmp.Diff(wantWest, measure("west")); diff != "" {
		t.Errorf("probes from west (-want +got):\n%s", diff)
	}
	// East (the run's own, "") lacks the second half's pings, every TCP 80 (west's do
	// not count) and every check.
	wantEast := want(func(i int) []string {
		if i < n/2 {
			return []string{result.KindTCP80, result.KindDNS53}
		}
		return []string{result.KindPing, result.KindTCP80, result.KindDNS53}
	})
	if diff := cmp.Diff(wantEast, measure("")); diff != "" {
		t.Errorf("probes from east (-want +got):\n%s", diff)
	}
	for _, v := range []string{"west", "east"} {
		if got := measure(v); len(got) != 0 {
			t.Errorf("%s measured again: %v; want nothing left", v, got)
		}
		m, err := st.Measured(ctx, run, v)
		if err != nil {
			t.Fatal(err)
		}
		checked, err := st.NSChecked(ctx, run, v)
		if err != nil {
			t.Fatal(err)
		}
		for i, ip := range ips {
			if !m[ip][result.KindPing] || !m[ip][result.KindTCP80] || !checked["d"+strconv.Itoa(i)+".test"][ip] {
				t.Errorf("%s: %s measured %v, checked %v; want ping, tcp80 and its check", v, ip, m[ip], checked)
			}
		}
	}
	if vs, err := st.Vantages(ctx, run); err != nil || !cmp.Equal(vs, []string{"east", "west"}) {
		t.Errorf("Vantages = %q, %v", vs, err)
	}
}
