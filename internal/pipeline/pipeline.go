// Package pipeline runs one run's DNS stage and probe stage at once: each batch of
// domains the DNS stage saves hands its probe targets to the probe stage, which starts
// on them at once, so that a run takes about the longer of the two stages, not their
// sum, and the wire is not idle while work remains.
package pipeline

import (
	"context"
	"errors"

	"github.com/v6matrix/v6matrix/internal/crawl"
	"github.com/v6matrix/v6matrix/internal/measure"
	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/store"
)

// Config sets up both stages.
type Config struct {
	DNS    crawl.Config // its OnSaved is the pipeline's
	Client *resolve.Client
	// Probe sets up the probe stage; nil runs the DNS stage alone.
	Probe *measure.Config
	// DNSDone, when set, is called once the DNS stage has saved every domain, while
	// the probes go on (to record the run's state, to log); an error stops the run.
	DNSDone func() error
}

// Progress counts both stages.
type Progress struct {
	DNS   crawl.Progress
	Probe measure.Progress
}

// Run measures the pending domains of the run and probes their addresses, both at
// once; on resume the probe stage first takes what the store has pending. When ctx
// ends both stages stop, save what finished and Run returns ctx.Err(); the first
// error of either stage (a batch of domains or of measurements that could not be
// saved) stops both at once, and Run returns it.
func Run(ctx context.Context, st store.Store, run int64, cfg Config, p *Progress) error {
	if cfg.Probe == nil {
		if err := crawl.New(cfg.DNS, cfg.Client, st).Run(ctx, run, &p.DNS); err != nil {
			return err
		}
		return done(cfg)
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stage, err := measure.Start(pctx, *cfg.Probe, st, run, &p.Probe)
	if err != nil {
		return err
	}
	// The DNS stage runs on a context of its own that the probe stage's failure ends
	// (a write error: see measure.Stage.Failed), so that it stops querying at once.
	dctx, stopDNS := context.WithCancel(pctx)
	defer stopDNS()
	go func() {
		select {
		case <-stage.Failed():
			stopDNS()
		case <-dctx.Done():
		}
	}()
	dns := cfg.DNS
	dns.BeforeSave = stage.Incoming
	dns.OnSaved = func(ts []store.Target, ns []store.NSTarget) {
		stage.Add(pctx, ts)
		stage.AddNS(pctx, ns)
	}
	err = crawl.New(dns, cfg.Client, st).Run(dctx, run, &p.DNS)
	if err == nil {
		err = done(cfg)
	}
	if err != nil {
		cancel() // the probe stage stops too, saving what finished
		werr := stage.Wait(pctx)
		switch {
		case werr == nil || errors.Is(werr, context.Canceled) || ctx.Err() != nil:
			return err
		case errors.Is(err, context.Canceled): // the probe stage's failure stopped the DNS stage
			return werr
		}
		return errors.Join(err, werr)
	}
	stage.Close(pctx)
	return stage.Wait(pctx)
}

func done(cfg Config) error {
	if cfg.DNSDone == nil {
		return nil
	}
	return cfg.DNSDone()
}
