package distrib

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/v6matrix/v6matrix/internal/crawl"
	"github.com/v6matrix/v6matrix/internal/measure"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/summary"
)

// over reports whether a run takes no more work: done or failed (a job of it left in
// the queue completes at once).
func over(r store.Run) bool { return r.State == store.RunDone || r.State == store.RunFailed }

// stopped reports whether a stage's error is the end of its slice or of the worker:
// what finished is saved and the job goes on later.
func stopped(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// isSnooze tells a snoozed job's return from an error.
func isSnooze(err error) bool {
	var s *river.JobSnoozeError
	return errors.As(err, &s)
}

// dnsWorker crawls a shard of domains.
type dnsWorker struct {
	river.WorkerDefaults[ShardArgs]
	w *Worker
}

func (d *dnsWorker) Work(ctx context.Context, job *river.Job[ShardArgs]) error {
	w := d.w
	r, s, err := w.setup(ctx, job.Args.Run)
	if err != nil {
		return err
	}
	if over(r) {
		return commit(ctx, w, job, r, true, 0, nil, nil)
	}
	view := &shardView{Postgres: w.pg, shard: job.Args}
	cfg := s.DNS
	cfg.OnSaved = nil
	sctx, cancel := context.WithTimeout(ctx, w.slice)
	var p crawl.Progress
	err = crawl.New(cfg, s.Client, view).Run(sctx, r.ID, &p)
	cancel()
	if err != nil && !stopped(sctx, err) {
		return err // River retries; the shard's domains are still pending
	}
	b := view.take()
	w.log.Debug("DNS shard", "run", r.ID, "job", job.ID, "domains", len(b.Domains), "finished", err == nil)
	err = commit(ctx, w, job, r, err == nil, 0, func(ctx context.Context, st *store.Postgres) error {
		if len(b.Domains) == 0 {
			return nil
		}
		return st.Save(ctx, r.ID, b)
	}, nil)
	if err == nil || isSnooze(err) { // saved
		w.cfg.Progress.DNS.Done.Add(p.Done.Load())
		w.cfg.Progress.DNS.Errors.Add(p.Errors.Load())
		w.cfg.Progress.DNS.HostLookups.Add(p.HostLookups.Load())
	}
	return err
}

// planWorker groups the run's targets by network into probe jobs.
type planWorker struct {
	river.WorkerDefaults[PlanArgs]
	w *Worker
}

// Timeout lets the job run to its end: it reads or writes the whole run and cannot stop
// part way (the lease must be longer than it takes).
func (*planWorker) Timeout(*river.Job[PlanArgs]) time.Duration { return -1 }

func (pw *planWorker) Work(ctx context.Context, job *river.Job[PlanArgs]) error {
	w := pw.w
	r, s, err := w.setup(ctx, job.Args.Run)
	if err != nil {
		return err
	}
	if over(r) {
		return commit(ctx, w, job, r, true, 0, nil, nil)
	}
	var jobs []ProbeArgs
	if s.Probe != nil {
		nets, err := networks(ctx, s.Probe, func(after string) ([]netip.Addr, error) {
			ts, err := w.pg.Targets(ctx, r.ID, "", after, 1000)
			ips := make([]netip.Addr, len(ts))
			for i, t := range ts {
				ips[i] = t.IP
			}
			return ips, err
		})
		if err != nil {
			return err
		}
		jobs = pack(nets, cmp.Or(w.cfg.packAddrs, packAddrs))
	}
	r.State = store.RunProbing
	w.log.Info("DNS stage done: probe jobs enqueued", "run", r.ID, "jobs", len(jobs), "vantages", Vantages(r))
	return commit(ctx, w, job, r, true, 0, func(ctx context.Context, st *store.Postgres) error {
		return st.UpdateRun(ctx, r)
	}, func(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx]) error {
		return insertProbes(ctx, tx, client, r, jobs)
	})
}

// network is one network's addresses.
type network struct {
	prefix netip.Prefix
	ips    []netip.Addr
}

// networks pages through addresses (page returns those after the text given, 1000 at
// most, in text order) and groups them by network, the largest first.
func networks(ctx context.Context, cfg *measure.Config, page func(after string) ([]netip.Addr, error)) ([]network, error) {
	by := map[netip.Prefix][]netip.Addr{}
	for after := ""; ; {
		ips, err := page(after)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			n := cfg.Polite.Network(ip)
			by[n] = append(by[n], ip)
		}
		if len(ips) < 1000 {
			break
		}
		after = ips[len(ips)-1].String()
	}
	out := make([]network, 0, len(by))
	for _, n := range slices.SortedFunc(maps.Keys(by), func(a, b netip.Prefix) int { return cmp.Compare(a.String(), b.String()) }) {
		out = append(out, network{prefix: n, ips: by[n]})
	}
	slices.SortStableFunc(out, func(a, b network) int { return cmp.Compare(len(b.ips), len(a.ips)) })
	return out, ctx.Err()
}

// packAddrs is the size of a probe job: a network of at least this many addresses is
// a job of its own; smaller ones share jobs up to it. A job of one address is mostly
// waiting (one probe at a time per address, a ping alone lasts a second): with a
// network per job, the 12,258 jobs of bench-net's 100k run each had one or two
// addresses and the workers' job slots, not their probes in flight, bounded the stage.
const packAddrs = 64

// pack makes probe jobs of whole networks (nets largest first): a large network
// alone, the smaller ones together, each job up to max addresses, largest jobs first
// (River takes jobs of one priority in insert order: longest-processing-time first).
// A network is never split, so its per-network limit holds within one job.
func pack(nets []network, max int) []ProbeArgs {
	var out []ProbeArgs
	var cur *ProbeArgs
	for _, n := range nets {
		if cur == nil || len(cur.IPs)+len(n.ips) > max {
			out = append(out, ProbeArgs{})
			cur = &out[len(out)-1]
		}
		cur.Networks = append(cur.Networks, n.prefix)
		cur.IPs = append(cur.IPs, n.ips...)
	}
	slices.SortStableFunc(out, func(a, b ProbeArgs) int { return cmp.Compare(len(b.IPs), len(a.IPs)) })
	return out
}

// insertProbes enqueues the probe jobs for each vantage of the run.
func insertProbes(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], r store.Run, jobs []ProbeArgs) error {
	var ps []river.InsertManyParams
	for _, v := range Vantages(r) {
		for _, a := range jobs {
			a.Run, a.Vantage = r.ID, v
			ps = append(ps, river.InsertManyParams{Args: a})
		}
	}
	for len(ps) > 0 {
		k := min(len(ps), 1000)
		if _, err := client.InsertManyTx(ctx, tx, ps[:k]); err != nil {
			return err
		}
		ps = ps[k:]
	}
	return nil
}

// probeWorker probes a job's addresses and checks their name server pairs.
type probeWorker struct {
	river.WorkerDefaults[ProbeArgs]
	w *Worker
}

func (pw *probeWorker) Work(ctx context.Context, job *river.Job[ProbeArgs]) error {
	w, a := pw.w, job.Args
	r, s, err := w.setup(ctx, a.Run)
	if err != nil {
		return err
	}
	if over(r) || s.Probe == nil {
		return commit(ctx, w, job, r, true, 0, nil, nil)
	}
	cfg := w.probeConfig(s.Probe, a.Vantage)
	part := &measure.Part{}
	if part.Targets, err = w.pg.TargetsAt(ctx, r.ID, a.Vantage, a.IPs); err != nil {
		return err
	}
	if cfg.Kinds[result.KindDNS53] {
		if part.NS, err = w.pg.PendingNSTargetsAt(ctx, r.ID, a.Vantage, a.IPs); err != nil {
			return err
		}
	}
	cfg.Part = part
	return runStage(ctx, w, job, r, cfg)
}

// probeConfig is the run's probe configuration for one job of the vantage: its share of
// the vantage's rates, and of the probes in flight the run allows one process
// (--workers), divided among this worker's probe jobs.
func (w *Worker) probeConfig(run *measure.Config, vantage string) measure.Config {
	cfg := *run
	cfg.Kinds = maps.Clone(run.Kinds)
	cfg.Polite.Rate = w.share(run.Polite.Rate)
	cfg.NSCheck.Rate = w.share(run.NSCheck.Rate)
	cfg.Polite.Workers = max(run.Polite.Workers/w.cfg.ProbeJobs, 1)
	cfg.NSCheck.Workers = max(run.NSCheck.Workers/w.cfg.ProbeJobs, 1)
	cfg.Logger = w.log
	cfg.Vantage = vantage
	return cfg
}

// runStage runs the probe stage on the job's part for a slice and commits what it saved.
func runStage(ctx context.Context, w *Worker, job *river.Job[ProbeArgs], r store.Run, cfg measure.Config) error {
	view := &measureView{Postgres: w.pg, checkpoint: checkpoint}
	// The stage's counters are atomic sums: every job of the worker adds to them.
	stage, err := measure.Start(ctx, cfg, view, r.ID, &w.cfg.Progress.Probe)
	if err != nil {
		return err
	}
	// At the end of the slice the stage starts nothing more and lets the probes in
	// flight finish: nothing half sent is lost, however long a probe takes.
	slice := time.AfterFunc(w.slice, stage.Stop)
	defer slice.Stop()
	stage.Close(ctx)
	err = stage.Wait(ctx)
	if err != nil && !errors.Is(err, measure.ErrStopped) && !stopped(ctx, err) {
		return err
	}
	ms := view.take()
	// The next slice waits out every per-address limit: no address sees two probes, or
	// more ports, closer than the scheduler allows.
	snooze := max(cfg.Polite.AddrGap, cfg.Polite.NetGap, cfg.Polite.PortWindow, cfg.NSCheck.AddrGap)
	return commit(ctx, w, job, r, err == nil, snooze, func(ctx context.Context, st *store.Postgres) error {
		if len(ms) == 0 {
			return nil
		}
		return st.SaveMeasurements(ctx, r.ID, ms)
	}, nil)
}

// finishWorker builds the finished run's summary and records it done.
type finishWorker struct {
	river.WorkerDefaults[FinishArgs]
	w *Worker
}

// Timeout lets the job run to its end: it reads or writes the whole run and cannot stop
// part way (the lease must be longer than it takes).
func (*finishWorker) Timeout(*river.Job[FinishArgs]) time.Duration { return -1 }

func (fw *finishWorker) Work(ctx context.Context, job *river.Job[FinishArgs]) error {
	w := fw.w
	r, err := w.pg.GetRun(ctx, job.Args.Run)
	if err != nil {
		return err
	}
	if over(r) {
		return commit(ctx, w, job, r, true, 0, nil, nil)
	}
	if err := summary.Build(ctx, w.pg, r.ID, w.log); err != nil {
		w.log.Warn("the run's summary for the website was not built; v6matrix serve builds it when it starts", "run", r.ID, "err", err)
	}
	r.State, r.Finished = store.RunDone, time.Now()
	c, err := w.pg.Counts(ctx, r.ID)
	if err != nil {
		return err
	}
	w.log.Info("crawl done", "run", r.ID, "domains", c.Done, "addresses", c.Addresses)
	return commit(ctx, w, job, r, true, 0, func(ctx context.Context, st *store.Postgres) error {
		return st.UpdateRun(ctx, r)
	}, nil)
}
