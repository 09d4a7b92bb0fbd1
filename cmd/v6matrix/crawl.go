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
	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/measure"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/progress"
	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/summary"
)

func cmdCrawl(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("crawl", "[flags] LIST   (LIST: a rank,domain CSV, a Majestic CSV or a plain list; - for stdin)", stdout)
	var o crawlOptions
	var lf logFlags
	dbPath := fs.String("db", "v6matrix.db", "database: a SQLite `file` or a postgres:// URL")
	resume := fs.Bool("resume", false, "continue an interrupted run (the latest one, or --run) instead of starting one")
	runID := fs.Int64("run", 0, "with --resume: the run to continue")
	vantage := fs.String("vantage", hostname(), "name of the place this crawl runs from, stored with the run")
	o.register(fs)
	lf.register(fs)
	if err := parseInterleaved(fs, args, stderr); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	o.Probe.Kinds = o.Probe.kinds.vals

	// Everything that can be checked without the database is checked first, so that a
	// mistyped command leaves no database or failed run behind.
	if !*resume {
		if set["run"] {
			return usagef("--run needs --resume")
		}
		if fs.NArg() != 1 {
			return usagef("want exactly one LIST argument, got %d (see v6matrix crawl --help)", fs.NArg())
		}
		if o.List = fs.Arg(0); o.List != "-" {
			f, err := os.Open(o.List)
			if err != nil {
				return fmt.Errorf("list: %w", err)
			}
			f.Close()
			if o.List, err = filepath.Abs(o.List); err != nil {
				return fmt.Errorf("list: %w", err)
			}
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

	var run store.Run
	if *resume {
		if run, err = resumableRun(ctx, st, *runID); err != nil {
			return err
		}
		if set["vantage"] && *vantage != run.Vantage {
			return usagef("--vantage %s: cannot change when resuming run %d, which runs from %q: start a new crawl from another vantage", *vantage, run.ID, run.Vantage)
		}
		if o, err = mergeOptions(run.ID, run.Options, o, fs, set, log); err != nil {
			return err
		}
		if err := validateOptions(&o); err != nil {
			return fmt.Errorf("run %d: its stored options are invalid: %w", run.ID, err)
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
	if !*resume {
		run = store.Run{Started: time.Now(), ListName: o.List, Options: opts, Vantage: *vantage, State: store.RunLoading}
		if run.ID, err = st.CreateRun(ctx, run); err != nil {
			return err
		}
		log.Info("run created", "run", run.ID, "list", o.List, "db", store.Name(*dbPath))
		if err := storeList(ctx, st, &run, o, log); err != nil {
			return err
		}
	} else {
		run.Options = opts
		log.Info("resuming run", "run", run.ID, "list", run.ListName, "list_sha256", run.ListSHA256, "state", run.State)
		if err := storeListIfMissing(ctx, st, &run, o, log); err != nil {
			return err
		}
	}
	if !run.Loaded {
		if err := loadList(ctx, st, &run, o, log); err != nil {
			return err
		}
	}
	run.State = store.RunCrawling
	if err := st.UpdateRun(ctx, run); err != nil {
		return err
	}

	c := crawl.New(plan.dns, plan.client, st)
	var p crawl.Progress
	stopProgress := showProgress(stderr, log, lf, "crawl", func() progress.Counts {
		return progress.Counts{Done: p.Done.Load(), Total: p.Total.Load(), Errors: p.Errors.Load()}
	})
	start := time.Now()
	err = c.Run(ctx, run.ID, &p)
	stopProgress()
	elapsed := time.Since(start)
	if errors.Is(err, context.Canceled) {
		err = finishRun(st, &run, store.RunInterrupted, nil)
		log.Warn("crawl interrupted; continue with: v6matrix crawl --resume", "run", run.ID, "done", p.Done.Load(), "pending", p.Total.Load()-p.Done.Load())
		if err != nil {
			return err
		}
		return errInterrupted
	}
	if err != nil {
		return finishRun(st, &run, store.RunInterrupted, err)
	}
	rate := float64(p.Done.Load()) / max(elapsed.Seconds(), 1e-9)
	log.Info("DNS stage done", "run", run.ID, "domains", p.Done.Load(), "queries", plan.client.Queries(),
		"elapsed", elapsed.Round(time.Millisecond), "domains_per_s", fmt.Sprintf("%.0f", rate))
	if err := probeStage(ctx, st, &run, plan.probe, log, lf, stderr); err != nil {
		if errors.Is(err, context.Canceled) {
			finishRun(st, &run, store.RunInterrupted, nil)
			log.Warn("probe stage interrupted; continue with: v6matrix crawl --resume", "run", run.ID)
			return errInterrupted
		}
		return finishRun(st, &run, store.RunInterrupted, err)
	}
	if err := finishRun(st, &run, store.RunDone, nil); err != nil {
		return err
	}
	if err := summary.Build(ctx, st, run.ID, log); err != nil {
		log.Warn("the run's summary for the website was not built; v6matrix serve builds it when it starts", "run", run.ID, "err", err)
	}
	counts, err := st.Counts(ctx, run.ID)
	if err != nil {
		return err
	}
	log.Info("crawl done", "run", run.ID, "domains", counts.Done, "addresses", counts.Addresses,
		"skipped_lines", run.Skipped, "duplicates", run.Duplicates, "elapsed", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(stdout, "run %d: %d domains (%s), %d addresses, %d invalid list lines skipped, %d duplicates\n",
		run.ID, counts.Done, statusSummary(counts.ByStatus), counts.Addresses, run.Skipped, run.Duplicates)
	return nil
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

// storeList copies the run's list (file or standard input) into the store, so that the
// load and every resume read exactly this list wherever they run from.
func storeList(ctx context.Context, st store.Store, run *store.Run, o crawlOptions, log *slog.Logger) error {
	in, _, err := openList(o.List)
	if err != nil {
		return finishRun(st, run, store.RunFailed, err)
	}
	defer in.Close()
	sum, size, err := st.SaveList(ctx, run.ID, in)
	if errors.Is(err, context.Canceled) {
		finishRun(st, run, store.RunFailed, nil)
		log.Warn("interrupted while storing the list: nothing to resume, start the crawl again", "run", run.ID)
		return errInterrupted
	}
	if err != nil {
		return finishRun(st, run, store.RunFailed, fmt.Errorf("%s: %w", o.List, err))
	}
	run.ListSHA256 = sum
	log.Info("list stored", "run", run.ID, "bytes", size, "sha256", sum)
	return nil
}

// storeListIfMissing stores the list of a resumed run that was stopped before its list
// was stored (between the run's creation and the end of storeList): nothing of it was
// loaded, so the list the file holds now becomes the run's list, and nothing is mixed.
func storeListIfMissing(ctx context.Context, st store.Store, run *store.Run, o crawlOptions, log *slog.Logger) error {
	if run.Loaded || run.ListSHA256 != "" {
		return nil
	}
	in, err := st.OpenList(ctx, run.ID)
	if err == nil {
		in.Close()
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	c, err := st.Counts(ctx, run.ID)
	if err != nil {
		return err
	}
	if c.Total > 0 || o.List == "-" {
		return nil // loadList says what is wrong
	}
	log.Warn("the run stopped before its list was stored: storing it now", "run", run.ID, "list", o.List)
	if err := storeList(ctx, st, run, o, log); err != nil {
		return err
	}
	return st.UpdateRun(ctx, *run)
}

// loadList streams the run's list into the store.
func loadList(ctx context.Context, st store.Store, run *store.Run, o crawlOptions, log *slog.Logger) error {
	in, err := st.OpenList(ctx, run.ID)
	if errors.Is(err, store.ErrNotFound) {
		return finishRun(st, run, store.RunFailed, fmt.Errorf("run %d has no stored copy of its list (stopped before the list was stored, or made by an older v6matrix): start a new crawl of %s", run.ID, o.List))
	}
	if err != nil {
		return err
	}
	defer in.Close()
	name := listName(o.List)
	sel := map[string]bool{}
	for _, t := range o.TLDs {
		sel[t] = true
	}
	stats, err := crawl.Load(ctx, st, run.ID, in, name, crawl.LoadOptions{TLDs: sel, Top: o.Top,
		OnSkip: func(e *domains.LineError) {
			log.Warn("skipped list line", "where", fmt.Sprintf("%s:%d", e.File, e.Line), "reason", e.Reason)
		}})
	if errors.Is(err, context.Canceled) {
		finishRun(st, run, store.RunInterrupted, nil)
		log.Warn("list loading interrupted; continue with: v6matrix crawl --resume", "run", run.ID)
		return errInterrupted
	}
	if err != nil {
		if errors.Is(err, crawl.ErrNoDomains) {
			err = fmt.Errorf("%s: %w (%d lines skipped, %d outside the selection)", name, err, stats.Skipped, stats.Filtered)
		}
		return finishRun(st, run, store.RunFailed, err)
	}
	if run.ListSHA256 != "" && stats.SHA256 != run.ListSHA256 {
		return finishRun(st, run, store.RunFailed, fmt.Errorf("run %d: its stored list reads back with SHA-256 %s, not %s: the database is damaged", run.ID, stats.SHA256, run.ListSHA256))
	}
	run.Loaded, run.ListSHA256, run.Skipped, run.Duplicates = true, stats.SHA256, stats.Skipped, stats.Duplicates
	log.Info("list loaded", "domains", stats.Added, "skipped_lines", stats.Skipped, "duplicates", stats.Duplicates, "filtered", stats.Filtered)
	return nil
}

func openList(path string) (io.ReadCloser, string, error) {
	if path == "-" {
		return io.NopCloser(os.Stdin), "stdin", nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("list: %w", err)
	}
	return f, listName(path), nil
}

// listName is how messages name a list: its file name, or stdin.
func listName(path string) string {
	if path == "-" {
		return "stdin"
	}
	return filepath.Base(path)
}

// finishRun records the run's end state; cause, if any, is returned.
func finishRun(st store.Store, run *store.Run, state store.RunState, cause error) error {
	run.State = state
	if state == store.RunDone || state == store.RunFailed {
		run.Finished = time.Now()
	}
	if err := st.UpdateRun(context.Background(), *run); err != nil && cause == nil {
		return err
	}
	return cause
}

func resumableRun(ctx context.Context, st store.Store, id int64) (store.Run, error) {
	var run store.Run
	var err error
	if id > 0 {
		run, err = st.GetRun(ctx, id)
	} else {
		run, err = st.LatestRun(ctx)
	}
	if err != nil {
		return run, err
	}
	if run.State == store.RunDone {
		return run, fmt.Errorf("run %d is already done: nothing to resume", run.ID)
	}
	return run, nil
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
