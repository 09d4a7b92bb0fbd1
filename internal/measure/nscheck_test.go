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
	ctx, st, run := nsTestRun(t)
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
	nsTestLimits(t, &cfg)
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

// TestNSChecksResumeBounded: a resume reads the stored pairs not yet checked a page at
// a time as the checks leave room (never more than Config.NSQueue waiting from them),
// while the DNS stage brings more (a batch beyond the bound, as AddNS allows), some
// behind the backlog's cursor and some ahead of it, saved and handed to AddNS either
// after the backlog has read past them all or while it still reads: each pair, stored
// before the resume or brought during it, is checked exactly once.
func TestNSChecksResumeBounded(t *testing.T) {
	for _, early := range []bool{false, true} {
		name := "handed over after the backlog's end"
		if early {
			name = "handed over while the backlog is read"
		}
		t.Run(name, func(t *testing.T) { nsResume(t, early) })
	}
}

func nsResume(t *testing.T, early bool) {
	ctx, st, run := nsTestRun(t)
	// Stored before the resume: m-00 ... m-39. Brought while it reads them: a-0 ...
	// (behind its cursor when they come), z-0 ... (ahead of it).
	var stored, before, after []string
	for i := range 40 {
		stored = append(stored, fmt.Sprintf("m-%02d.test", i))
	}
	for i := range 5 {
		before, after = append(before, fmt.Sprintf("a-%d.test", i)), append(after, fmt.Sprintf("z-%d.test", i))
	}
	var es []domains.Entry
	for i, name := range append(append(append([]string{}, stored...), before...), after...) {
		es = append(es, domains.Entry{Rank: i + 1, Name: name, TLD: "test"})
	}
	if _, err := st.AddDomains(ctx, run, es); err != nil {
		t.Fatal(err)
	}
	nsIPs := []netip.Addr{netip.MustParseAddr("127.3.0.4"), netip.MustParseAddr("2001:db8:3::53")}
	batch := func(names []string) store.Batch {
		var b store.Batch
		ns := result.Host{Name: "ns.test", Status: result.StatusOK, V4: nsIPs[:1], V6: nsIPs[1:]}
		b.Hosts = append(b.Hosts, ns)
		for _, name := range names {
			d := result.Domain{Name: name, Rank: 1, TLD: "test", Status: result.StatusOK,
				Hosts: []result.HostRef{{Role: result.RoleNS, Name: "ns.test", Rank: 1}}}
			ts, nts := store.TargetsOf(d, []result.Host{ns})
			b.Domains = append(b.Domains, d)
			b.Targets, b.NSTargets = append(b.Targets, ts...), append(b.NSTargets, nts...)
		}
		b.Addresses = []result.Address{{IP: nsIPs[0]}, {IP: nsIPs[1]}}
		return b
	}
	if err := st.Save(ctx, run, batch(stored)); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	fake := newFakeProbes(0)
	cfg.Probes = fake.funcs()
	var (
		mu         sync.Mutex
		checked    = map[string]int{} // "domain ip"
		maxWaiting int
		s          *Stage
		started    = make(chan struct{})
	)
	inner := cfg.Probes[result.KindDNS53]
	cfg.Probes[result.KindDNS53] = func(ctx context.Context, tg Target) (any, error) {
		mu.Lock()
		checked[tg.NSZone+" "+tg.IP.String()]++
		if len(checked) == 1 {
			close(started)
		}
		mu.Unlock()
		if s != nil {
			s.ns.mu.Lock()
			mu.Lock()
			maxWaiting = max(maxWaiting, s.ns.pending)
			mu.Unlock()
			s.ns.mu.Unlock()
		}
		return inner(ctx, tg)
	}
	nsTestLimits(t, &cfg)
	cfg.NSQueue = 6

	var p Progress
	mu.Lock()
	var err error
	s, err = Start(ctx, cfg, st, run, &p)
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	s.ns.mu.Lock()
	waiting, reading := s.ns.pending, s.ns.backlog != nil
	s.ns.mu.Unlock()
	if waiting > cfg.NSQueue || !reading {
		t.Fatalf("resumed with %d checks waiting (backlog left: %v), want at most %d and the rest left", waiting, reading, cfg.NSQueue)
	}
	<-started
	time.Sleep(50 * time.Millisecond) // the backlog refilled a few times
	mu.Lock()
	fromBacklog := maxWaiting
	mu.Unlock()
	live := batch(append(append([]string{}, before...), after...))
	s.Incoming(live.NSTargets) // as the DNS stage does (crawl.Config.BeforeSave)
	if err := st.Save(ctx, run, live); err != nil {
		t.Fatal(err)
	}
	if early {
		// The backlog's cursor is among the m-* pairs: the a-* are behind it, the z-*
		// ahead.
		s.ns.mu.Lock()
		reading = s.ns.backlog != nil
		var cursor string
		if reading {
			cursor = s.ns.backlog.after.Domain
		}
		s.ns.mu.Unlock()
		if !reading || cursor < "m" || cursor >= "n" {
			t.Fatalf("the backlog's cursor at %q at the hand-over (reading: %v), want among the m-* pairs", cursor, reading)
		}
	}
	// Else the backlog reads on past the new pairs, stored, before AddNS has them.
	for deadline := time.Now().Add(20 * time.Second); !early && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		s.ns.mu.Lock()
		reading = s.ns.backlog != nil
		s.ns.mu.Unlock()
		if !reading {
			break
		}
	}
	if !early && reading {
		t.Fatal("the backlog was not read to its end")
	}
	s.Add(ctx, live.Targets)
	s.AddNS(ctx, live.NSTargets)
	s.Close(ctx)
	if err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if fromBacklog > cfg.NSQueue || fromBacklog == 0 {
		t.Errorf("%d name server checks waiting from the backlog, want some and at most NSQueue %d", fromBacklog, cfg.NSQueue)
	}
	if bound := cfg.NSQueue - 1 + len(live.NSTargets); maxWaiting > bound {
		t.Errorf("%d name server checks waiting, want at most %d (NSQueue %d and the batch's %d)", maxWaiting, bound, cfg.NSQueue, len(live.NSTargets))
	}
	all := append(append(append([]string{}, stored...), before...), after...)
	for _, name := range all {
		for _, ip := range nsIPs {
			if key := name + " " + ip.String(); checked[key] != 1 {
				t.Errorf("%s checked %d times, want 1", key, checked[key])
			}
		}
	}
	if len(checked) != len(all)*len(nsIPs) {
		t.Errorf("%d pairs checked, want %d", len(checked), len(all)*len(nsIPs))
	}
}

// nsTestLimits sets what the name server checks' tests share: the gate (127.3.0.0/16
// and 2001:db8:3::/48), the crawler's names, the probes' limits lifted, the checks'
// 5 ms apart per address.
func nsTestLimits(t *testing.T, cfg *Config) {
	t.Helper()
	var err error
	cfg.Gate, err = polite.NewGate([]netip.Prefix{netip.MustParsePrefix("127.3.0.0/16"), netip.MustParsePrefix("2001:db8:3::/48")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.EHLOName, cfg.UserAgent = "crawler.test", "v6matrix/test (+https://crawler.test/)"
	cfg.Polite.AddrGap, cfg.Polite.NetGap, cfg.Polite.PortWindow, cfg.Polite.Rate = 0, 0, 0, math.Inf(1)
	cfg.NSCheck.AddrGap, cfg.NSCheck.Rate = 5*time.Millisecond, math.Inf(1)
}

// nsTestRun returns a context bounding the test, and a run being crawled in a new store.
func nsTestRun(t *testing.T) (context.Context, *store.SQLite, int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "ns.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	run, err := st.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "ns", State: store.RunCrawling})
	if err != nil {
		t.Fatal(err)
	}
	return ctx, st, run
}

// TestNSChecksCountPorts measures an address that is a domain's name server, mail
// exchanger and web server: the name server check's udp/53 counts in the probes' port
// window with their ports, so that no window ever holds more than its ports from both.
func TestNSChecksCountPorts(t *testing.T) {
	ctx, st, run := nsTestRun(t)
	if _, err := st.AddDomains(ctx, run, []domains.Entry{{Rank: 1, Name: "d.test", TLD: "test"}}); err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("127.3.0.9")
	var hosts []result.Host
	d := result.Domain{Name: "d.test", Rank: 1, TLD: "test", Status: result.StatusOK}
	for _, h := range []struct {
		role result.Role
		name string
	}{{result.RoleNS, "ns.d.test"}, {result.RoleMX, "mx.d.test"}, {result.RoleWWW, "www.d.test"}} {
		hosts = append(hosts, result.Host{Name: h.name, Status: result.StatusOK, V4: []netip.Addr{ip}})
		d.Hosts = append(d.Hosts, result.HostRef{Role: h.role, Name: h.name, Rank: 10})
	}
	ts, nts := store.TargetsOf(d, hosts)
	b := store.Batch{Domains: []result.Domain{d}, Hosts: hosts, Targets: ts, NSTargets: nts, Addresses: []result.Address{{IP: ip}}}
	if err := st.Save(ctx, run, b); err != nil {
		t.Fatal(err)
	}

	type use struct {
		port       string
		start, end time.Time
	}
	var (
		mu   sync.Mutex
		uses []use
		s    *Stage
	)
	cfg := DefaultConfig()
	cfg.Probes = newFakeProbes(20 * time.Millisecond).funcs()
	for kind, run := range cfg.Probes {
		cfg.Probes[kind] = func(ctx context.Context, tg Target) (any, error) {
			start := time.Now()
			v, err := run(ctx, tg)
			mu.Lock()
			if proto, port := s.portOf(kind); proto != polite.ProtoICMP && localKinds&kindBit(kind) == 0 {
				uses = append(uses, use{fmt.Sprintf("%v/%d", proto, port), start, time.Now()})
			}
			mu.Unlock()
			return v, err
		}
	}
	nsTestLimits(t, &cfg)
	const window = 300 * time.Millisecond
	cfg.Polite.PortWindow, cfg.Polite.MaxPortsPerWindow = window, 2
	var p Progress
	mu.Lock()
	var err error
	s, err = Start(ctx, cfg, st, run, &p)
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	s.Close(ctx)
	if err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	all := map[string]bool{}
	for _, w := range uses {
		all[w.port] = true
		seen := map[string]bool{}
		for _, u := range uses {
			if !u.end.Before(w.end) && u.start.Before(w.end.Add(window)) {
				seen[u.port] = true
			}
		}
		if len(seen) > 2 {
			t.Errorf("%d ports %v in the %v from %v, max 2", len(seen), seen, window, w.end.Format("15:04:05.000"))
		}
	}
	if !all["udp/53"] || len(all) < 4 {
		t.Errorf("ports used %v: want the check's udp/53 among at least 4", all)
	}
}
