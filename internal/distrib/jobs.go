package distrib

import (
	"context"
	"errors"
	"maps"
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
		return commit(ctx, w, job, r, true, 0, nil, nil, nil)
	}
	view := &shardView{Postgres: w.pg, shard: job.Args}
	cfg := s.DNS
	cfg.OnSaved = nil
	cfg.HostsStored = true // the other shards' hosts: read, never looked up and written again
	sctx, cancel := context.WithTimeout(ctx, w.slice)
	var p crawl.Progress
	err = crawl.New(cfg, s.Client, view).Run(sctx, r.ID, &p)
	cancel()
	if err != nil && !stopped(sctx, err) {
		return err // River retries; the shard's domains are still pending
	}
	b := view.take()
	w.log.Debug("DNS shard", "run", r.ID, "job", job.ID, "domains", len(b.Domains), "finished", err == nil)
	err = commit(ctx, w, job, r, err == nil, 0, func(ctx context.Context, tx pgx.Tx, st *store.Postgres) error {
		if len(b.Domains) == 0 {
			return nil
		}
		if err := st.Save(ctx, r.ID, b); err != nil {
			return err
		}
		if s.Probe == nil {
			return nil
		}
		// The addresses found go to the probe stage now, in the same transaction. The
		// run's state is read again under its lock: a shard that a resume enqueued
		// may commit after the plan.
		now, err := st.GetRun(ctx, r.ID)
		if err != nil {
			return err
		}
		late := now.State == store.RunProbing
		buckets, err := fileTargets(ctx, tx, r.ID, b.Targets, s.Probe.Polite.Network, w.buckets(), late)
		if err != nil {
			return err
		}
		wait := w.bucketWait()
		if late {
			wait = 0
		}
		return enqueueBuckets(ctx, tx, river.ClientFromContext[pgx.Tx](ctx), r, buckets, wait)
	}, nil, nil)
	if err == nil || isSnooze(err) { // saved
		w.cfg.Progress.DNS.Done.Add(p.Done.Load())
		w.cfg.Progress.DNS.Errors.Add(p.Errors.Load())
		w.cfg.Progress.DNS.HostLookups.Add(p.HostLookups.Load())
	}
	return err
}

// planWorker ends the DNS stage: the run is probing, and every bucket is probed once
// more, its addresses' roles now final.
type planWorker struct {
	river.WorkerDefaults[PlanArgs]
	w *Worker
}

// Timeout lets the job run to its end (the lease must be longer than it takes).
func (*planWorker) Timeout(*river.Job[PlanArgs]) time.Duration { return -1 }

func (pw *planWorker) Work(ctx context.Context, job *river.Job[PlanArgs]) error {
	w := pw.w
	r, s, err := w.setup(ctx, job.Args.Run)
	if err != nil {
		return err
	}
	if over(r) {
		return commit(ctx, w, job, r, true, 0, nil, nil, nil)
	}
	r.State = store.RunProbing
	return commit(ctx, w, job, r, true, 0, func(ctx context.Context, tx pgx.Tx, st *store.Postgres) error {
		return st.UpdateRun(ctx, r)
	}, nil, func(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx]) error {
		if s.Probe == nil {
			return nil
		}
		missing, err := fileMissing(ctx, tx, r.ID, s.Probe.Polite.Network, w.buckets())
		if err != nil {
			return err
		}
		if missing > 0 {
			w.log.Warn("addresses no DNS shard filed in a bucket, filed by the plan", "run", r.ID, "addresses", missing)
		}
		buckets, err := raiseAll(ctx, tx, r.ID)
		if err != nil {
			return err
		}
		w.log.Info("DNS stage done: every bucket probed once more", "run", r.ID, "buckets", len(buckets), "vantages", Vantages(r))
		return enqueueBuckets(ctx, tx, client, r, buckets, 0)
	})
}

// probeWorker probes a job's addresses and checks their name server pairs.
type probeWorker struct {
	river.WorkerDefaults[ProbeArgs]
	w *Worker
}

func (pw *probeWorker) Work(ctx context.Context, job *river.Job[ProbeArgs]) error {
	w, a := pw.w, job.Args
	// The generation first, before the run and the addresses: an address added after
	// it is read raises it, and so does the plan, which makes the run probing; the job
	// then goes on instead of completing. (Read after the run, a generation raised by
	// the plan in between would let a job that saw the DNS stage, and so checked no
	// name server, complete.)
	gen, err := bucketGen(ctx, w.pg.Pool(), a.Run, a.Bucket, false)
	if err != nil {
		return err
	}
	if w.cfg.betweenReads != nil {
		w.cfg.betweenReads(a.Bucket)
	}
	r, s, err := w.setup(ctx, a.Run)
	if err != nil {
		return err
	}
	if over(r) || s.Probe == nil {
		return commit(ctx, w, job, r, true, 0, nil, nil, nil)
	}
	ips, err := bucketIPs(ctx, w.pg.Pool(), r.ID, a.Bucket)
	if err != nil {
		return err
	}
	cfg := w.probeConfig(s.Probe, a.Vantage)
	part := &measure.Part{}
	if part.Targets, err = w.pg.TargetsAt(ctx, r.ID, a.Vantage, ips); err != nil {
		return err
	}
	// The name server checks wait for the DNS stage's end (the run probing): a name
	// server's address has pairs in most shards, and reading them again at each of
	// the bucket's jobs beside the DNS stage was most of PostgreSQL's time (bench-net
	// --distributed at 100k: 531 s in 3,593 reads).
	if cfg.Kinds[result.KindDNS53] && r.State == store.RunProbing {
		if part.NS, err = w.pg.PendingNSTargetsAt(ctx, r.ID, a.Vantage, ips); err != nil {
			return err
		}
	}
	cfg.Part = part
	return runStage(ctx, w, job, r, cfg, gen)
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
// The job completes only if its bucket's generation is still gen.
func runStage(ctx context.Context, w *Worker, job *river.Job[ProbeArgs], r store.Run, cfg measure.Config, gen int64) error {
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
	if r.State != store.RunProbing {
		snooze = max(snooze, w.bucketWait()) // the DNS stage adds more meanwhile
	}
	return commit(ctx, w, job, r, err == nil, snooze, func(ctx context.Context, tx pgx.Tx, st *store.Postgres) error {
		if len(ms) == 0 {
			return nil
		}
		return st.SaveMeasurements(ctx, r.ID, ms)
	}, func(ctx context.Context, tx pgx.Tx) (bool, error) {
		now, err := bucketGen(ctx, tx, r.ID, job.Args.Bucket, true)
		return now != gen, err
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
		return commit(ctx, w, job, r, true, 0, nil, nil, nil)
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
	return commit(ctx, w, job, r, true, 0, func(ctx context.Context, tx pgx.Tx, st *store.Postgres) error {
		if err := dropBuckets(ctx, tx, r.ID); err != nil {
			return err
		}
		return st.UpdateRun(ctx, r)
	}, nil, nil)
}
