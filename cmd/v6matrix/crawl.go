package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/v6matrix/v6matrix/internal/addrclass"
	"github.com/v6matrix/v6matrix/internal/crawl"
	"github.com/v6matrix/v6matrix/internal/distrib"
	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/measure"
	"github.com/v6matrix/v6matrix/internal/metrics"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/progress"
	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/run"
	"github.com/v6matrix/v6matrix/internal/store"
)

func cmdCrawl(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("crawl", "[flags] LIST   (LIST: a rank,domain CSV, a Majestic CSV or a plain list; - for stdin; an http(s) URL or tranco, majestic, umbrella to download it)", stdout)
	var o crawlOptions
	var lf logFlags
	dbPath := fs.String("db", "v6matrix.db", "database: a SQLite `file` or a postgres:// URL")
	resume := fs.Bool("resume", false, "continue an interrupted run (the latest one, or --run) instead of starting one; with a --vantage other than the run's, measure the run's addresses from that vantage")
	runID := fs.Int64("run", 0, "with --resume: the run `id` to continue (default: the latest)")
	vantage := fs.String("vantage", hostname(), "name of the place this crawl runs from, stored with the run")
	var dist distribFlags
	dist.register(fs)
	metricsAddr := fs.String("metrics-listen", "", "serve Prometheus metrics of the crawl on http://`address`/metrics (e.g. 127.0.0.1:9464)")
	metricsLinger := fs.Duration("metrics-linger", 0, "with --metrics-listen: keep serving the metrics this long after the run ends, for a last scrape of the final counts")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole crawl to `file` (go tool pprof)")
	heapProfile := fs.String("heapprofile", "", "write profiles of the heap in use when the DNS stage ends (`file`.dns) and when the probe stage ends, before the summary (file) (go tool pprof)")
	o.register(fs)
	lf.register(fs)
	log, set, err := lf.parse(fs, args, stderr, parseInterleaved)
	if err != nil {
		return err
	}
	o.Probe.Kinds = o.Probe.kinds.vals

	// Everything that can be checked without the database is checked first, so that a
	// mistyped command leaves no database or failed run behind.
	if set["metrics-linger"] && (*metricsAddr == "" || *metricsLinger < 0) {
		return usagef("--metrics-linger %v: want a duration of 0 or more, with --metrics-listen", *metricsLinger)
	}
	if set["run"] && *runID < 1 {
		return usagef("--run %d: want a run id, 1 or more (without --run, --resume takes the latest run)", *runID)
	}
	if dist.check && (!dist.on || *resume) {
		return usagef("--check needs --distributed, without --resume")
	}
	if !*resume {
		if set["run"] {
			return usagef("--run needs --resume")
		}
		if o.List, err = listArg(fs); err != nil {
			return err
		}
	} else if fs.NArg() > 0 {
		return usagef("--resume takes no LIST: the run's own list is used")
	}
	if err := validateOptions(&o); err != nil {
		return err
	}
	if err := absPaths(&o); err != nil {
		return err
	}
	if dist.on && !*resume {
		vantages, err := checkDistributed(*dbPath, *vantage, dist.shard)
		if err != nil {
			return err
		}
		if dist.check {
			return checkPlan(o, log)
		}
		return crawlDistributed(ctx, o, *dbPath, vantages, dist.shard, stdout, log)
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	var plan *crawlPlan
	if !*resume {
		if plan, err = prepare(ctx, o, log); err != nil {
			return err
		}
		defer plan.Close()
	} else if _, err := os.Stat(*dbPath); err != nil && !store.IsPostgres(*dbPath) {
		return fmt.Errorf("--resume: database %s: no such database (give --db the file the interrupted crawl wrote)", *dbPath)
	}
	st, err := store.Open(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer st.Close()

	var resumed store.Run
	otherVantage := false // measuring the run from a second vantage
	if *resume {
		if resumed, err = run.Find(ctx, st, *runID); err != nil {
			return err
		}
		otherVantage = set["vantage"] && *vantage != resumed.Vantage
		if otherVantage {
			if _, err := run.CanMeasureFrom(ctx, st, resumed, *vantage); err != nil {
				return err
			}
		} else {
			if resumed, err = run.Resumable(ctx, st, resumed.ID); err != nil {
				return err
			}
		}
		if o, err = resumeOptions(resumed, o, fs, set, log); err != nil {
			return err
		}
		if dist.on && !o.Distributed {
			return usagef("--distributed: run %d runs in one process: resume it without --distributed", resumed.ID)
		}
		if o.Distributed && otherVantage {
			return usagef("--vantage %s: run %d is distributed, measured from %s: its vantages are given when it starts", *vantage, resumed.ID, strings.Join(distrib.Vantages(resumed), ","))
		}
		if o.Distributed {
			return resumeDistributed(ctx, o, *dbPath, resumed.ID, dist.shard, stdout, log)
		}
		if plan, err = prepare(ctx, o, log); err != nil {
			return err
		}
		defer plan.Close()
	}
	opts, err := marshalOptions(o)
	if err != nil {
		return fmt.Errorf("store the run's options: %w", err)
	}
	cfg := plan.runConfig(o, log)
	cfg.Watch = func(stage store.RunState, p *run.Progress) func() {
		stop := watchStage(stderr, log, lf, stage, p)
		path := map[store.RunState]string{store.RunCrawling: *heapProfile + ".dns", store.RunProbing: *heapProfile}[stage]
		if *heapProfile == "" || path == "" {
			return stop
		}
		return func() {
			stop()
			if err := writeHeapProfile(path); err != nil {
				log.Error("heap profile", "err", err)
			}
		}
	}
	if *metricsAddr != "" {
		reg := metrics.NewRegistry()
		cfg.Progress = &run.Progress{}
		if err := metrics.Crawl(reg, cfg.Progress, plan.client, *vantage); err != nil {
			return err
		}
		mctx, stop := context.WithCancel(ctx)
		defer stop()
		if _, err := metrics.Serve(mctx, *metricsAddr, reg, log); err != nil {
			return err
		}
	}
	var res run.Result
	switch {
	case otherVantage:
		if cfg.Probe != nil {
			cfg.Probe.Vantage = *vantage
		}
		res, err = run.MeasureFrom(ctx, st, resumed.ID, cfg)
		if ie := (*run.InterruptedError)(nil); errors.As(err, &ie) {
			log.Warn(fmt.Sprintf("probes from vantage %s interrupted; continue with: v6matrix crawl --resume --run %d --vantage %s", *vantage, ie.Run, *vantage))
			return errInterrupted
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "run %d measured from vantage %s: %d probes, %d could not run\n",
			res.Run.ID, *vantage, res.Progress.Probe.Done.Load(), res.Progress.Probe.Failed.Load())
		return nil
	case *resume:
		res, err = run.Resume(ctx, st, resumed.ID, cfg, opts)
	default:
		log.Info("starting a run", "list", o.List, "db", store.Name(*dbPath))
		res, err = run.Start(ctx, st, cfg, run.Meta{Options: opts, Vantage: *vantage})
	}
	if err != nil {
		return runError(log, res, err)
	}
	fmt.Fprintf(stdout, "run %d: %d domains (%s), %d addresses, %d invalid list lines skipped, %d duplicates\n",
		res.Run.ID, res.Counts.Done, statusSummary(res.Counts.ByStatus), res.Counts.Addresses, res.Run.Skipped, res.Run.Duplicates)
	if *metricsAddr != "" && *metricsLinger > 0 {
		log.Info("run done; metrics served a while longer", "for", *metricsLinger)
		select {
		case <-time.After(*metricsLinger):
		case <-ctx.Done():
		}
	}
	return nil
}

// listArg returns the LIST argument: an absolute path to a file that can be opened,
// or - (standard input).
func listArg(fs *flag.FlagSet) (string, error) {
	if fs.NArg() != 1 {
		return "", usagef("want exactly one LIST argument, got %d (see v6matrix crawl --help)", fs.NArg())
	}
	list := fs.Arg(0)
	if u := domains.ListSource(list); u != "" {
		return u, nil // downloaded when the run stores its copy
	}
	if list == "-" {
		return list, nil
	}
	f, err := os.Open(list)
	if err != nil {
		return "", fmt.Errorf("list: %w", err)
	}
	f.Close()
	if list, err = filepath.Abs(list); err != nil {
		return "", fmt.Errorf("list: %w", err)
	}
	return list, nil
}

// resumeOptions returns the resumed run's stored options with the command line's
// applied (mergeOptions), checked again.
func resumeOptions(resumed store.Run, cli crawlOptions, fs *flag.FlagSet, set map[string]bool, log *slog.Logger) (crawlOptions, error) {
	o, err := mergeOptions(resumed.ID, resumed.Options, cli, fs, set, log)
	if err != nil {
		return o, err
	}
	if err := validateOptions(&o); err != nil {
		return o, fmt.Errorf("run %d: its stored options are invalid: %w", resumed.ID, err)
	}
	return o, nil
}

// watchStage shows a stage's progress (see showProgress); it returns the function
// that stops it.
func watchStage(stderr io.Writer, log *slog.Logger, lf logFlags, stage store.RunState, p *run.Progress) func() {
	switch stage {
	case store.RunCrawling:
		// The probes run meanwhile: the note gives their lower bound.
		return showProgress(stderr, log, lf, "crawl", func() progress.Counts {
			return progress.Counts{Done: p.DNS.Done.Load(), Total: p.DNS.Total.Load(), Errors: p.DNS.Errors.Load(), Note: boundNote(&p.Probe)}
		})
	case store.RunProbing:
		return showProgress(stderr, log, lf, "probe", func() progress.Counts {
			return progress.Counts{Done: p.Probe.Done.Load(), Total: p.Probe.Total.Load(), Errors: p.Probe.Failed.Load(),
				Note: boundNote(&p.Probe), Least: p.Probe.Left()}
		})
	}
	return func() {}
}

// boundNote says how long the probes take at least, and why (measure.Progress.Bound).
func boundNote(p *measure.Progress) string {
	lb, why := p.Bound()
	if lb <= 0 {
		return ""
	}
	return fmt.Sprintf("at least %v: %s", lb.Round(time.Second), why)
}

// runError logs how to go on from an interrupted run and turns its error into the
// command's (errInterrupted: exit 128+signal).
func runError(log *slog.Logger, res run.Result, err error) error {
	var ie *run.InterruptedError
	if !errors.As(err, &ie) {
		return err
	}
	const hint = "; continue with: v6matrix crawl --resume"
	switch {
	case ie.State == store.RunFailed:
		log.Warn("interrupted while storing the list: nothing to resume, start the crawl again", "run", ie.Run)
	case ie.Stage == store.RunLoading:
		log.Warn("list loading interrupted"+hint, "run", ie.Run)
	case ie.Stage == store.RunCrawling:
		p := &res.Progress.DNS
		log.Warn("crawl interrupted"+hint, "run", ie.Run, "done", p.Done.Load(), "pending", p.Total.Load()-p.Done.Load())
	default:
		log.Warn("probe stage interrupted"+hint, "run", ie.Run)
	}
	return errInterrupted
}

// absPaths makes the files the options name absolute, so that a resume finds them from
// any directory (and compares equal to the same file named relatively).
func absPaths(o *crawlOptions) error {
	for _, p := range []*string{&o.Exclude, &o.PrefixTable, &o.Probe.TLSRoots, &o.Probe.GeoIPCity, &o.Probe.GeoIPASN} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return fmt.Errorf("%s: %w", *p, err)
		}
		*p = abs
	}
	return nil
}

// resolverAddrs returns the --resolver addresses, or those of /etc/resolv.conf.
func resolverAddrs(o crawlOptions) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, r := range o.Resolvers {
		ap, err := resolve.ParseServer(r)
		if err != nil {
			return nil, usagef("--resolver: %v", err)
		}
		out = append(out, ap)
	}
	if len(out) == 0 {
		return resolve.SystemServers("/etc/resolv.conf")
	}
	return out, nil
}

// crawlPlan is what a crawl runs with, built from its options before the database is
// opened or the list loaded, so that every bad input fails at once.
type crawlPlan struct {
	dns    crawl.Config
	client *resolve.Client
	probe  *measure.Config // nil: no probe stage
}

// Close releases the plan's sockets and files.
func (p *crawlPlan) Close() {
	p.client.Close()
	if p.probe != nil && p.probe.GeoIP != nil {
		p.probe.GeoIP.Close()
	}
}

// runConfig is the run's configuration: the plan and the list's selection.
func (p *crawlPlan) runConfig(o crawlOptions, log *slog.Logger) run.Config {
	return run.Config{DNS: p.dns, Client: p.client, Probe: p.probe, List: o.List, Stdin: os.Stdin,
		TLDs: o.TLDs, Top: o.Top, Logger: log}
}

// prepare reads every file the options name, checks every setting and asks the
// resolvers for the root NS set: all before the database is touched.
func prepare(ctx context.Context, o crawlOptions, log *slog.Logger) (*crawlPlan, error) {
	cfg, client, err := buildCrawl(o, log)
	if err != nil {
		return nil, err
	}
	plan := &crawlPlan{dns: cfg, client: client}
	if plan.probe, err = buildProbe(o, cfg, log); err != nil {
		plan.Close()
		return nil, err
	}
	if plan.probe != nil {
		plan.probe.DNS = client // PTR queries: the same resolvers, sockets and count
	}
	if err := crawl.New(cfg, client, nil).CheckResolvers(ctx); err != nil {
		plan.Close()
		if errors.Is(err, context.Canceled) {
			return nil, errInterrupted
		}
		return nil, fmt.Errorf("resolvers %s: %w", strings.Join(o.Resolvers, ","), err)
	}
	return plan, nil
}

// buildCrawl turns options into the crawl's configuration and DNS client.
func buildCrawl(o crawlOptions, log *slog.Logger) (crawl.Config, *resolve.Client, error) {
	cfg := crawl.DefaultConfig()
	cfg.Concurrency, cfg.WWWApex, cfg.Logger = o.Concurrency, o.WWWApex, log
	rc := resolve.DefaultConfig()
	rc.Timeout, rc.Retries = o.Timeout, o.Retries
	rc.MaxInFlight = max(rc.MaxInFlight, o.Concurrency+o.Concurrency/4)
	servers, err := resolverAddrs(o)
	if err != nil {
		return cfg, nil, err
	}
	rc.Servers = servers
	if o.Exclude != "" {
		f, err := os.Open(o.Exclude)
		if err != nil {
			return cfg, nil, fmt.Errorf("--exclude: %w", err)
		}
		defer f.Close()
		if cfg.OptOut, err = domains.ParseOptOut(f, o.Exclude); err != nil {
			return cfg, nil, fmt.Errorf("--exclude: %w", err)
		}
		nd, nn := cfg.OptOut.Len()
		log.Info("opt-out list", "file", o.Exclude, "domains", nd, "networks", nn)
	}
	allow, err := parsePrefixes("allow-ranges", o.AllowRanges)
	if err != nil {
		return cfg, nil, err
	}
	if err := polite.CheckAllowRanges(allow); err != nil {
		return cfg, nil, usagef("%v", err)
	}
	table := addrclass.DefaultTable()
	if o.PrefixTable != "" {
		f, err := os.Open(o.PrefixTable)
		if err != nil {
			return cfg, nil, fmt.Errorf("--prefix-table: %w", err)
		}
		defer f.Close()
		if table, err = addrclass.ParseTable(f, o.PrefixTable); err != nil {
			return cfg, nil, fmt.Errorf("--prefix-table: %w", err)
		}
	}
	// The parents' delegations are asked of the parent zones' servers directly: the
	// probe gate decides which of their addresses may be sent a query.
	gate, err := polite.NewGate(allow, cfg.OptOut.Networks())
	if err != nil {
		return cfg, nil, err
	}
	cfg.ParentAllowed = func(a netip.Addr) bool { ok, _ := gate.Allowed(a); return ok }
	client, err := resolve.NewClient(rc)
	if err != nil {
		return cfg, nil, err
	}
	cl := addrclass.New(table, allow)
	cfg.Classify = func(a netip.Addr) result.Class {
		c := cl.Classify(a)
		return result.Class{Valid: c.Valid, PrefixID: c.PrefixID, Type: c.Type, IID: c.IID}
	}
	return cfg, client, nil
}

func statusSummary(m map[result.Status]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, string(k))
	}
	slices.Sort(keys)
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%d %s", m[result.Status(k)], k)
	}
	return s
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}
