package dnssrv

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// fakeClock is an injectable clock for Recursor.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// twoServerTree is a root delegating lame.test to ns1 (listed first) and
// ns2, which both hold it, with the given faults per server.
func twoServerTree(t *testing.T, faults1, faults2 map[string]Fault) *Tree {
	t.Helper()
	root := soaLine + `
.                 IN NS a.root-servers.net.
a.root-servers.net. IN A 127.0.6.1
lame.test.        IN NS ns1.lame.test.
lame.test.        IN NS ns2.lame.test.
ns1.lame.test.    IN A  127.0.6.2
ns2.lame.test.    IN A  127.0.6.3
`
	var zone strings.Builder
	zone.WriteString(soaLine + "@ IN NS ns1\n@ IN NS ns2\nns1 IN A 127.0.6.2\nns2 IN A 127.0.6.3\n")
	for i := range 9 {
		fmt.Fprintf(&zone, "q%d IN A 192.0.2.%d\n", i+1, i+1)
	}
	fmt.Fprintf(&zone, "slow IN A 192.0.2.99\n")
	cfg := TreeConfig{
		Timeout: 100 * time.Millisecond,
		Servers: []TreeServer{
			{Name: "root", Addr: netip.MustParseAddr("127.0.6.1"), Zones: map[string]string{".": root}},
			{Name: "ns1", Addr: netip.MustParseAddr("127.0.6.2"), Zones: map[string]string{"lame.test.": zone.String()}, Faults: faults1},
			{Name: "ns2", Addr: netip.MustParseAddr("127.0.6.3"), Zones: map[string]string{"lame.test.": zone.String()}, Faults: faults2},
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	tree, err := StartTree(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := tree.Close(); err != nil {
			t.Errorf("close tree: %v", err)
		}
	})
	return tree
}

// drops makes a server silent for the given names of lame.test.
func drops(names ...string) map[string]Fault {
	m := map[string]Fault{}
	for _, n := range names {
		m[n+".lame.test."] = FaultDrop
	}
	return m
}

// TestRecursorBackoff asks a sequence of questions and counts, for each,
// the queries each server of lame.test received: a server in back-off is
// not asked while another answers.
func TestRecursorBackoff(t *testing.T) {
	type step struct {
		name    string        // asked as <name>.lame.test A
		advance time.Duration // clock advance before asking
		rcode   int
		asked   [2]int // queries for the name at ns1, ns2
	}
	ok, fail := dns.RcodeSuccess, dns.RcodeServerFailure
	tests := []struct {
		name             string
		faults1, faults2 map[string]Fault
		steps            []step
	}{
		{
			name:    "dead server asked once per back-off period",
			faults1: drops("q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8"),
			steps: []step{
				{name: "q1", rcode: ok, asked: [2]int{1, 1}},
				{name: "q2", rcode: ok, asked: [2]int{0, 1}}, // demoted after one timeout
				{name: "q3", rcode: ok, asked: [2]int{0, 1}},
				{name: "q4", advance: 29 * time.Second, rcode: ok, asked: [2]int{0, 1}},
				{name: "q5", advance: 2 * time.Second, rcode: ok, asked: [2]int{1, 1}}, // probe: second timeout
				{name: "q6", rcode: ok, asked: [2]int{0, 1}},                           // back-off
				{name: "q7", advance: 29 * time.Second, rcode: ok, asked: [2]int{0, 1}},
				{name: "q8", advance: 2 * time.Second, rcode: ok, asked: [2]int{1, 1}},
			},
		},
		{
			name:    "server back after the back-off is used again",
			faults1: drops("q1", "q2"),
			faults2: map[string]Fault{"q2.lame.test.": FaultServFail},
			steps: []step{
				{name: "q1", rcode: ok, asked: [2]int{1, 1}},
				{name: "q2", rcode: fail, asked: [2]int{1, 1}}, // ns2 fails: ns1 asked, second timeout
				{name: "q3", rcode: ok, asked: [2]int{0, 1}},   // alive again, but in back-off
				{name: "q4", advance: 29 * time.Second, rcode: ok, asked: [2]int{0, 1}},
				{name: "q5", advance: 2 * time.Second, rcode: ok, asked: [2]int{1, 0}}, // probe answered
				{name: "q6", rcode: ok, asked: [2]int{1, 0}},
			},
		},
		{
			name:    "all servers in back-off are still tried",
			faults1: drops("q1", "q2", "q4"),
			faults2: drops("q1", "q2"),
			steps: []step{
				{name: "q1", rcode: fail, asked: [2]int{1, 1}},
				{name: "q2", rcode: fail, asked: [2]int{1, 1}},
				{name: "q3", rcode: ok, asked: [2]int{1, 0}},
				// ns1 answered q3 (back-off over), ns2 is still in back-off
				// but is asked when ns1 fails.
				{name: "q4", rcode: ok, asked: [2]int{1, 1}},
			},
		},
		{
			name:    "one timeout demotes, a reply restores",
			faults1: drops("q1"),
			faults2: map[string]Fault{"q3.lame.test.": FaultServFail},
			steps: []step{
				{name: "q1", rcode: ok, asked: [2]int{1, 1}},
				{name: "q2", rcode: ok, asked: [2]int{0, 1}},
				{name: "q3", rcode: ok, asked: [2]int{1, 1}},
				{name: "q4", rcode: ok, asked: [2]int{1, 0}},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tree := twoServerTree(t, tc.faults1, tc.faults2)
			clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			tree.Recursor.Now = clock.Now
			ns1, ns2 := tree.Auth("ns1"), tree.Auth("ns2")
			for _, s := range tc.steps {
				clock.Advance(s.advance)
				qname := s.name + ".lame.test."
				res := tree.Recursor.Resolve(context.Background(), qname, dns.TypeA)
				if res.Rcode != s.rcode {
					t.Errorf("%s: rcode %s, want %s", s.name, dns.RcodeToString[res.Rcode], dns.RcodeToString[s.rcode])
				}
				if s.rcode == dns.RcodeSuccess && len(res.Answer) != 1 {
					t.Errorf("%s: %d answers, want 1", s.name, len(res.Answer))
				}
				got := [2]int{ns1.Count(qname, dns.TypeA), ns2.Count(qname, dns.TypeA)}
				if got != s.asked {
					t.Errorf("%s: queries at ns1, ns2 = %v, want %v", s.name, got, s.asked)
				}
			}
		})
	}
}

// TestRecursorSharesResolution sends identical questions at once while the
// first server drops them: one resolution serves them all.
func TestRecursorSharesResolution(t *testing.T) {
	tree := twoServerTree(t, drops("slow"), nil)
	const n = 8
	start := make(chan struct{})
	rcodes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			rcodes[i] = tree.Recursor.Resolve(context.Background(), "slow.lame.test.", dns.TypeA).Rcode
		})
	}
	close(start)
	wg.Wait()
	want := make([]int, n)
	if diff := cmp.Diff(want, rcodes); diff != "" {
		t.Errorf("rcodes (-want +got):\n%s", diff)
	}
	got := [2]int{tree.Auth("ns1").Count("slow.lame.test.", dns.TypeA), tree.Auth("ns2").Count("slow.lame.test.", dns.TypeA)}
	if got != [2]int{1, 1} {
		t.Errorf("queries at ns1, ns2 = %v, want [1 1]", got)
	}
}

// TestInfraOrder checks the order of a nameserver set for server states
// built through replied and timedOut.
func TestInfraOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b, c := netip.MustParseAddrPort("127.0.0.1:53"), netip.MustParseAddrPort("127.0.0.2:53"), netip.MustParseAddrPort("127.0.0.3:53")
	timeouts := func(ic *infraCache, addr netip.AddrPort, n int) {
		for range n {
			ic.timedOut(addr, t0)
		}
	}
	tests := []struct {
		name             string
		setup            func(*infraCache)
		at               time.Duration // after t0
		use, deferred    []netip.AddrPort
		again, deferred2 []netip.AddrPort // a second order right after
	}{
		{name: "unknown servers keep their order", setup: func(*infraCache) {},
			use: []netip.AddrPort{a, b, c}},
		{name: "faster RTT band first", setup: func(ic *infraCache) {
			ic.replied(a, 900*time.Millisecond)
			ic.replied(b, time.Millisecond)
		}, use: []netip.AddrPort{b, c, a}},
		{name: "same RTT band keeps order", setup: func(ic *infraCache) {
			ic.replied(a, 5*time.Millisecond)
			ic.replied(b, time.Millisecond)
		}, use: []netip.AddrPort{a, b, c}},
		{name: "timed out once goes behind", setup: func(ic *infraCache) { timeouts(ic, a, 1) },
			use: []netip.AddrPort{b, c, a}},
		{name: "timed out once keep their order", setup: func(ic *infraCache) { timeouts(ic, a, 1); timeouts(ic, b, 1) },
			use: []netip.AddrPort{c, a, b}},
		{name: "back-off deferred", setup: func(ic *infraCache) { timeouts(ic, b, 2) },
			use: []netip.AddrPort{a, c}, deferred: []netip.AddrPort{b}},
		{name: "all in back-off, fewest timeouts first", setup: func(ic *infraCache) { timeouts(ic, a, 2); timeouts(ic, b, 3); timeouts(ic, c, 2) },
			deferred: []netip.AddrPort{a, c, b}},
		{name: "reply ends back-off", setup: func(ic *infraCache) { timeouts(ic, b, 2); ic.replied(b, time.Millisecond) },
			use: []netip.AddrPort{a, b, c}},
		{name: "back-off over: one probe first", setup: func(ic *infraCache) { timeouts(ic, c, 2) },
			at:  backoffDuration,
			use: []netip.AddrPort{c, a, b}, again: []netip.AddrPort{a, b}, deferred2: []netip.AddrPort{c}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ic := newInfraCache(10)
			tc.setup(ic)
			use, deferred := ic.order([]netip.AddrPort{a, b, c}, t0.Add(tc.at))
			if diff := cmp.Diff([][]netip.AddrPort{tc.use, tc.deferred}, [][]netip.AddrPort{use, deferred}, cmp.Comparer(func(x, y netip.AddrPort) bool { return x == y })); diff != "" {
				t.Errorf("order (-want +got):\n%s", diff)
			}
			if tc.again == nil && tc.deferred2 == nil {
				return
			}
			use, deferred = ic.order([]netip.AddrPort{a, b, c}, t0.Add(tc.at))
			if diff := cmp.Diff([][]netip.AddrPort{tc.again, tc.deferred2}, [][]netip.AddrPort{use, deferred}, cmp.Comparer(func(x, y netip.AddrPort) bool { return x == y })); diff != "" {
				t.Errorf("second order (-want +got):\n%s", diff)
			}
		})
	}
}

// TestInfraBounded checks that the cache keeps at most max servers and
// forgets the least recently used one.
func TestInfraBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b, c := netip.MustParseAddrPort("127.0.0.1:53"), netip.MustParseAddrPort("127.0.0.2:53"), netip.MustParseAddrPort("127.0.0.3:53")
	ic := newInfraCache(2)
	for range backoffAfter {
		ic.timedOut(a, t0)
		ic.timedOut(b, t0)
	}
	ic.order([]netip.AddrPort{a}, t0) // a is now the most recently used
	ic.replied(c, time.Millisecond)   // evicts b
	use, deferred := ic.order([]netip.AddrPort{a, b, c}, t0)
	eq := cmp.Comparer(func(x, y netip.AddrPort) bool { return x == y })
	if diff := cmp.Diff([][]netip.AddrPort{{b, c}, {a}}, [][]netip.AddrPort{use, deferred}, eq); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if n := ic.lru.Len(); n != 2 || len(ic.m) != 2 {
		t.Errorf("cache holds %d/%d entries, want 2", n, len(ic.m))
	}
}
