package polite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/polite/politetest"
)

// TestExclusion runs two schedulers sharing an Exclusion, as a run's probes and name
// server checks do: random tasks under random limits, many of them at the same
// addresses in both. No address may ever have two tasks in flight (the recorder is
// shared), each scheduler's own limits must hold on its tasks, and every task runs
// once. When the two have the same port window (as a run's do), it holds on their
// tasks together: an address sees both schedulers' ports.
func TestExclusion(t *testing.T) {
	for i := range 40 {
		t.Run(fmt.Sprintf("case%d", i), func(t *testing.T) { checkExclusion(t, uint64(i)) })
	}
}

// FuzzExclusion runs TestExclusion's check on fuzzed seeds.
func FuzzExclusion(f *testing.F) {
	f.Add(uint64(3))
	f.Fuzz(func(t *testing.T, seed uint64) { checkExclusion(t, seed) })
}

// checkExclusion runs two schedulers sharing an Exclusion on random tasks of seed.
func checkExclusion(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 13))
	cfgA, cfgB := randomConfig(r), randomConfig(r)
	samePorts := r.IntN(2) == 0
	if samePorts {
		cfgB.PortWindow, cfgB.MaxPortsPerWindow = cfgA.PortWindow, cfgA.MaxPortsPerWindow
	}
	specsA := randomSpecs(r, 1+r.IntN(20))
	var specsB []spec
	for range 1 + r.IntN(40) { // DNS-like checks, mostly at A's addresses
		a := specsA[r.IntN(len(specsA))].addr
		if r.IntN(4) == 0 {
			a = fmt.Sprintf("203.0.113.%d", r.IntN(4))
		}
		specsB = append(specsB, spec{a, udp, 53, time.Duration(r.IntN(300)) * time.Millisecond})
	}
	synctest.Test(t, func(t *testing.T) {
		clk := politetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		rec := newRecorder(clk)
		x := polite.NewExclusion()
		var scheds [2]*polite.Scheduler
		var ids [2][]int
		for k, c := range []polite.Config{cfgA, cfgB} {
			s, err := polite.New(c, clk)
			if err != nil {
				t.Fatal(err)
			}
			s.Exclude(x)
			for _, sp := range [][]spec{specsA, specsB}[k] {
				ids[k] = append(ids[k], len(rec.snapshot()))
				if err := s.Add(rec.task(sp)); err != nil {
					t.Fatal(err)
				}
			}
			scheds[k] = s
		}
		done := make(chan error, 2)
		for _, s := range scheds {
			go func() { done <- s.Run(t.Context()) }()
		}
		for ended := 0; ended < 2; {
			synctest.Wait()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				ended++
				continue
			default:
			}
			if !clk.AdvanceToNext() {
				t.Fatalf("stuck: %d of 2 schedulers returned and no timer is pending", ended)
			}
		}
		events := rec.snapshot()
		for _, v := range rec.violations {
			t.Error(v)
		}
		for k, c := range []polite.Config{cfgA, cfgB} {
			var mine []event
			for _, id := range ids[k] {
				mine = append(mine, events[id])
			}
			for _, v := range checkLimits(c, mine, 0) {
				t.Errorf("scheduler %d %+v: %s", k, c, v)
			}
		}
		if !samePorts {
			return
		}
		byAddr := map[netip.Addr][]event{}
		for _, e := range events {
			if e.Runs > 0 {
				byAddr[e.Addr.Unmap()] = append(byAddr[e.Addr.Unmap()], e)
			}
		}
		for a, es := range byAddr {
			slices.SortStableFunc(es, func(x, y event) int { return int(x.Start - y.Start) })
			for _, v := range checkPorts(cfgA, a, es) {
				t.Errorf("both schedulers, port window %v of %d: %s", cfgA.PortWindow, cfgA.MaxPortsPerWindow, v)
			}
		}
	})
}

// TestExclusionCancel ends both schedulers while one waits for an address the other
// has in flight: both return, nothing is left behind.
func TestExclusionCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := politetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		rec := newRecorder(clk)
		x := polite.NewExclusion()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 2)
		for _, sp := range []spec{{"192.0.2.1", tcp, 443, time.Hour}, {"192.0.2.1", udp, 53, 0}} {
			s, err := polite.New(lifted(), clk)
			if err != nil {
				t.Fatal(err)
			}
			s.Exclude(x)
			if err := s.Add(rec.task(sp)); err != nil {
				t.Fatal(err)
			}
			go func() { done <- s.Run(ctx) }()
			synctest.Wait()
		}
		cancel()
		for range 2 {
			<-done
		}
		ev := rec.snapshot()
		if ev[1].Runs != 0 {
			t.Errorf("the waiting task ran while the other was in flight: %+v", ev)
		}
	})
}
