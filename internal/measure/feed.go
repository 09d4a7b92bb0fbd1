package measure

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/store"
)

// DefaultWindow is how many addresses have their probes queued in the scheduler at
// once. It bounds the scheduler's memory (a few KB per queued address) whatever the
// run's size, while leaving it enough addresses to keep its workers busy within the
// per-address limits.
const DefaultWindow = 4096

// localWorkers bounds the PTR queries (to our resolver) and GeoIP lookups in flight.
const localWorkers = 16

// plan is what is left to measure of one address.
type plan struct {
	t      *target
	local  []string // kinds measured without sending to the address (PTR, GeoIP)
	remote []string // kinds that are probes: through the polite scheduler
}

// feeder keeps the scheduler's window full: it queues the probes of the first
// addresses, and when the last probe of an address finishes it queues the next
// address's, from inside that probe's task, so that the scheduler, which returns once
// nothing is queued or running, never sees a gap.
type feeder struct {
	plans   []plan
	sched   *polite.Scheduler
	pr      *probers
	results chan<- store.Measurement
	p       *Progress
	log     *slog.Logger

	mu   sync.Mutex
	next int
	err  error
}

// start queues the first n addresses.
func (f *feeder) start(ctx context.Context, n int) error {
	for range n {
		if !f.add(ctx) {
			break
		}
	}
	return f.failed()
}

// add queues the probes of the next address with probes; false when none is left.
func (f *feeder) add(ctx context.Context) bool {
	for {
		f.mu.Lock()
		if f.next >= len(f.plans) || f.err != nil {
			f.mu.Unlock()
			return false
		}
		pl := f.plans[f.next]
		f.next++
		f.mu.Unlock()
		if len(pl.remote) == 0 {
			continue
		}
		var left atomic.Int32
		left.Store(int32(len(pl.remote)))
		for _, kind := range pl.remote {
			task := f.pr.task(pl.t, kind, f.results, f.p, f.log)
			probe := task.Run
			task.Run = func(ctx context.Context) {
				probe(ctx)
				if left.Add(-1) == 0 && ctx.Err() == nil {
					f.add(ctx)
				}
			}
			if err := f.sched.Add(task); err != nil {
				f.mu.Lock()
				f.err = err
				f.mu.Unlock()
				return false
			}
		}
		return true
	}
}

func (f *feeder) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
