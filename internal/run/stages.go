package run

import (
	"context"
	"fmt"
	"time"

	"github.com/v6matrix/v6matrix/internal/crawl"
	"github.com/v6matrix/v6matrix/internal/measure"
	"github.com/v6matrix/v6matrix/internal/store"
)

// dnsStage measures the run's pending domains (state crawling).
func (r *runner) dnsStage(ctx context.Context) error {
	if err := r.setState(ctx, store.RunCrawling); err != nil {
		return err
	}
	c := crawl.New(r.cfg.DNS, r.cfg.Client, r.st)
	p := &r.prog.DNS
	stop := r.watch(store.RunCrawling)
	start := time.Now()
	err := c.Run(ctx, r.run.ID, p)
	r.res.DNS = time.Since(start)
	stop()
	r.res.HostLookups = c.HostLookups()
	if err != nil {
		return err
	}
	rate := float64(p.Done.Load()) / max(r.res.DNS.Seconds(), 1e-9)
	r.log.Info("DNS stage done", "run", r.run.ID, "domains", p.Done.Load(), "queries", r.cfg.Client.Queries(),
		"elapsed", r.res.DNS.Round(time.Millisecond), "domains_per_s", fmt.Sprintf("%.0f", rate))
	return nil
}

// probeStage measures the run's addresses (state probing), unless no probe is enabled.
func (r *runner) probeStage(ctx context.Context) error {
	if r.cfg.Probe == nil {
		return nil
	}
	if err := r.setState(ctx, store.RunProbing); err != nil {
		return err
	}
	p := &r.prog.Probe
	stop := r.watch(store.RunProbing)
	start := time.Now()
	err := measure.Run(ctx, *r.cfg.Probe, r.st, r.run.ID, p)
	r.res.Probe = time.Since(start)
	stop()
	r.log.Info("probe stage", "run", r.run.ID, "addresses", p.Addresses.Load(), "not_probed", p.Skipped.Load(),
		"probes", p.Done.Load(), "failed", p.Failed.Load(), "elapsed", r.res.Probe.Round(time.Millisecond))
	return err
}

// watch tells the caller's Watch hook that a stage starts; call what it returns when
// the stage ends.
func (r *runner) watch(stage store.RunState) (stop func()) {
	if r.cfg.Watch == nil {
		return func() {}
	}
	return r.cfg.Watch(stage, r.prog)
}
