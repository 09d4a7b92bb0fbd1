package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/v6matrix/v6matrix/internal/distrib"
	"github.com/v6matrix/v6matrix/internal/metrics"
	"github.com/v6matrix/v6matrix/internal/run"
	"github.com/v6matrix/v6matrix/internal/store"
)

// distribFlags are crawl's flags of the distributed mode.
type distribFlags struct {
	on    bool
	shard int
	check bool
}

func (d *distribFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&d.on, "distributed", false, "with --db postgres://...: store the run and enqueue its work for `v6matrix worker`s, then return (--vantage: the vantages it is measured from, comma separated)")
	fs.IntVar(&d.shard, "shard", distrib.DefaultShard, "with --distributed: domains per DNS job")
	fs.BoolVar(&d.check, "check", false, "with --distributed: check the settings and the files they name, then return without a run (what worker --schedule does when it starts)")
}

// checkDistributed checks a distributed crawl's database and vantages before anything
// is opened.
func checkDistributed(dbPath string, vantages string, shard int) ([]string, error) {
	if !store.IsPostgres(dbPath) {
		return nil, usagef("--distributed needs --db postgres://... (the workers share the database and its job queue), got %s", dbPath)
	}
	if shard < 1 {
		return nil, usagef("--shard %d: want 1 or more domains per DNS job", shard)
	}
	vs := distrib.SplitVantages(vantages)
	if len(vs) == 0 {
		return nil, usagef("--vantage: name the vantages the run is measured from, comma separated")
	}
	for i, v := range vs {
		if err := distrib.CheckVantage(v); err != nil {
			return nil, usagef("--vantage: %v", err)
		}
		if slices.Contains(vs[:i], v) {
			return nil, usagef("--vantage: %s named twice", v)
		}
	}
	return vs, nil
}

// crawlDistributed creates a distributed run (its list stored and loaded) and enqueues
// its DNS shards; the workers do the rest. Nothing is sent from here: the options are
// checked (every file read) without asking the resolvers, which the workers use.
func crawlDistributed(ctx context.Context, o crawlOptions, dbPath string, vantages []string, shard int, stdout io.Writer, log *slog.Logger) error {
	o.Distributed, o.Vantages = true, vantages
	opts, pg, q, err := openDistributed(ctx, o, dbPath, log)
	if err != nil {
		return err
	}
	defer pg.Close()
	cfg := run.Config{List: o.List, Stdin: os.Stdin, TLDs: o.TLDs, Top: o.Top, Logger: log}
	// The run's own vantage is the first: exports show it unless given --vantage.
	res, err := run.Create(ctx, pg, cfg, run.Meta{Options: opts, Vantage: vantages[0]})
	if err != nil {
		return runError(log, res, err)
	}
	shards, err := q.Enqueue(ctx, res.Run.ID, shard)
	if err != nil {
		return fmt.Errorf("run %d: %w (enqueue the rest with v6matrix crawl --resume --run %d)", res.Run.ID, err, res.Run.ID)
	}
	c, err := pg.Counts(ctx, res.Run.ID)
	if err != nil {
		return err
	}
	printQueued(stdout, res.Run.ID, dbPath, vantages, fmt.Sprintf("%d domains in %d DNS jobs", c.Total, shards))
	return nil
}

// resumeDistributed puts a distributed run's stopped work back on the queue.
func resumeDistributed(ctx context.Context, o crawlOptions, dbPath string, id int64, shard int, stdout io.Writer, log *slog.Logger) error {
	if !store.IsPostgres(dbPath) {
		return fmt.Errorf("run %d is distributed: resume it with --db postgres://...", id)
	}
	opts, pg, q, err := openDistributed(ctx, o, dbPath, log)
	if err != nil {
		return err
	}
	defer pg.Close()
	res, err := run.Reload(ctx, pg, id, run.Config{Stdin: os.Stdin, TLDs: o.TLDs, Top: o.Top, Logger: log}, opts)
	if err != nil {
		return runError(log, res, err)
	}
	retried, shards, err := q.Resume(ctx, id, shard)
	if err != nil {
		return fmt.Errorf("run %d: %w", id, err)
	}
	printQueued(stdout, id, dbPath, distrib.Vantages(res.Run), fmt.Sprintf("%d stopped jobs retried, %d DNS jobs enqueued", retried, shards))
	return nil
}

// checkPlan reads every file the options name and checks every setting, without a
// packet: the workers ask the resolvers.
func checkPlan(o crawlOptions, log *slog.Logger) error {
	cfg, client, err := buildCrawl(o, log)
	if err != nil {
		return err
	}
	plan := &crawlPlan{dns: cfg, client: client}
	defer plan.Close()
	plan.probe, err = buildProbe(o, cfg, log)
	return err
}

// openDistributed checks the options (checkPlan) and encodes them, then opens the
// PostgreSQL store and its job queue (River's migrations applied).
func openDistributed(ctx context.Context, o crawlOptions, dbPath string, log *slog.Logger) (string, *store.Postgres, *distrib.Queue, error) {
	if err := checkPlan(o, log); err != nil {
		return "", nil, nil, err
	}
	opts, err := marshalOptions(o)
	if err != nil {
		return "", nil, nil, fmt.Errorf("store the run's options: %w", err)
	}
	pg, err := store.OpenPostgres(ctx, dbPath)
	if err != nil {
		return "", nil, nil, err
	}
	q, err := distrib.Open(ctx, pg)
	if err != nil {
		pg.Close()
		return "", nil, nil, fmt.Errorf("database %s: %w", store.Name(dbPath), err)
	}
	return opts, pg, q, nil
}

func printQueued(w io.Writer, id int64, dbPath string, vantages []string, what string) {
	db := store.Name(dbPath)
	fmt.Fprintf(w, "run %d: %s queued\n", id, what)
	for _, v := range vantages {
		fmt.Fprintf(w, "  work it:  v6matrix worker --db %s --vantage %s\n", db, v)
	}
	fmt.Fprintf(w, "  watch it: v6matrix runs --db %s\n", db)
}

// workerApplies are the crawl flags a worker may give: those a resume may change (how
// fast, through which resolvers), applied to every run it works on.
var workerApplies = resumeApplies

func cmdWorker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("worker", "--db postgres://... --vantage NAME [flags] [--schedule SPEC -- CRAWL-FLAGS LIST]", stdout)
	var o crawlOptions
	var lf logFlags
	dbPath := fs.String("db", "", "the distributed runs' database: a postgres:// URL")
	vantage := fs.String("vantage", "", "the vantage this worker measures from: it takes that vantage's probe jobs")
	dnsJobs := fs.Int("dns-jobs", 2, "DNS shards worked on at once")
	probeJobs := fs.Int("probe-jobs", 8, "probe jobs (networks) worked on at once; each takes an equal share of this worker's part of --rate")
	metricsAddr := fs.String("metrics-listen", "", "serve Prometheus metrics of this worker's jobs on http://`address`/metrics (e.g. 127.0.0.1:9464)")
	lease := fs.Duration("lease", distrib.DefaultLease, "how long a job may run before another worker takes it over (a dead worker's jobs wait this long)")
	schedule := fs.String("schedule", "", "start a distributed run on a schedule: `monthly@DTHH:MM` (day D, 1 to 28, of every month at HH:MM UTC), of the crawl after -- (crawl --distributed's flags and LIST; --db is the worker's, --vantage defaults to the worker's); one run per period whichever workers have it")
	// crawl's flags that a worker may change: every other setting is the run's own.
	all := flag.NewFlagSet("crawl", flag.ContinueOnError)
	o.register(all)
	all.VisitAll(func(f *flag.Flag) {
		if slices.Contains(workerApplies, f.Name) {
			fs.Var(f.Value, f.Name, f.Usage+" (overrides the run's)")
		}
	})
	lf.register(fs)
	log, set, err := lf.parse(fs, args, stderr, parseFlags)
	if err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0 && !set["schedule"]:
		return usagef("unexpected argument %q", fs.Arg(0))
	case set["schedule"] && fs.NArg() == 0:
		return usagef("--schedule %s: give the crawl to start after --: v6matrix worker ... --schedule %s -- [crawl flags] LIST", *schedule, *schedule)
	case !store.IsPostgres(*dbPath):
		return usagef("--db: want the distributed runs' postgres:// URL, got %q", *dbPath)
	case *dnsJobs < 1 || *probeJobs < 1:
		return usagef("--dns-jobs and --probe-jobs: want 1 or more")
	case *lease < 10*time.Second:
		return usagef("--lease %v: want 10s or more", *lease)
	}
	if err := distrib.CheckVantage(*vantage); err != nil {
		return usagef("--vantage: %v", err)
	}
	var sched scheduled
	if set["schedule"] {
		if sched, err = newScheduled(ctx, *schedule, *dbPath, *vantage, fs.Args(), stderr); err != nil {
			return err
		}
	}
	pg, err := store.OpenPostgres(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer pg.Close()
	progress := &run.Progress{}
	if *metricsAddr != "" {
		reg := metrics.NewRegistry()
		if err := metrics.Crawl(reg, progress, nil, *vantage); err != nil {
			return err
		}
		if _, err := metrics.Serve(ctx, *metricsAddr, reg, log); err != nil {
			return err
		}
	}
	w, err := distrib.New(pg, distrib.Config{Vantage: *vantage, DNSJobs: *dnsJobs, ProbeJobs: *probeJobs, Lease: *lease, Logger: log, Progress: progress,
		Schedule: sched.schedule, ScheduleName: sched.name, StartRun: sched.start,
		Setup: func(ctx context.Context, r store.Run) (*distrib.Setup, error) {
			ro, err := resumeOptions(r, o, fs, set, log)
			if err != nil {
				return nil, err
			}
			plan, err := prepare(ctx, ro, log)
			if err != nil {
				return nil, err
			}
			return &distrib.Setup{DNS: plan.dns, Client: plan.client, Probe: plan.probe, Close: plan.Close}, nil
		}})
	if err != nil {
		return usagef("%v", err)
	}
	err = w.Run(ctx)
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		log.Info("worker stopped", "id", w.ID())
		return nil
	}
	return err
}

// scheduled is a worker's --schedule: the crawl --distributed it starts every period.
type scheduled struct {
	schedule distrib.Schedule // nil: none
	name     string
	start    func(ctx context.Context, period time.Time) (int64, error)
}

// newScheduled checks a worker's schedule and its crawl (crawl --distributed --check:
// the same flags, files and list as the runs it starts) before the worker starts.
func newScheduled(ctx context.Context, spec, dbPath, vantage string, crawlArgs []string, stderr io.Writer) (scheduled, error) {
	s, err := distrib.ParseSchedule(spec)
	if err != nil {
		return scheduled{}, usagef("--schedule: %v", err)
	}
	for _, a := range crawlArgs {
		if name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && (name == "db" || name == "resume" || name == "run") {
			return scheduled{}, usagef("--schedule: the crawl after -- takes no %s: the runs are new, in the worker's --db", a)
		}
		if a == "--" {
			break
		}
	}
	// The worker's vantage comes first: the crawl's own --vantage, later, overrides it.
	args := append([]string{"--db", dbPath, "--distributed", "--vantage", vantage}, crawlArgs...)
	if err := cmdCrawl(ctx, append([]string{"--check"}, args...), io.Discard, stderr); err != nil {
		return scheduled{}, fmt.Errorf("--schedule: the crawl after --: %w", err)
	}
	start := func(ctx context.Context, period time.Time) (int64, error) {
		var out strings.Builder
		if err := cmdCrawl(ctx, args, &out, stderr); err != nil {
			return 0, err
		}
		var id int64
		if _, err := fmt.Sscanf(out.String(), "run %d:", &id); err != nil {
			return 0, fmt.Errorf("started a run, but which: %q", out.String())
		}
		return id, nil
	}
	// The spec alone names the schedule: a worker restarted with other crawl flags (a
	// new --resolver) starts no second run of the month.
	return scheduled{schedule: s, name: s.String(), start: start}, nil
}
