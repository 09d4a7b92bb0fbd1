package run

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/v6matrix/v6matrix/internal/measure"
	"github.com/v6matrix/v6matrix/internal/store"
)

// Find returns run id, or the latest run when id is 0, whatever its state. A negative
// id is an error, not the latest run.
func Find(ctx context.Context, st store.Store, id int64) (store.Run, error) {
	switch {
	case id > 0:
		return st.GetRun(ctx, id)
	case id < 0:
		return store.Run{}, fmt.Errorf("run %d: want a run id of 1 or more (0: the latest run)", id)
	}
	return st.LatestRun(ctx)
}

// ErrDNSPending is wrapped by the error of MeasureFrom on a run whose DNS stage has not
// ended: its targets are not all known yet.
var ErrDNSPending = errors.New("DNS stage not finished")

// CanMeasureFrom checks that run can be measured from vantage v (MeasureFrom): v is
// not its own, and its DNS stage has ended. It returns the run's counts.
func CanMeasureFrom(ctx context.Context, st store.Store, run store.Run, v string) (store.Counts, error) {
	if v == "" || v == run.Vantage {
		return store.Counts{}, fmt.Errorf("run %d: vantage %q is the run's own: resume the run instead", run.ID, run.Vantage)
	}
	c, err := st.Counts(ctx, run.ID)
	if err != nil {
		return c, err
	}
	if !run.Loaded || c.Done < c.Total || run.State == store.RunFailed {
		return c, fmt.Errorf("run %d (%s, %d of %d domains done): %w: finish it from its own vantage %q first (v6matrix crawl --resume --run %d there)",
			run.ID, run.State, c.Done, c.Total, ErrDNSPending, run.Vantage, run.ID)
	}
	return c, nil
}

// MeasureFrom measures run id from a vantage other than the run's own
// (cfg.Probe.Vantage): the probes and name server checks of the run's targets that
// this vantage lacks, without the DNS stage (done once, from the run's own vantage,
// which must have finished it) and whatever the run's state, done included. Run it
// again after an interruption: it goes on with what the vantage still lacks. The run
// row is left as it is (its state, options and vantage are its own vantage's), and no
// summary is built: the website's summary is the run's own vantage's. An interruption
// returns an *InterruptedError in stage probing, with the run's state unchanged.
func MeasureFrom(ctx context.Context, st store.Store, id int64, cfg Config) (Result, error) {
	r := newRunner(st, cfg)
	defer r.release()
	run, err := Find(ctx, st, id)
	if err != nil {
		return r.result(), err
	}
	r.run = run
	if cfg.Probe == nil {
		return r.result(), fmt.Errorf("run %d: measuring from another vantage needs probes (not --probes none)", run.ID)
	}
	v := cfg.Probe.Vantage
	c, err := CanMeasureFrom(ctx, st, run, v)
	if err != nil {
		return r.result(), err
	}
	if err := r.lock(ctx, v); err != nil {
		return r.result(), err
	}
	r.log.Info("measuring run from another vantage", "run", run.ID, "vantage", v, "own_vantage", run.Vantage, "state", run.State)
	stop := r.watch(store.RunProbing)
	start := time.Now()
	err = measure.Run(ctx, *cfg.Probe, st, run.ID, &r.prog.Probe)
	stop()
	r.res.Probe = time.Since(start)
	if stopped(ctx, err) {
		return r.result(), &InterruptedError{Run: run.ID, Stage: store.RunProbing, State: run.State}
	}
	if err != nil {
		return r.result(), fmt.Errorf("run %d from vantage %s: %w", run.ID, v, err)
	}
	r.res.Counts = c
	p := &r.prog.Probe
	r.log.Info("measured from vantage", "run", run.ID, "vantage", v, "probes", p.Done.Load(), "failed", p.Failed.Load(),
		"elapsed", r.res.Probe.Round(time.Millisecond))
	return r.result(), nil
}
