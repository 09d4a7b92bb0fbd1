package polite_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/polite"
)

// TestForget: the scheduler forgets an address once its history no longer limits it,
// and its network once none of its addresses is left, so that what it keeps follows
// the addresses in progress, not all it has probed; addresses queued again, before and
// after they were forgotten, still get every limit.
func TestForget(t *testing.T) {
	cfg := polite.DefaultConfig()
	cfg.Rate = 10 // a start every 100 ms: 300 addresses take 30 s
	cfg.AddrGap, cfg.NetGap, cfg.PortWindow = time.Second, 500*time.Millisecond, 2*time.Second
	var specs []spec
	for i := range 300 {
		// 75 networks (/24) of 4 addresses.
		specs = append(specs, spec{fmt.Sprintf("198.51.%d.%d", i%75, i/75+1), tcp, 443, 50 * time.Millisecond})
	}
	// Queued again after their first probe ended: while their history still limits them
	// (0.3 s and 1.5 s after: the address gap, the port window) and once forgotten (5 s).
	type later struct {
		after time.Duration
		port  uint16
	}
	again := map[string][]later{
		"198.51.0.1": {{300 * time.Millisecond, 80}, {1500 * time.Millisecond, 25}},
		"198.51.1.1": {{5 * time.Second, 80}, {5 * time.Second, 25}}, // a third port: the window allows two
		"198.51.2.1": {{5 * time.Second, 443}},
	}
	var sched *polite.Scheduler
	var keptMid [2]int
	err, events, rec := runFake(t, cfg, specs, func(r *recorder, s *polite.Scheduler, _ context.CancelFunc) {
		sched = s
		release := s.Hold() // Run waits for the goroutines below to queue theirs
		go func() {         // the middle of the run
			defer release()
			_ = r.clk.Sleep(context.Background(), 20*time.Second)
			keptMid[0], keptMid[1] = s.Kept()
		}()
		var mu sync.Mutex // onStart runs in the probes' goroutines
		r.onStart = func(id int) {
			addr := r.snapshot()[id].Addr.String()
			mu.Lock()
			ls := again[addr]
			delete(again, addr) // its first probe only
			mu.Unlock()
			if len(ls) > 0 {
				release := s.Hold()
				go func() {
					defer release()
					waited := 50 * time.Millisecond // the probe's own time
					_ = r.clk.Sleep(context.Background(), waited)
					for _, l := range ls {
						_ = r.clk.Sleep(context.Background(), l.after-(waited-50*time.Millisecond))
						waited = l.after + 50*time.Millisecond
						if err := s.Add(r.task(spec{addr, tcp, l.port, 50 * time.Millisecond})); err != nil {
							t.Errorf("Add again: %v", err)
						}
					}
				}()
			}
		}
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(events) != len(specs)+5 || len(again) != 0 {
		t.Errorf("%d tasks recorded, want %d; addresses never queued again: %v", len(events), len(specs)+5, again)
	}
	for _, v := range append(rec.violations, checkLimits(cfg, events, rec.maxInflight)...) {
		t.Error(v)
	}
	// In the middle of the run: the 100 addresses still queued, those of the last 2 s
	// (20 starts) and those queued again, at most; 200 are done by then.
	if keptMid[0] > 125 {
		t.Errorf("20 s into the run the scheduler keeps %d addresses (and %d networks), want at most 125", keptMid[0], keptMid[1])
	}
	addrs, nets := sched.Kept()
	t.Logf("kept: %v in the middle, %d addresses and %d networks at the end", keptMid, addrs, nets)
	if addrs > 25 || nets > 25 {
		t.Errorf("at the end the scheduler keeps %d addresses and %d networks, want those of the last 2 s (at most 25)", addrs, nets)
	}
}
