package polite_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/polite"
)

const (
	icmp = polite.ProtoICMP
	tcp  = polite.ProtoTCP
	udp  = polite.ProtoUDP
)

// lifted is a config with every limit off, for cases that test one limit.
func lifted() polite.Config {
	return polite.Config{V4Bits: 24, V6Bits: 48, Rate: math.Inf(1), MaxPortsPerWindow: 1, Workers: 100, Seed: 1}
}

type start struct {
	Addr  string
	Proto polite.Proto
	Port  uint16
	At    time.Duration
}

func starts(events []event) []start {
	var out []start
	for _, e := range events {
		out = append(out, start{e.Addr.String(), e.Proto, e.Port, e.Start})
	}
	slices.SortStableFunc(out, func(a, b start) int { return int(a.At - b.At) })
	return out
}

// TestExactSchedule checks hand-computed start times, one limit at a time.
func TestExactSchedule(t *testing.T) {
	s := time.Second
	ms := time.Millisecond
	tests := []struct {
		name  string
		cfg   func(*polite.Config)
		specs []spec
		want  []start
	}{
		{
			name:  "address gap and one in flight",
			cfg:   func(c *polite.Config) { c.AddrGap = s },
			specs: []spec{{"192.0.2.1", tcp, 80, 0}, {"192.0.2.1", tcp, 80, 3 * s}, {"192.0.2.1", tcp, 80, 0}},
			want:  []start{{"192.0.2.1", tcp, 80, 0}, {"192.0.2.1", tcp, 80, s}, {"192.0.2.1", tcp, 80, 4 * s}},
		},
		{
			name: "port window: third port waits for the first to leave it",
			cfg: func(c *polite.Config) {
				c.AddrGap = s
				c.PortWindow = 10 * s
				c.MaxPortsPerWindow = 2
			},
			specs: []spec{{"2001:db8::1", tcp, 25, 0}, {"2001:db8::1", tcp, 80, 0}, {"2001:db8::1", tcp, 443, 0}, {"2001:db8::1", icmp, 0, 0}},
			// ICMP adds no port, so it goes first; 443 waits until 25
			// (ended at 1s) is 10s old.
			want: []start{{"2001:db8::1", icmp, 0, 0}, {"2001:db8::1", tcp, 25, s}, {"2001:db8::1", tcp, 80, 2 * s}, {"2001:db8::1", tcp, 443, 11 * s}},
		},
		{
			name: "port window counts from the end of a long probe",
			cfg: func(c *polite.Config) {
				c.PortWindow = 10 * s
				c.MaxPortsPerWindow = 1
			},
			specs: []spec{{"2001:db8::1", tcp, 25, 5 * s}, {"2001:db8::1", udp, 25, 0}, {"2001:db8::1", tcp, 25, 0}},
			want:  []start{{"2001:db8::1", tcp, 25, 0}, {"2001:db8::1", tcp, 25, 5 * s}, {"2001:db8::1", udp, 25, 15 * s}},
		},
		{
			name: "network gap interleaves addresses of one /24",
			cfg: func(c *polite.Config) {
				c.AddrGap = s
				c.NetGap = 200 * ms
			},
			specs: []spec{{"192.0.2.1", icmp, 0, 0}, {"192.0.2.1", icmp, 0, 0}, {"192.0.2.200", icmp, 0, 0}, {"192.0.2.200", icmp, 0, 0}, {"198.51.100.1", icmp, 0, 0}},
			// Order by rank (seed 1): 198.51.100.1 has its own network.
			want: []start{
				{"192.0.2.200", icmp, 0, 0}, {"198.51.100.1", icmp, 0, 0}, {"192.0.2.1", icmp, 0, 200 * ms},
				{"192.0.2.200", icmp, 0, s}, {"192.0.2.1", icmp, 0, 1200 * ms},
			},
		},
		{
			name:  "network is /48 for IPv6",
			cfg:   func(c *polite.Config) { c.NetGap = s },
			specs: []spec{{"2001:db8:0:1::1", icmp, 0, 0}, {"2001:db8:0:2::1", icmp, 0, 0}, {"2001:db8:1::1", icmp, 0, 0}},
			want:  []start{{"2001:db8:0:2::1", icmp, 0, 0}, {"2001:db8:1::1", icmp, 0, 0}, {"2001:db8:0:1::1", icmp, 0, s}},
		},
		{
			name:  "IPv4-mapped counts as IPv4",
			cfg:   func(c *polite.Config) { c.AddrGap = s },
			specs: []spec{{"192.0.2.1", icmp, 0, 0}, {"::ffff:192.0.2.1", icmp, 0, 0}},
			want:  []start{{"192.0.2.1", icmp, 0, 0}, {"::ffff:192.0.2.1", icmp, 0, s}},
		},
		{
			name:  "NAT64 counts as the IPv4 address it reaches",
			cfg:   func(c *polite.Config) { c.AddrGap, c.NetGap = s, 300*ms },
			specs: []spec{{"192.0.2.1", icmp, 0, 0}, {"64:ff9b::192.0.2.1", icmp, 0, 0}, {"64:ff9b::192.0.2.7", icmp, 0, 0}},
			want:  []start{{"192.0.2.1", icmp, 0, 0}, {"64:ff9b::c000:207", icmp, 0, 300 * ms}, {"64:ff9b::c000:201", icmp, 0, s}},
		},
		{
			name:  "global rate",
			cfg:   func(c *polite.Config) { c.Rate = 2 },
			specs: []spec{{"192.0.2.1", icmp, 0, 0}, {"198.51.100.1", icmp, 0, 0}, {"203.0.113.1", icmp, 0, 0}},
			want:  []start{{"198.51.100.1", icmp, 0, 0}, {"192.0.2.1", icmp, 0, 500 * ms}, {"203.0.113.1", icmp, 0, s}},
		},
		{
			name:  "workers",
			cfg:   func(c *polite.Config) { c.Workers = 1 },
			specs: []spec{{"192.0.2.1", icmp, 0, 2 * s}, {"198.51.100.1", icmp, 0, 3 * s}, {"203.0.113.1", icmp, 0, 0}},
			want:  []start{{"198.51.100.1", icmp, 0, 0}, {"192.0.2.1", icmp, 0, 3 * s}, {"203.0.113.1", icmp, 0, 5 * s}},
		},
		{
			name: "an address under way goes before a new one",
			cfg:  func(c *polite.Config) { c.AddrGap = s; c.Rate = 1 },
			specs: []spec{{"192.0.2.1", icmp, 0, 0}, {"192.0.2.1", icmp, 0, 0}, {"198.51.100.1", icmp, 0, 0}, {"198.51.100.1", icmp, 0, 0},
				{"203.0.113.1", icmp, 0, 0}, {"203.0.113.1", icmp, 0, 0}},
			want: []start{
				{"198.51.100.1", icmp, 0, 0}, {"198.51.100.1", icmp, 0, s}, {"192.0.2.1", icmp, 0, 2 * s},
				{"192.0.2.1", icmp, 0, 3 * s}, {"203.0.113.1", icmp, 0, 4 * s}, {"203.0.113.1", icmp, 0, 5 * s},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := lifted()
			tc.cfg(&cfg)
			err, events, rec := runFake(t, cfg, tc.specs, nil)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if diff := cmp.Diff(tc.want, starts(events)); diff != "" {
				t.Errorf("starts (-want +got):\n%s", diff)
			}
			for _, v := range append(rec.violations, checkLimits(cfg, events, rec.maxInflight)...) {
				t.Error(v)
			}
		})
	}
}

// randomSpecs makes a task set like a crawl's: addresses clustered in a few
// networks of both families, each with some of v6matrix's probes.
func randomSpecs(r *rand.Rand, nAddr int) []spec {
	probes := []struct {
		proto polite.Proto
		port  uint16
	}{{icmp, 0}, {tcp, 25}, {tcp, 80}, {tcp, 443}, {tcp, 443}, {udp, 53}, {udp, 123}, {udp, 33434}}
	var specs []spec
	for range nAddr {
		var a string
		if r.IntN(2) == 0 {
			a = fmt.Sprintf("198.51.%d.%d", r.IntN(3), r.IntN(256))
		} else {
			a = fmt.Sprintf("2001:db8:%x:%x::%x", r.IntN(2), r.IntN(3), r.IntN(65536))
		}
		for _, i := range r.Perm(len(probes))[:1+r.IntN(len(probes))] {
			d := time.Duration(r.IntN(4)) * time.Duration(r.IntN(1500)) * time.Millisecond
			specs = append(specs, spec{a, probes[i].proto, probes[i].port, d})
		}
	}
	return specs
}

func randomConfig(r *rand.Rand) polite.Config {
	c := polite.DefaultConfig()
	c.AddrGap = time.Duration(r.IntN(3000)) * time.Millisecond
	c.NetGap = time.Duration(r.IntN(500)) * time.Millisecond
	c.V4Bits = []int{16, 24, 32}[r.IntN(3)]
	c.V6Bits = []int{32, 48, 64, 128}[r.IntN(4)]
	c.Rate = []float64{math.Inf(1), 3, 7.5, 50}[r.IntN(4)]
	c.PortWindow = []time.Duration{0, time.Second, 10 * time.Second}[r.IntN(3)]
	c.MaxPortsPerWindow = 1 + r.IntN(3)
	c.Workers = 1 + r.IntN(20)
	c.Seed = r.Int64()
	return c
}

// TestRandomInvariants is a property test: random task sets under random
// limits, with every limit checked on the recorded times.
func TestRandomInvariants(t *testing.T) {
	for i := range 40 {
		r := rand.New(rand.NewPCG(uint64(i), 7))
		cfg := randomConfig(r)
		specs := randomSpecs(r, 1+r.IntN(30))
		t.Run(fmt.Sprintf("case%d", i), func(t *testing.T) {
			err, events, rec := runFake(t, cfg, specs, nil)
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			for _, v := range append(rec.violations, checkLimits(cfg, events, rec.maxInflight)...) {
				t.Errorf("%+v: %s", cfg, v)
			}
		})
	}
}

// FuzzScheduler runs the property test on fuzzed seeds.
func FuzzScheduler(f *testing.F) {
	f.Add(uint64(1), uint8(10))
	f.Add(uint64(99), uint8(1))
	f.Fuzz(func(t *testing.T, seed uint64, n uint8) {
		r := rand.New(rand.NewPCG(seed, 11))
		cfg := randomConfig(r)
		specs := randomSpecs(r, 1+int(n)%40)
		err, events, rec := runFake(t, cfg, specs, nil)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		for _, v := range append(rec.violations, checkLimits(cfg, events, rec.maxInflight)...) {
			t.Errorf("%+v: %s", cfg, v)
		}
	})
}

// firstStarts returns addresses in the order of their first probe.
func firstStarts(events []event) []string {
	var order []string
	seen := map[string]bool{}
	for _, s := range starts(events) {
		if !seen[s.Addr] {
			seen[s.Addr] = true
			order = append(order, s.Addr)
		}
	}
	return order
}

func TestOrder(t *testing.T) {
	var specs []spec
	for i := range 50 {
		specs = append(specs, spec{fmt.Sprintf("198.51.100.%d", i), icmp, 0, 0})
	}
	reversed := slices.Clone(specs)
	slices.Reverse(reversed)
	run := func(seed int64, specs []spec) []string {
		cfg := lifted()
		cfg.Rate = 10 // one start at a time, so the order is visible
		cfg.Seed = seed
		err, events, _ := runFake(t, cfg, specs, nil)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		return firstStarts(events)
	}
	var added []string
	for _, s := range specs {
		added = append(added, s.addr)
	}
	a1, a1again, a1rev, a2 := run(1, specs), run(1, specs), run(1, reversed), run(2, specs)
	if diff := cmp.Diff(a1, a1again); diff != "" {
		t.Errorf("seed 1 twice gave different orders (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(a1, a1rev); diff != "" {
		t.Errorf("seed 1 depends on the order of Add (-forward +reversed):\n%s", diff)
	}
	if cmp.Equal(a1, a2) {
		t.Errorf("seeds 1 and 2 gave the same order %v", a1)
	}
	if cmp.Equal(a1, added) {
		t.Errorf("order is the order of Add")
	}
	if diff := cmp.Diff(added, a1, cmp.Transformer("sort", func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s })); diff != "" {
		t.Errorf("not every address ran:\n%s", diff)
	}
}

func TestCancel(t *testing.T) {
	var specs []spec
	for i := range 100 {
		specs = append(specs, spec{fmt.Sprintf("2001:db8:%x::1", i), tcp, 443, time.Minute})
	}
	cfg := lifted()
	cfg.Rate = 10
	cfg.Workers = 20
	var cancelledAt time.Duration
	err, events, rec := runFake(t, cfg, specs, func(r *recorder, _ *polite.Scheduler, cancel context.CancelFunc) {
		n := 0
		r.onStart = func(int) {
			n++ // starts are serialised by the rate limit
			if n == 15 {
				cancelledAt = r.clk.Now().Sub(r.origin)
				cancel()
			}
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	ran := 0
	for _, e := range events {
		if e.Runs == 0 {
			continue
		}
		ran++
		if e.Start > cancelledAt {
			t.Errorf("%v started at %v, after the cancel at %v", e.Addr, e.Start, cancelledAt)
		}
		if e.End != cancelledAt {
			t.Errorf("%v ended at %v, want at the cancel (%v): Run must return promptly", e.Addr, e.End, cancelledAt)
		}
	}
	if ran != 15 {
		t.Errorf("%d probes ran, want 15", ran)
	}
	for _, v := range rec.violations {
		t.Error(v)
	}
}

func TestCancelledBeforeRun(t *testing.T) {
	err, events, _ := runFake(t, lifted(), []spec{{"192.0.2.1", icmp, 0, 0}}, func(_ *recorder, _ *polite.Scheduler, cancel context.CancelFunc) { cancel() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if n := countRuns(events); n != 0 {
		t.Errorf("%d probes ran after the context ended", n)
	}
}

// TestAddDuringRun queues more work from running probes, as a crawl that
// learns new addresses would: for the address in flight, for one under way,
// and for new ones; the limits must hold across it.
func TestAddDuringRun(t *testing.T) {
	cfg := polite.DefaultConfig()
	specs := []spec{{"192.0.2.1", tcp, 25, 3 * time.Second}, {"2001:db8::1", icmp, 0, 3 * time.Second}}
	err, events, rec := runFake(t, cfg, specs, func(r *recorder, s *polite.Scheduler, _ context.CancelFunc) {
		added := false
		r.onStart = func(id int) {
			if added {
				return
			}
			added = true
			busy := r.snapshot()[id].Addr.String() // in flight now
			more := []spec{{busy, tcp, 80, 0}, {busy, tcp, 443, 0}, {"192.0.2.2", tcp, 25, 0},
				{"2001:db8::1", udp, 123, 0}, {"2001:db8:1::1", udp, 53, 0}}
			for _, sp := range more {
				if err := s.Add(r.task(sp)); err != nil {
					t.Errorf("Add during Run: %v", err)
				}
			}
		}
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(events) != 7 {
		t.Errorf("%d tasks recorded, want 7", len(events))
	}
	for _, v := range append(rec.violations, checkLimits(cfg, events, rec.maxInflight)...) {
		t.Error(v)
	}
}

func TestAddErrors(t *testing.T) {
	run := func(context.Context) {}
	tests := []struct {
		name string
		task polite.Task
		want string
	}{
		{"no address", polite.Task{Proto: tcp, Port: 80, Run: run}, "polite: task has no address"},
		{"no run", polite.Task{Addr: netip.MustParseAddr("192.0.2.1"), Proto: tcp, Port: 80}, "polite: task 192.0.2.1 tcp/80 has no Run function"},
		{"icmp with port", polite.Task{Addr: netip.MustParseAddr("192.0.2.1"), Proto: icmp, Port: 7, Run: run}, "polite: task 192.0.2.1: icmp takes no port, got 7"},
		{"tcp without port", polite.Task{Addr: netip.MustParseAddr("2001:db8::1"), Proto: tcp, Run: run}, "polite: task 2001:db8::1: tcp needs a destination port"},
		{"unknown proto", polite.Task{Addr: netip.MustParseAddr("2001:db8::1"), Proto: 9, Port: 1, Run: run}, "polite: task 2001:db8::1: unknown protocol proto(9)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := polite.New(polite.DefaultConfig(), nil)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Add(tc.task)
			if err == nil || err.Error() != tc.want {
				t.Errorf("Add = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestRunOnce(t *testing.T) {
	s, err := polite.New(lifted(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(t.Context()); err != nil {
		t.Fatalf("first Run of an empty scheduler: %v", err)
	}
	if err := s.Run(t.Context()); err == nil || err.Error() != "polite: Run called twice" {
		t.Errorf("second Run = %v", err)
	}
	task := polite.Task{Addr: netip.MustParseAddr("192.0.2.1"), Run: func(context.Context) {}}
	if err := s.Add(task); err == nil || err.Error() != "polite: task 192.0.2.1 icmp/0 added after Run returned" {
		t.Errorf("Add after Run = %v", err)
	}
}
