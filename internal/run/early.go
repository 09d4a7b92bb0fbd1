package run

import (
	"context"
	"time"

	"github.com/v6matrix/v6matrix/internal/summary"
)

// earlyShare and earlyLeft are Config.EarlySummary's and EarlyLeft's defaults: the
// summary starts on the final domains when at most 1 % of the probes and checks are
// left and they need at least a minute more at their limits. With politeness lifted
// the tail is short and busy: building the summary beside it slowed the probes and
// raised the peak memory (100k domains: 96 s instead of 92 s, 289 instead of 250 MiB,
// with 29 % of the domains still waiting for name server checks when it began).
const (
	earlyShare = 0.01
	earlyLeft  = time.Minute
)

// early is the part of a run's summary built while its last probes run: the domains
// whose addresses and name server checks are all measured (summary.Partial.First); the
// run's end finishes it (summary.Partial.Finish) instead of building it all then, when
// nothing else is left to do and the wire is idle.
type early struct {
	cancel context.CancelFunc
	done   chan struct{} // closed when the goroutine ends
	p      *summary.Partial
	err    error
}

// startEarly watches the probes from the DNS stage's end: when at most the configured
// share of them is left, and their lower bound leaves at least the configured time, it
// summarises the final domains. end is closed when the probe stage has ended (then it
// does nothing: the whole summary is built at once).
func (r *runner) startEarly(ctx context.Context, end <-chan struct{}) *early {
	ctx, cancel := context.WithCancel(ctx)
	e := &early{cancel: cancel, done: make(chan struct{})}
	share, least := r.cfg.EarlySummary, r.cfg.EarlyLeft
	if share == 0 {
		share = earlyShare
	}
	if least == 0 {
		least = earlyLeft
	}
	go func() {
		defer close(e.done)
		p := &r.prog.Probe
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for float64(p.Total.Load()-p.Done.Load()) > share*float64(p.Total.Load()) || p.Left() < least {
			select {
			case <-ctx.Done():
				return
			case <-end:
				return
			case <-tick.C:
			}
		}
		u, err := p.Unfinished(ctx)
		if err == nil {
			e.p, err = summary.Begin(ctx, r.st, r.run.ID, r.log)
		}
		if err == nil {
			r.log.Info("summary: the final domains while the last probes run", "run", r.run.ID,
				"addresses_left", len(u.Addrs), "domains_with_checks_left", len(u.Domains))
			err = e.p.First(ctx, u.Later)
		}
		e.err = err
	}()
	return e
}

// stop ends the early summary (the run stopped or failed) and waits for it.
func (e *early) stop() {
	if e == nil {
		return
	}
	e.cancel()
	<-e.done
}

// summarise builds the summary of the finished run: the rest of what the early part
// began, or all of it.
func (r *runner) summarise(ctx context.Context) error {
	if e := r.early; e != nil {
		r.early = nil
		<-e.done
		defer e.cancel()
		if e.p != nil && e.err == nil {
			return e.p.Finish(ctx)
		}
		if e.err != nil && ctx.Err() == nil {
			r.log.Warn("the early part of the summary failed; building all of it", "run", r.run.ID, "err", e.err)
		}
	}
	return summary.Build(ctx, r.st, r.run.ID, r.log)
}
