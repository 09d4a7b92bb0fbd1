package distrib

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/v6matrix/v6matrix/internal/crawl"
	"github.com/v6matrix/v6matrix/internal/measure"
	"github.com/v6matrix/v6matrix/internal/pipeline"
	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/store"
)

// Setup is what a worker runs one run's jobs with: the stages' configurations, built
// from the run's stored options and the worker's flags.
type Setup struct {
	DNS    crawl.Config
	Client *resolve.Client
	// Probe is the probe stage's configuration, with the vantage's whole --rate (the
	// worker takes its share); nil: the run has no probe stage.
	Probe *measure.Config
	// Close releases the setup's sockets and files (nil: nothing to release).
	Close func()
}

// Config sets up a worker.
type Config struct {
	// Vantage is where the worker measures from: it takes that vantage's probe jobs.
	Vantage string
	// DNSJobs and ProbeJobs are how many jobs of the DNS queue and of the vantage's
	// queue the worker runs at once (0: 2 and 8).
	DNSJobs, ProbeJobs int
	// Lease is how long a job may run before River hands it to another worker
	// (RescueStuckJobsAfter; 0: DefaultLease). A job stops after half of it,
	// saves what it finished and is snoozed, to go on wherever a worker is free.
	Lease time.Duration
	// Setup builds a run's configuration; the worker keeps it while the run's options
	// stay the same.
	Setup  func(ctx context.Context, r store.Run) (*Setup, error)
	Logger *slog.Logger
	// Heartbeat is how often the worker tells that it is alive (0: 5 s): a vantage's
	// rate is shared among the workers seen in the last three heartbeats.
	Heartbeat time.Duration

	// Progress, when set, adds up the counters of the worker's jobs (its metrics): the
	// probe jobs count into Progress.Probe, the DNS shards add what they saved to
	// Progress.DNS (Done, Errors).
	Progress *pipeline.Progress

	// Schedule, when set, starts runs on it: River's elected leader enqueues a job per
	// period (ScheduledArgs, unique by ScheduleName and period), which StartRun does,
	// once. Give every worker of the database the same schedule.
	Schedule     Schedule
	ScheduleName string
	// StartRun starts the scheduled run of the period and returns its id.
	StartRun func(ctx context.Context, period time.Time) (int64, error)

	// beforeCommit, when set (tests), is called before a job's results are committed;
	// an error rolls them back, as a crash there would.
	beforeCommit func(kind string, attempt int) error
	// buckets and bucketWait, when set (tests), replace defaultBuckets and bucketWait
	// (a negative wait: none).
	buckets    int
	bucketWait time.Duration
	// betweenReads, when set (tests), is called by a probe job between its reads of
	// its bucket's generation and of the run.
	betweenReads func(bucket int32)
	// lostAfterCommit, when set (tests), says which kinds of job skip advanceAfter once
	// their completion has committed, as a worker dying there would.
	lostAfterCommit func(kind string) bool
}

// DefaultLease is how long a running job is left to its worker before River rescues it.
const DefaultLease = 5 * time.Minute

// checkpoint is how long a probe job keeps finished measurements before it writes them
// outside the completing transaction.
const checkpoint = 10 * time.Second

// Worker runs a vantage's jobs until its context ends.
type Worker struct {
	cfg   Config
	pg    *store.Postgres
	log   *slog.Logger
	id    string
	slice time.Duration

	mu     sync.Mutex
	setups map[int64]*cachedSetup
	alive  int // live workers of the vantage, this one included
}

type cachedSetup struct {
	options string
	setup   *Setup
}

// New returns a worker on the store's database; Run runs it.
func New(pg *store.Postgres, cfg Config) (*Worker, error) {
	if err := CheckVantage(cfg.Vantage); err != nil {
		return nil, err
	}
	if cfg.Setup == nil {
		return nil, errors.New("distrib: no Setup")
	}
	if cfg.Schedule != nil && (cfg.StartRun == nil || cfg.ScheduleName == "") {
		return nil, errors.New("distrib: a Schedule needs a ScheduleName and StartRun")
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.Lease < 3*time.Second {
		return nil, fmt.Errorf("lease %v: want at least 3s", cfg.Lease)
	}
	if cfg.DNSJobs <= 0 {
		cfg.DNSJobs = 2
	}
	if cfg.ProbeJobs <= 0 {
		cfg.ProbeJobs = 8
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Progress == nil {
		cfg.Progress = &pipeline.Progress{}
	}
	host, _ := os.Hostname()
	var b [4]byte
	rand.Read(b[:])
	w := &Worker{cfg: cfg, pg: pg, log: cfg.Logger, setups: map[int64]*cachedSetup{}, alive: 1,
		id: fmt.Sprintf("%s_%s_%d_%s", host, cfg.Vantage, os.Getpid(), hex.EncodeToString(b[:]))}
	// A job stops itself after half the lease (River cancels it at three quarters).
	w.slice = cfg.Lease / 2
	return w, nil
}

// ID is the worker's name in the workers table and River's client id.
func (w *Worker) ID() string { return w.id }

// Run migrates the queue's tables, then works the DNS queue and the vantage's queue
// until ctx ends; then it stops taking jobs, lets the running ones save what they
// finished (within stopGrace), and returns.
func (w *Worker) Run(ctx context.Context) error {
	if err := Migrate(ctx, w.pg); err != nil {
		return err
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, &dnsWorker{w: w})
	river.AddWorker(workers, &planWorker{w: w})
	river.AddWorker(workers, &probeWorker{w: w})
	river.AddWorker(workers, &finishWorker{w: w})
	river.AddWorker(workers, &scheduledWorker{w: w})
	var periodic []*river.PeriodicJob
	if w.cfg.Schedule != nil {
		periodic = append(periodic, w.periodicJob())
	}
	client, err := river.NewClient(riverpgxv5.New(w.pg.Pool()), &river.Config{
		PeriodicJobs: periodic,
		ID:           w.id,
		Queues: map[string]river.QueueConfig{
			DNSQueue:                    {MaxWorkers: w.cfg.DNSJobs},
			VantageQueue(w.cfg.Vantage): {MaxWorkers: w.cfg.ProbeJobs},
		},
		Workers:                     workers,
		JobTimeout:                  w.cfg.Lease * 3 / 4,
		RescueStuckJobsAfter:        w.cfg.Lease,
		CompletedJobRetentionPeriod: 90 * 24 * time.Hour, // a run's progress stays visible
		FetchPollInterval:           time.Second,
		Logger:                      w.log.With("component", "river"),
	})
	if err != nil {
		return err
	}
	if err := w.beat(ctx); err != nil {
		return err
	}
	defer w.leave()
	if err := client.Start(ctx); err != nil {
		return err
	}
	w.log.Info("worker started", "id", w.id, "vantage", w.cfg.Vantage, "queues", []string{DNSQueue, VantageQueue(w.cfg.Vantage)},
		"lease", w.cfg.Lease)
	tick := time.NewTicker(w.cfg.Heartbeat)
	defer tick.Stop()
	for beats := 1; ctx.Err() == nil; beats++ {
		select {
		case <-ctx.Done():
		case <-tick.C:
			if err := w.beat(ctx); err != nil && ctx.Err() == nil {
				w.log.Warn("heartbeat", "err", err)
			}
			if beats%sweepBeats == 0 {
				if err := w.sweep(ctx, client); err != nil && ctx.Err() == nil {
					w.log.Warn("sweep", "err", err)
				}
			}
		}
	}
	w.log.Info("worker stopping: running jobs save what they finished")
	stop, cancel := context.WithTimeout(context.Background(), stopGrace)
	defer cancel()
	err = client.StopAndCancel(stop)
	w.closeSetups()
	return err
}

// sweepBeats is every how many heartbeats a worker sweeps the probing runs.
const sweepBeats = 6

// sweep enqueues what is due for the runs in their probe stage (their plan job
// completed, so every probe job is in the queue) that nothing enqueued: the stage's
// last job completed but its worker died (or failed) before advanceAfter. Reading the
// counts takes no lock; only a run with something due takes it, and advance counts again.
func (w *Worker) sweep(ctx context.Context, client *river.Client[pgx.Tx]) error {
	runs, err := w.pg.ListRuns(ctx)
	if err != nil {
		return err
	}
	for _, r := range runs {
		if r.State != store.RunProbing {
			continue
		}
		c, err := jobCounts(ctx, w.pg.Pool(), r.ID)
		if err != nil {
			return err
		}
		if c.total(kindPlan, "") == 0 || c.open(kindPlan, "") > 0 || len(due(c, r)) == 0 {
			continue
		}
		w.log.Info("sweep: enqueue the stage due", "run", r.ID)
		if err := advanceLocked(ctx, w.pg, client, r); err != nil {
			return err
		}
	}
	return nil
}

// stopGrace bounds how long a stopping worker waits for its jobs to save.
const stopGrace = 30 * time.Second

// beat records the worker alive and counts the vantage's live workers.
func (w *Worker) beat(ctx context.Context) error {
	host, _ := os.Hostname()
	if _, err := w.pg.Pool().Exec(ctx, `INSERT INTO v6matrix_workers (id, vantage, host, seen) VALUES ($1, $2, $3, now())
		ON CONFLICT (id) DO UPDATE SET seen = now()`, w.id, w.cfg.Vantage, host); err != nil {
		return fmt.Errorf("workers table: %w", err)
	}
	// Workers that died without leaving are forgotten after a day.
	if _, err := w.pg.Pool().Exec(ctx, `DELETE FROM v6matrix_workers WHERE seen < now() - interval '1 day'`); err != nil {
		return fmt.Errorf("workers table: %w", err)
	}
	var n int
	if err := w.pg.Pool().QueryRow(ctx, `SELECT count(*) FROM v6matrix_workers WHERE vantage = $1 AND seen > now() - $2::interval`,
		w.cfg.Vantage, fmt.Sprintf("%d milliseconds", (3*w.cfg.Heartbeat).Milliseconds())).Scan(&n); err != nil {
		return fmt.Errorf("workers table: %w", err)
	}
	w.mu.Lock()
	if n != w.alive {
		w.log.Info("live workers of the vantage", "vantage", w.cfg.Vantage, "workers", n)
	}
	w.alive = max(n, 1)
	w.mu.Unlock()
	return nil
}

// leave removes the worker from the workers table.
func (w *Worker) leave() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.pg.Pool().Exec(ctx, `DELETE FROM v6matrix_workers WHERE id = $1`, w.id)
}

// share is the part of a vantage-wide rate that one of this worker's probe jobs takes:
// the rate divided among the vantage's live workers and this worker's probe jobs.
func (w *Worker) share(rate float64) float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return rate / float64(w.alive*w.cfg.ProbeJobs)
}

// setup returns the run and the worker's setup for it.
func (w *Worker) setup(ctx context.Context, id int64) (store.Run, *Setup, error) {
	r, err := w.pg.GetRun(ctx, id)
	if err != nil {
		return r, nil, fmt.Errorf("run %d: %w", id, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if c := w.setups[id]; c != nil && c.options == r.Options {
		return r, c.setup, nil
	}
	s, err := w.cfg.Setup(ctx, r)
	if err != nil {
		return r, nil, fmt.Errorf("run %d: %w", id, err)
	}
	if old := w.setups[id]; old != nil && old.setup.Close != nil {
		old.setup.Close() // options changed (a resume): jobs still running keep theirs open
	}
	w.setups[id] = &cachedSetup{options: r.Options, setup: s}
	return r, s, nil
}

func (w *Worker) closeSetups() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, c := range w.setups {
		if c.setup.Close != nil {
			c.setup.Close()
		}
		delete(w.setups, id)
	}
}

// commit writes a job's results with save in one transaction; when finished it also
// completes the job in it, lets then add what the job enqueues, and enqueues the stage
// that is due. Unfinished, the job is snoozed for snooze. again, when set, is asked
// before the job completes (in the transaction) whether it has more to do: then it is
// snoozed instead.
//
// A DNS shard, plan or finish job does it all under the run's lock. A probe job
// (hundreds per run, each writing its own bucket's rows) takes no lock but its
// bucket's row (in again): once its completion has committed it looks whether another
// job of its stage is still open, and only the last ones take the lock to enqueue what
// is due (advanceAfter). Completions serialized on the lock were the distributed run's
// bottleneck (bench-net --distributed: 276 of PostgreSQL's 395 s waiting for it).
func commit[T river.JobArgs](ctx context.Context, w *Worker, job *river.Job[T], r store.Run, finished bool, snooze time.Duration,
	save func(ctx context.Context, tx pgx.Tx, st *store.Postgres) error, again func(ctx context.Context, tx pgx.Tx) (bool, error),
	then func(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx]) error) error {
	// The job's context may have ended (a stop, the slice): what finished is saved all
	// the same. ClientFromContext still finds the client.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	client := river.ClientFromContext[pgx.Tx](ctx)
	own := job.Kind == kindProbe
	var done bool
	err := pgx.BeginFunc(ctx, w.pg.Pool(), func(tx pgx.Tx) error {
		done = finished
		if !own {
			if err := lockRun(ctx, tx, r.ID); err != nil {
				return err
			}
		}
		if save != nil {
			if err := save(ctx, tx, w.pg.Within(tx)); err != nil {
				return err
			}
		}
		if done && again != nil {
			more, err := again(ctx, tx)
			if err != nil {
				return err
			}
			if more {
				done = false // snoozed: due again once the per-address limits allow
			}
		}
		if done {
			if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
				return fmt.Errorf("complete job %d: %w", job.ID, err)
			}
			if then != nil {
				if err := then(ctx, tx, client); err != nil {
					return err
				}
			}
			if !own {
				if err := advance(ctx, tx, client, r, job.JobRow); err != nil {
					return err
				}
			}
		}
		if w.cfg.beforeCommit != nil {
			return w.cfg.beforeCommit(job.Kind, job.Attempt)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !done {
		return river.JobSnooze(snooze)
	}
	if own && (w.cfg.lostAfterCommit == nil || !w.cfg.lostAfterCommit(job.Kind)) {
		// The job is complete whatever happens here: a failure (or a crash) leaves the
		// next stage to the sweep (Worker.sweep) or to crawl --resume.
		if err := advanceAfter(ctx, w.pg, client, r, job.JobRow); err != nil {
			w.log.Warn("enqueue the next stage", "run", r.ID, "job", job.ID, "err", err)
		}
	}
	return nil
}

// advanceAfter enqueues what is due once done (a job whose completion has committed)
// leaves no other job of its stage and vantage open. Each of the stage's last jobs
// looks after its own commit, so the last to commit sees every other completion;
// two that both see none open are serialized by the run's lock, under which advance
// counts again and enqueues once.
func advanceAfter(ctx context.Context, pg *store.Postgres, client *river.Client[pgx.Tx], r store.Run, done *rivertype.JobRow) error {
	open, err := othersOpen(ctx, pg.Pool(), r.ID, done)
	if err != nil || open {
		return err
	}
	return advanceLocked(ctx, pg, client, r)
}
