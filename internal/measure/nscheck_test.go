package measure

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// TestNSChecksBesideProbes feeds the stage batch by batch, as the DNS stage does: the
// name server checks start while batches still come (before Close), every (domain, name
// server address) pair is checked exactly once, a name server address never has a
// check and a probe in flight at once, the checks waiting never exceed Config.NSQueue
// and a batch (AddNS waits: the batches come faster than the checks go), and a second
// run of the stage has nothing left.
func TestNSChecksBesideProbes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "ns.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run, _ := st.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "ns", State: store.RunCrawling})
	const n, per = 60, 10 // domains, domains per batch
	var es []domains.Entry
	for i := range n {
		es = append(es, domains.Entry{Rank: i + 1, Name: fmt.Sprintf("d%d.test", i), TLD: "test"})
	}
	if _, err := st.AddDomains(ctx, run, es); err != nil {
		t.Fatal(err)
	}
	nsIPs := []netip.Addr{netip.MustParseAddr("127.3.0.4"), netip.MustParseAddr("2001:db8:3::53")}

	fake := newFakeProbes(2 * time.Millisecond)
	cfg := DefaultConfig()
	cfg.Probes = fake.funcs()
	var (
		mu         sync.Mutex
		checked    = map[string]int{} // "domain ip"
		firstCheck time.Time
	)
	inner := cfg.Probes[result.KindDNS53]
	cfg.Probes[result.KindDNS53] = func(ctx context.Context, tg Target) (any, error) {
		mu.Lock()
		checked[tg.NSZone+" "+tg.IP.String()]++
		if firstCheck.IsZero() {
			firstCheck = time.Now()
		}
		mu.Unlock()
		return inner(ctx, tg)
	}
	cfg.Gate, err = polite.NewGate([]netip.Prefix{netip.MustParsePrefix("127.3.0.0/16"), netip.MustParsePrefix("2001:db8:3::/48")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.EHLOName, cfg.UserAgent = "crawler.test", "v6matrix/test (+https://crawler.test/)"
	cfg.Polite.AddrGap, cfg.Polite.NetGap, cfg.Polite.PortWindow, cfg.Polite.Rate = 0, 0, 0, math.Inf(1)
	cfg.NSCheck.AddrGap, cfg.NSCheck.Rate = 5*time.Millisecond, math.Inf(1)
	cfg.NSQueue = 3

	var p Progress
	maxWaiting := 0
	s, err := Start(ctx, cfg, st, run, &p)
	if err != nil {
		t.Fatal(err)
	}
	for b0 := 0; b0 < n; b0 += per {
		var b store.Batch
		for i := b0; i < b0+per; i++ {
			d := result.Domain{Name: fmt.Sprintf("d%d.test", i), Rank: i + 1, TLD: "test", Status: result.StatusOK,
				Hosts: []result.HostRef{{Role: result.RoleNS, Name: "ns.test", Rank: 1}, {Role: result.RoleWWW, Name: fmt.Sprintf("www.d%d.test", i)}}}
			www := result.Host{Name: fmt.Sprintf("www.d%d.test", i), Status: result.StatusOK, V4: []netip.Addr{netip.AddrFrom4([4]byte{127, 3, 1, byte(i)})}}
			hosts := []result.Host{www}
			if i == 0 {
				hosts = append(hosts, result.Host{Name: "ns.test", Status: result.StatusOK, V4: nsIPs[:1], V6: nsIPs[1:]})
				b.Addresses = append(b.Addresses, result.Address{IP: nsIPs[0]}, result.Address{IP: nsIPs[1]})
			}
			all := append([]result.Host{{Name: "ns.test", Status: result.StatusOK, V4: nsIPs[:1], V6: nsIPs[1:]}}, www)
			ts, ns := store.TargetsOf(d, all)
			b.Domains, b.Hosts = append(b.Domains, d), append(b.Hosts, hosts...)
			b.Addresses = append(b.Addresses, result.Address{IP: www.V4[0]})
			b.Targets, b.NSTargets = append(b.Targets, ts...), append(b.NSTargets, ns...)
		}
		if err := st.Save(ctx, run, b); err != nil {
			t.Fatal(err)
		}
		s.Add(ctx, b.Targets)
		s.AddNS(ctx, b.NSTargets)
		s.ns.mu.Lock()
		maxWaiting = max(maxWaiting, s.ns.pending)
		s.ns.mu.Unlock()
		time.Sleep(20 * time.Millisecond) // a DNS stage that takes a while
	}
	if bound := cfg.NSQueue - 1 + per*len(nsIPs); maxWaiting > bound {
		t.Errorf("%d name server checks waiting, want at most %d (NSQueue %d and a batch of %d)", maxWaiting, bound, cfg.NSQueue, per*len(nsIPs))
	}
	closed := time.Now()
	s.Close(ctx)
	if err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if firstCheck.IsZero() || !firstCheck.Before(closed) {
		t.Errorf("first name server check at %v, stage closed at %v: want the checks to start while batches come",
			firstCheck.Format(time.StampMicro), closed.Format(time.StampMicro))
	}
	for i := range n {
		for _, ip := range nsIPs {
			key := fmt.Sprintf("d%d.test %v", i, ip)
			if checked[key] != 1 {
				t.Errorf("%s checked %d times, want 1", key, checked[key])
			}
		}
	}
	if len(checked) != n*len(nsIPs) {
		t.Errorf("%d pairs checked, want %d", len(checked), n*len(nsIPs))
	}
	fake.mu.Lock()
	if fake.maxFly != 1 {
		t.Errorf("at most %d probes and checks in flight to one address, want 1", fake.maxFly)
	}
	fake.mu.Unlock()
	if p.Done.Load() != p.Total.Load() || p.Failed.Load() != 0 {
		t.Errorf("progress: total %d done %d failed %d", p.Total.Load(), p.Done.Load(), p.Failed.Load())
	}

	// Everything was saved: a second run of the stage checks nothing.
	again := newFakeProbes(0)
	cfg.Probes = again.funcs()
	var p2 Progress
	if err := Run(ctx, cfg, st, run, &p2); err != nil {
		t.Fatal(err)
	}
	if p2.Total.Load() != 0 || len(again.calls) != 0 {
		t.Errorf("resumed stage: total %d, calls %v; want none", p2.Total.Load(), again.calls)
	}
}
