package measure

import (
	"context"
	"math"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/polite/politetest"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// testPorts are the destination ports of the kinds, as the probers have them.
func testPorts(kind string) (polite.Proto, uint16) {
	switch kind {
	case result.KindPing:
		return polite.ProtoICMP, 0
	case result.KindTCP25, result.KindSTARTTLS:
		return polite.ProtoTCP, 25
	case result.KindTCP80, result.KindHTTP80:
		return polite.ProtoTCP, 80
	case result.KindTCP443, result.KindTLS443:
		return polite.ProtoTCP, 443
	case result.KindNTP123:
		return polite.ProtoUDP, 123
	case result.KindPath:
		return polite.ProtoUDP, 33434
	}
	return polite.ProtoUDP, 53
}

// allProbes are the nine probes of an address in every role.
var allProbes = setOf([]string{result.KindPing, result.KindTCP25, result.KindTCP80, result.KindTCP443, result.KindTLS443,
	result.KindSTARTTLS, result.KindNTP123, result.KindPath, result.KindHTTP80})

func TestKindSetFits(t *testing.T) {
	if n := len(result.Kinds); n > 16 {
		t.Fatalf("%d kinds do not fit the 16 bits of kindSet", n)
	}
	if got := setOf(result.Kinds).list(); !cmp.Equal(got, result.Kinds) {
		t.Errorf("setOf(Kinds).list() = %v", got)
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// TestMinTime checks the least time of one address at its own limits.
func TestMinTime(t *testing.T) {
	cfg := polite.DefaultConfig() // 1 s per address, 2 ports per 10 s
	pl := newPlanner(cfg, 10, testPorts, allProbes)
	for _, tc := range []struct {
		name  string
		kinds kindSet
		want  time.Duration
	}{
		{"none", 0, 0},
		{"one probe", kindBit(result.KindPing), 0},
		// ping, 25, 80, 443: 4 starts 1 s apart, 3 ports (2 per window: one window).
		{"four probes, three ports", setOf([]string{result.KindPing, result.KindTCP25, result.KindTCP80, result.KindTCP443}), 10 * time.Second},
		// 9 probes: 8 s of address gaps; 5 ports 25, 80, 443, 123, 33434: two windows.
		{"every probe", allProbes, 20 * time.Second},
		{"two ports", setOf([]string{result.KindTCP80, result.KindHTTP80, result.KindTCP443}), 2 * time.Second},
	} {
		if got := pl.minTime(tc.kinds); got != tc.want {
			t.Errorf("%s: minTime = %v, want %v", tc.name, got, tc.want)
		}
	}
	cfg.PortWindow = 0
	if got := newPlanner(cfg, 10, testPorts, allProbes).minTime(allProbes); got != 8*time.Second {
		t.Errorf("no port rule: minTime of every probe = %v, want 8s", got)
	}
}

func TestNetSlots(t *testing.T) {
	cfg := polite.DefaultConfig()
	// 9 probes in at least 20 s: 20/(9 × 0.2) = 11.1 addresses keep the network at its
	// gap; twice that, rounded up, and one more.
	if got := netSlots(cfg, 4096, 9, 20*time.Second); got != 24 {
		t.Errorf("netSlots = %d, want 24", got)
	}
	if got := netSlots(cfg, 10, 9, 20*time.Second); got != 10 {
		t.Errorf("netSlots capped by the window = %d, want 10", got)
	}
	cfg.NetGap = 0
	if got := netSlots(cfg, 4096, 9, 20*time.Second); got != 4096 {
		t.Errorf("netSlots without --net-gap = %d, want the window", got)
	}
}

// TestBound checks the lower bound's arithmetic and what it names.
func TestBound(t *testing.T) {
	cfg := polite.DefaultConfig() // rate 50/s, net gap 200 ms, addr gap 1 s, 2 ports per 10 s
	big := func(pl *planner) {
		for i := range 876 {
			pl.add(waiting{ip: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xdd, 14: byte(i >> 8), 15: byte(i)}), kinds: allProbes}, true)
		}
	}
	small := func(pl *planner) {
		for i := range 2000 {
			pl.add(waiting{ip: netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), kinds: allProbes}, true)
		}
	}
	for _, tc := range []struct {
		name    string
		fill    func(*planner)
		dns     time.Duration
		want    time.Duration
		wantWhy string
	}{
		{"nothing known: the DNS stage", func(*planner) {}, 3 * time.Second, 3 * time.Second, "the DNS stage"},
		// 876 × 9 = 7884 starts 200 ms apart: 7883 × 0.2 s.
		{"one large network", big, time.Minute, 7883 * 200 * time.Millisecond,
			"2001:db8:ffdd::/48 has 876 addresses (7884 probes at --net-gap 200ms)"},
		// 2000 networks of one address: 18000 starts at 50/s: 17999/50 s.
		{"the rate", small, time.Minute, 17999 * 20 * time.Millisecond, "18000 probes at --rate 50/s"},
		{"the DNS stage is longer", small, time.Hour, time.Hour, "the DNS stage"},
		{"one address", func(pl *planner) { pl.add(waiting{ip: addr("192.0.2.1"), kinds: allProbes}, true) }, time.Second,
			20 * time.Second, "192.0.2.1 needs 9 probes at --addr-gap 1s and --max-ports 2 per --port-window 10s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl := newPlanner(cfg, 4096, testPorts, allProbes)
			tc.fill(pl)
			lb, why := pl.bound(tc.dns)
			if lb != tc.want || why != tc.wantWhy {
				t.Errorf("bound = %v (%q), want %v (%q)", lb, why, tc.want, tc.wantWhy)
			}
		})
	}
	// The rate lifted, and the network gap: the address's own limits remain.
	cfg.Rate, cfg.NetGap = math.Inf(1), 0
	pl := newPlanner(cfg, 4096, testPorts, allProbes)
	big(pl)
	if lb, why := pl.bound(0); lb != 20*time.Second || !strings.Contains(why, "needs 9 probes") {
		t.Errorf("no rate or network limit: bound = %v (%q), want 20s of one address", lb, why)
	}
}

// TestPlannerLPT checks the order in which addresses enter the window: the network
// with the most work left first, each network up to its share, and within a network
// by rank.
func TestPlannerLPT(t *testing.T) {
	cfg := polite.DefaultConfig()
	pl := newPlanner(cfg, 5, testPorts, allProbes)
	pl.perNet = 2
	one := kindBit(result.KindPing)
	add := func(ip string, kinds kindSet) { pl.add(waiting{ip: addr(ip), kinds: kinds}, true) }
	add("192.0.2.1", one) // A: 1 probe
	for i := range 10 {   // B: 10 probes
		add(netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}).String(), one)
	}
	add("203.0.113.1", one) // C: 2 addresses, 4 probes
	add("203.0.113.2", one|kindBit(result.KindTCP80)|kindBit(result.KindTCP443))

	var got []string
	var taken []*waiting
	for {
		w, ok := pl.next()
		if !ok {
			break
		}
		taken = append(taken, w)
		got = append(got, pl.prefixOf(w.ip).String())
	}
	want := []string{"198.51.100.0/24", "198.51.100.0/24", "203.0.113.0/24", "203.0.113.0/24", "192.0.2.0/24"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order into a window of 5, 2 per network (-want +got):\n%s", diff)
	}
	if r0, r1 := taken[0].rank, taken[1].rank; r0 > r1 {
		t.Errorf("B's addresses entered out of rank order: %d then %d", r0, r1)
	}
	// B is at its share: a finished address of C leaves its place empty; a finished
	// address of B makes room for the next of B.
	pl.finished(taken[2])
	if w, ok := pl.next(); ok {
		t.Errorf("after C's address finished: next = %v, want none (B at its share, nothing else waits)", w.ip)
	}
	pl.finished(taken[0])
	if w, ok := pl.next(); !ok || pl.prefixOf(w.ip).String() != "198.51.100.0/24" {
		t.Errorf("after B's address finished: next = %v, %v; want one of B", w, ok)
	}
}

// TestStageLargeNetworkFirst runs the stage's window on the polite scheduler with a
// fake clock: one /48 holds most of the work, among many networks of one address. It
// must start at once (not behind the small networks), and its starts must follow each
// other at --net-gap all through the run, so that the run ends at the network's bound.
func TestStageLargeNetworkFirst(t *testing.T) {
	cfg := polite.DefaultConfig()
	cfg.Rate, cfg.PortWindow = math.Inf(1), 0
	kinds := setOf([]string{result.KindTCP25, result.KindTCP80, result.KindTCP443})
	const bigAddrs, small = 60, 40
	synctest.Test(t, func(t *testing.T) {
		clk := politetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		origin := clk.Now()
		sched, err := polite.New(cfg, clk)
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var bigStarts []time.Duration
		s := &Stage{sched: sched, byIP: map[netip.Addr]*waiting{}, p: &Progress{}}
		s.plan = newPlanner(cfg, 20, testPorts, kinds)
		s.task = func(tg *target, kind string) polite.Task {
			proto, port := testPorts(kind)
			return polite.Task{Addr: tg.ip, Proto: proto, Port: port, Run: func(ctx context.Context) {
				mu.Lock()
				if tg.ip.Is6() {
					bigStarts = append(bigStarts, clk.Now().Sub(origin))
				}
				mu.Unlock()
				clk.Sleep(ctx, 100*time.Millisecond)
			}}
		}
		for i := range small {
			s.plan.add(waiting{ip: netip.AddrFrom4([4]byte{192, 0, byte(i), 1}), kinds: kinds}, true)
		}
		for i := range bigAddrs {
			s.plan.add(waiting{ip: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0xff, 0xdd, 15: byte(i + 1)}), kinds: kinds}, true)
		}
		lb, why := s.plan.bound(0)
		s.release = sched.Hold()
		s.closed = true
		s.mu.Lock()
		s.fill(t.Context())
		s.mu.Unlock()
		done := make(chan error, 1)
		go func() { done <- sched.Run(t.Context()) }()
		for steps := 0; ; steps++ {
			synctest.Wait()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if len(bigStarts) != 3*bigAddrs {
					t.Fatalf("%d starts in the large network, want %d", len(bigStarts), 3*bigAddrs)
				}
				if bigStarts[0] != 0 {
					t.Errorf("the large network's first probe at %v, want at once", bigStarts[0])
				}
				for i := 1; i < len(bigStarts); i++ {
					if gap := bigStarts[i] - bigStarts[i-1]; gap != cfg.NetGap {
						t.Errorf("large network: start %d came %v after the one before, want --net-gap %v (kept at its limit)", i, gap, cfg.NetGap)
						break
					}
				}
				wall := clk.Now().Sub(origin)
				t.Logf("wall %v, lower bound %v (%s)", wall, lb, why)
				if lb != 179*cfg.NetGap || !strings.Contains(why, "2001:db8:ffdd::/48 has 60 addresses") {
					t.Errorf("bound %v (%q), want 179 × 200ms of the large network", lb, why)
				}
				if wall > lb+time.Second {
					t.Errorf("wall %v, want the bound %v and the last probe", wall, lb)
				}
				return
			default:
			}
			if steps > 1_000_000 || !clk.AdvanceToNext() {
				t.Fatal("the scheduler is stuck")
			}
		}
	})
}

// TestObserve checks that probes slower than their limits give each network a larger
// share of the window, and that a network held at its share gets more room at once.
func TestObserve(t *testing.T) {
	cfg := polite.DefaultConfig()
	cfg.PortWindow = 0
	one := kindBit(result.KindPing) | kindBit(result.KindTCP80)
	pl := newPlanner(cfg, 100, testPorts, one) // 2 probes in 1 s: 0.5 s per probe
	if pl.perNet != 6 {                        // ceil(2 × 0.5 s / 0.2 s) + 1
		t.Fatalf("perNet from the limits = %d, want 6", pl.perNet)
	}
	for i := range 20 {
		pl.add(waiting{ip: netip.AddrFrom4([4]byte{198, 51, 100, byte(i + 1)}), kinds: one}, true)
	}
	var in []*waiting
	for {
		w, ok := pl.next()
		if !ok {
			break
		}
		in = append(in, w)
	}
	if len(in) != 6 {
		t.Fatalf("%d addresses of one network in the window, want its share of 6", len(in))
	}
	// Eight addresses that took 4 s for their 2 probes: 2 s per probe.
	for range 8 {
		pl.observe(4*time.Second, 2)
	}
	if pl.perNet != 21 { // ceil(2 × 2 s / 0.2 s) + 1
		t.Errorf("perNet after slow probes = %d, want 21", pl.perNet)
	}
	if _, ok := pl.next(); !ok {
		t.Error("the network's larger share left no room for its next address")
	}
}

// TestAddNames checks what a saved batch's targets do to an address still waiting: a
// better-ranked name replaces the one its probes will use, and a role adds only the
// kinds it calls for, once.
func TestAddNames(t *testing.T) {
	gate, err := polite.NewGate([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Stage{byIP: map[netip.Addr]*waiting{}, p: &Progress{}}
	s.cfg.Gate = gate
	s.cfg.Kinds = map[string]bool{result.KindTCP443: true, result.KindTLS443: true, result.KindNTP123: true}
	s.wakeL = sync.NewCond(&s.mu)
	s.plan = newPlanner(polite.DefaultConfig(), 10, testPorts, allProbes)
	ip := addr("192.0.2.7")
	www := store.RoleAddr | store.RoleWWW
	s.addLocked(t.Context(), store.Target{IP: ip, Roles: www, WWW: "www.b.example", WWWRank: 2, Host: "www.b.example"}, www, 0)
	s.addLocked(t.Context(), store.Target{IP: ip, Roles: www, WWW: "www.a.example", WWWRank: 1, Host: "www.b.example"}, 0, 0)
	all := www | store.RoleNTP
	s.addLocked(t.Context(), store.Target{IP: ip, Roles: all, WWW: "www.a.example", WWWRank: 1, Host: "www.b.example"}, store.RoleNTP, 0)
	w := s.byIP[ip]
	if w == nil {
		t.Fatal("the address is not waiting")
	}
	if got, want := w.kinds.list(), []string{result.KindTCP443, result.KindTLS443, result.KindNTP123}; !cmp.Equal(got, want) {
		t.Errorf("kinds waiting = %v, want %v", got, want)
	}
	if w.www != "www.a.example" || !w.ntp {
		t.Errorf("waiting record: www %q ntp %v, want www.a.example and ntp", w.www, w.ntp)
	}
	if s.plan.starts != 3 || s.p.Total.Load() != 3 || s.p.Addresses.Load() != 1 {
		t.Errorf("probes %d, total %d, addresses %d: want 3, 3, 1", s.plan.starts, s.p.Total.Load(), s.p.Addresses.Load())
	}
}

// TestAddMapped adds an IPv4 address waiting as a mail exchanger, then the IPv4-mapped
// IPv6 address of the same IPv4 address (a hostile AAAA record) as a web server: the
// IPv4 address keeps its names and kinds (the lab's mapped.uk once made the STARTTLS
// probe of its shared web server run without a server name), and the mapped address is
// a target of its own, here refused by the gate (special-purpose).
func TestAddMapped(t *testing.T) {
	gate, err := polite.NewGate([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &Stage{byIP: map[netip.Addr]*waiting{}, p: &Progress{}, results: make(chan store.Measurement, 4)}
	s.cfg.Gate = gate
	s.cfg.Kinds = map[string]bool{result.KindTCP25: true, result.KindSTARTTLS: true, result.KindTLS443: true}
	s.wakeL = sync.NewCond(&s.mu)
	s.plan = newPlanner(polite.DefaultConfig(), 10, testPorts, allProbes)
	ip, mapped := addr("192.0.2.7"), addr("::ffff:192.0.2.7")
	mx := store.RoleAddr | store.RoleMX
	s.addLocked(t.Context(), store.Target{IP: ip, Roles: mx, MX: "mail.a.example", MXRank: 1, Host: "mail.a.example"}, mx, 0)
	www := store.RoleAddr | store.RoleWWW
	s.addLocked(t.Context(), store.Target{IP: mapped, Roles: www, WWW: "www.mapped.example", WWWRank: 2, Host: "www.mapped.example"}, www, 0)
	w := s.byIP[ip]
	if w == nil {
		t.Fatal("the IPv4 address is not waiting")
	}
	if w.mx != "mail.a.example" || w.www != "" || w.ip != ip {
		t.Errorf("IPv4 record: ip %v mx %q www %q, want %v, mail.a.example and no web name", w.ip, w.mx, w.www, ip)
	}
	if got, want := w.kinds.list(), []string{result.KindTCP25, result.KindSTARTTLS}; !cmp.Equal(got, want) {
		t.Errorf("IPv4 kinds waiting = %v, want %v", got, want)
	}
	if s.byIP[mapped] != nil {
		t.Errorf("the mapped address waits for probes: %+v", *s.byIP[mapped])
	}
	if m := <-s.results; m.IP != mapped || m.Kind != result.KindSkipped {
		t.Errorf("recorded %v %s, want %v skipped", m.IP, m.Kind, mapped)
	}
}
