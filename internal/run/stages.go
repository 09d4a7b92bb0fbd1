package run

import (
	"context"
	"fmt"
	"time"

	"github.com/v6matrix/v6matrix/internal/pipeline"
	"github.com/v6matrix/v6matrix/internal/store"
)

// stages runs the DNS stage and the probe stage at once (internal/pipeline): the probes
// start on the addresses of the first batch of domains saved. The run is "crawling"
// until every domain is saved, then "probing" until the last probe.
func (r *runner) stages(ctx context.Context) error {
	if err := r.setState(ctx, store.RunCrawling); err != nil {
		return err
	}
	stop := r.watch(store.RunCrawling)
	start := time.Now()
	end := make(chan struct{}) // the probe stage ended
	early := r.cfg.Probe != nil && !r.cfg.SkipSummary && r.cfg.EarlySummary >= 0
	cfg := pipeline.Config{DNS: r.cfg.DNS, Client: r.cfg.Client, Probe: r.cfg.Probe,
		DNSDone: func() error {
			r.res.DNS = time.Since(start)
			stop()
			stop = func() {}
			p := &r.prog.DNS
			rate := float64(p.Done.Load()) / max(r.res.DNS.Seconds(), 1e-9)
			r.log.Info("DNS stage done", "run", r.run.ID, "domains", p.Done.Load(), "queries", r.cfg.Client.Queries(),
				"elapsed", r.res.DNS.Round(time.Millisecond), "domains_per_s", fmt.Sprintf("%.0f", rate))
			if r.cfg.Probe == nil {
				return nil
			}
			if err := r.setState(ctx, store.RunProbing); err != nil {
				return err
			}
			stop = r.watch(store.RunProbing)
			if early {
				r.early = r.startEarly(ctx, end)
			}
			return nil
		}}
	err := pipeline.Run(ctx, r.st, r.run.ID, cfg, r.prog)
	close(end) // a run that did not finish: finish stops its early summary
	stop()
	r.res.HostLookups = r.prog.DNS.HostLookups.Load()
	if r.cfg.Probe != nil {
		r.res.Probe = time.Since(start)
	}
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
