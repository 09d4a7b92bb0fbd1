package polite_test

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/polite/politetest"
)

// spec is one task to queue: a fake probe that takes dur of fake time.
type spec struct {
	addr  string
	proto polite.Proto
	port  uint16
	dur   time.Duration
}

// event is what a fake probe recorded about itself.
type event struct {
	ID         int
	Addr       netip.Addr
	Proto      polite.Proto
	Port       uint16
	Start, End time.Duration
	Runs       int
}

// recorder builds fake probes that record their start and end on the fake
// clock and check, as they run, that no address has two probes in flight.
type recorder struct {
	clk    *politetest.Clock
	origin time.Time

	mu          sync.Mutex
	events      []event
	busy        map[netip.Addr]bool
	inflight    int
	maxInflight int
	violations  []string
	onStart     func(id int) // optional, called at each start
}

func newRecorder(clk *politetest.Clock) *recorder {
	return &recorder{clk: clk, origin: clk.Now(), busy: map[netip.Addr]bool{}}
}

func (r *recorder) task(sp spec) polite.Task {
	r.mu.Lock()
	id := len(r.events)
	a := netip.MustParseAddr(sp.addr)
	r.events = append(r.events, event{ID: id, Addr: a, Proto: sp.proto, Port: sp.port, Start: -1, End: -1})
	r.mu.Unlock()
	return polite.Task{Addr: a, Proto: sp.proto, Port: sp.port, Run: func(ctx context.Context) {
		r.mu.Lock()
		e := &r.events[id]
		e.Runs++
		e.Start = r.clk.Now().Sub(r.origin)
		key := a.Unmap()
		if r.busy[key] {
			r.violations = append(r.violations, fmt.Sprintf("%v: two probes in flight at %v", a, e.Start))
		}
		r.busy[key] = true
		r.inflight++
		r.maxInflight = max(r.maxInflight, r.inflight)
		hook := r.onStart
		r.mu.Unlock()
		if hook != nil {
			hook(id)
		}
		_ = r.clk.Sleep(ctx, sp.dur) // a cancelled probe ends early, as real ones do
		r.mu.Lock()
		r.events[id].End = r.clk.Now().Sub(r.origin)
		r.busy[key] = false
		r.inflight--
		r.mu.Unlock()
	}}
}

// snapshot returns a copy of the events.
func (r *recorder) snapshot() []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// runFake queues specs on a scheduler with a fake clock and runs it inside a
// synctest bubble, advancing the fake clock to the next timer whenever every
// goroutine is blocked. It returns Run's error, the events, and the
// recorder. The bubble fails the test if a goroutine is left behind.
func runFake(t *testing.T, cfg polite.Config, specs []spec, setup func(*recorder, *polite.Scheduler, context.CancelFunc)) (error, []event, *recorder) {
	t.Helper()
	var (
		runErr error
		events []event
		rec    *recorder
	)
	synctest.Test(t, func(t *testing.T) {
		clk := politetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
		rec = newRecorder(clk)
		s, err := polite.New(cfg, clk)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		for _, sp := range specs {
			if err := s.Add(rec.task(sp)); err != nil {
				t.Fatalf("Add(%+v): %v", sp, err)
			}
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		if setup != nil {
			setup(rec, s, cancel)
		}
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()
		for steps := 0; ; steps++ {
			synctest.Wait()
			select {
			case runErr = <-done:
				events = rec.snapshot()
				if p := s.Progress(); p.InFlight != 0 || p.Done != countRuns(events) {
					t.Errorf("Progress after Run = %+v, want InFlight 0 and Done %d", p, countRuns(events))
				}
				return
			default:
			}
			if steps > 10_000_000 || !clk.AdvanceToNext() {
				t.Fatalf("Run is stuck: it has not returned and no timer is pending (step %d)", steps)
			}
		}
	})
	return runErr, events, rec
}

func countRuns(events []event) int {
	n := 0
	for _, e := range events {
		n += e.Runs
	}
	return n
}

// checkLimits returns every violation of cfg's limits in events, checked
// independently of the scheduler's own bookkeeping: activity on a port is
// the closed interval [Start, End] of each probe.
func checkLimits(cfg polite.Config, events []event, maxInflight int) []string {
	var bad []string
	for _, e := range events {
		if e.Runs != 1 {
			bad = append(bad, fmt.Sprintf("task %d (%v %v/%d) ran %d times", e.ID, e.Addr, e.Proto, e.Port, e.Runs))
		}
	}
	if maxInflight > cfg.Workers {
		bad = append(bad, fmt.Sprintf("%d probes in flight, Workers is %d", maxInflight, cfg.Workers))
	}
	ran := slices.DeleteFunc(slices.Clone(events), func(e event) bool { return e.Runs == 0 })
	slices.SortStableFunc(ran, func(a, b event) int { return int(a.Start - b.Start) })

	// Global rate: consecutive starts at least ceil(1s/Rate) apart, so no
	// window of one second holds more than ceil(Rate) starts.
	if !math.IsInf(cfg.Rate, 1) {
		spacing := time.Duration(math.Ceil(float64(time.Second) / cfg.Rate))
		for i := 1; i < len(ran); i++ {
			if d := ran[i].Start - ran[i-1].Start; d < spacing {
				bad = append(bad, fmt.Sprintf("global: starts at %v and %v are %v apart, rate %v needs %v", ran[i-1].Start, ran[i].Start, d, cfg.Rate, spacing))
			}
		}
		limit := int(math.Ceil(cfg.Rate))
		for i := range ran {
			n := 0
			for j := i; j < len(ran) && ran[j].Start < ran[i].Start+time.Second; j++ {
				n++
			}
			if n > limit {
				bad = append(bad, fmt.Sprintf("global: %d starts in the second from %v, rate %v", n, ran[i].Start, cfg.Rate))
			}
		}
	}

	byAddr := map[netip.Addr][]event{}
	byNet := map[netip.Prefix][]event{}
	for _, e := range ran {
		a := e.Addr.Unmap()
		byAddr[a] = append(byAddr[a], e)
		bits := cfg.V6Bits
		if a.Is4() {
			bits = cfg.V4Bits
		}
		p, _ := a.Prefix(bits)
		byNet[p] = append(byNet[p], e)
	}
	for p, es := range byNet {
		for i := 1; i < len(es); i++ {
			if d := es[i].Start - es[i-1].Start; d < cfg.NetGap {
				bad = append(bad, fmt.Sprintf("network %v: starts at %v and %v are %v apart, want >= %v", p, es[i-1].Start, es[i].Start, d, cfg.NetGap))
			}
		}
	}
	for a, es := range byAddr {
		for i := 1; i < len(es); i++ {
			if d := es[i].Start - es[i-1].Start; d < cfg.AddrGap {
				bad = append(bad, fmt.Sprintf("address %v: starts at %v and %v are %v apart, want >= %v", a, es[i-1].Start, es[i].Start, d, cfg.AddrGap))
			}
			if es[i].Start < es[i-1].End {
				bad = append(bad, fmt.Sprintf("address %v: probe at %v started before the one at %v ended (%v)", a, es[i].Start, es[i-1].Start, es[i-1].End))
			}
		}
		bad = append(bad, checkPorts(cfg, a, es)...)
	}
	return bad
}

// checkPorts returns the violations of cfg's port window in es, the probes of address
// a that ran.
func checkPorts(cfg polite.Config, a netip.Addr, es []event) []string {
	if cfg.PortWindow == 0 {
		return nil
	}
	var bad []string
	// The window holding the most ports can be slid right until its left edge meets
	// an end, so checking windows [End, End+W) of every probe covers all windows.
	for _, w := range es {
		seen := map[string]bool{}
		for _, e := range es {
			if e.Proto != polite.ProtoICMP && e.End >= w.End && e.Start < w.End+cfg.PortWindow {
				seen[fmt.Sprintf("%v/%d", e.Proto, e.Port)] = true
			}
		}
		if len(seen) > cfg.MaxPortsPerWindow {
			bad = append(bad, fmt.Sprintf("address %v: %d ports %v in the window from %v, max %d", a, len(seen), keys(seen), w.End, cfg.MaxPortsPerWindow))
		}
	}
	return bad
}

func keys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
