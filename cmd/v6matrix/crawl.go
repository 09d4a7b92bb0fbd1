package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/v6matrix/v6matrix/internal/addrclass"
	"github.com/v6matrix/v6matrix/internal/crawl"
	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/progress"
	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// crawlOptions are a run's settings; they are stored with the run so that --resume
// continues with the same ones (flags given with --resume override them).
type crawlOptions struct {
	List        string        `json:"list"`
	Resolvers   []string      `json:"resolvers"`
	Timeout     time.Duration `json:"timeout"`
	Retries     int           `json:"retries"`
	Concurrency int           `json:"concurrency"`
	TLDs        []string      `json:"tlds,omitempty"`
	Top         int           `json:"top,omitempty"`
	Exclude     string        `json:"exclude,omitempty"`
	WWWApex     bool          `json:"www_apex,omitempty"`
	AllowRanges []string      `json:"allow_ranges,omitempty"`
	PrefixTable string        `json:"prefix_table,omitempty"`
	Probe       probeOptions  `json:"probe"`
}

func cmdCrawl(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("crawl", "[flags] LIST   (LIST: a rank,domain CSV, a Majestic CSV or a plain list; - for stdin)", stderr)
	def := resolve.DefaultConfig()
	var o crawlOptions
	var resolvers, tlds, allow listFlag
	var lf logFlags
	dbPath := fs.String("db", "v6matrix.db", "SQLite database file")
	resume := fs.Bool("resume", false, "continue an interrupted run (the latest one, or --run) instead of starting one")
	runID := fs.Int64("run", 0, "with --resume: the run to continue")
	vantage := fs.String("vantage", hostname(), "name of the place this crawl runs from, stored with the run")
	fs.Var(&resolvers, "resolver", "recursive resolver `host:port`, repeatable, used in turn (default: /etc/resolv.conf)")
	fs.DurationVar(&o.Timeout, "timeout", def.Timeout, "wait of a DNS query's first try; each retry waits twice as long, earlier tries stay open")
	fs.IntVar(&o.Retries, "retries", def.Retries, "further tries after a timeout, each to the next resolver")
	fs.IntVar(&o.Concurrency, "concurrency", crawl.DefaultConfig().Concurrency, "domains measured at once")
	fs.Var(&tlds, "tld", "only these TLDs, comma separated (e.g. uk,net)")
	fs.IntVar(&o.Top, "top", 0, "only the N best-ranked domains of each TLD (0 = all)")
	fs.StringVar(&o.Exclude, "exclude", "", "opt-out `file`: domains and CIDR networks never measured")
	fs.BoolVar(&o.WWWApex, "www-apex", false, "look up the apex as a www host too")
	fs.Var(&allow, "allow-ranges", "CIDR ranges treated as valid and probe-able although special-purpose (labs), comma separated")
	fs.StringVar(&o.PrefixTable, "prefix-table", "", "replace the built-in IPv6 prefix table with this CSV `file`")
	o.Probe.register(fs)
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
	o.Resolvers, o.TLDs, o.AllowRanges = resolvers, tlds, allow
	o.Probe.Kinds = o.Probe.kinds.vals

	if !*resume {
		// Everything that can be checked without the database is checked first, so that
		// a mistyped command leaves no database or failed run behind.
		if set["run"] {
			return usagef("--run needs --resume")
		}
		if fs.NArg() != 1 {
			return usagef("want exactly one LIST argument, got %d (see v6matrix crawl --help)", fs.NArg())
		}
		o.List = fs.Arg(0)
		if o.List != "-" {
			f, err := os.Open(o.List)
			if err != nil {
				return fmt.Errorf("list: %w", err)
			}
			f.Close()
		}
	} else if fs.NArg() > 0 {
		return usagef("--resume takes no LIST: the run's own list is used")
	}
	if err := validateOptions(&o); err != nil {
		return err
	}
	if err := o.Probe.validate(); err != nil {
		return err
	}
	st, err := store.OpenSQLite(ctx, *dbPath)
	if err != nil {
		return err
	}
	defer st.Close()

	var run store.Run
	if *resume {
		if run, err = resumableRun(ctx, st, *runID); err != nil {
			return err
		}
		if o, err = mergeOptions(run.Options, o, set); err != nil {
			return err
		}
		if err := validateOptions(&o); err != nil {
			return err
		}
		if err := o.Probe.validate(); err != nil {
			return err
		}
	}
	cfg, client, err := buildCrawl(o, log)
	if err != nil {
		return err
	}
	defer client.Close()
	opts, _ := json.Marshal(o)

	if !*resume {
		run = store.Run{Started: time.Now(), ListName: o.List, Options: string(opts), Vantage: *vantage, State: store.RunLoading}
		if run.ID, err = st.CreateRun(ctx, run); err != nil {
			return err
		}
		log.Info("run created", "run", run.ID, "list", o.List, "db", *dbPath)
	} else {
		run.Options = string(opts)
		log.Info("resuming run", "run", run.ID, "list", run.ListName, "state", run.State)
	}
	switch {
	case !run.Loaded && *resume && o.List == "-":
		// Standard input cannot be read a second time: go on with what was loaded.
		c, err := st.Counts(ctx, run.ID)
		if err != nil {
			return err
		}
		log.Warn("the list came from standard input and its loading was interrupted: resuming with the domains loaded so far",
			"run", run.ID, "domains", c.Total)
		run.Loaded = true
	case !run.Loaded:
		if err := loadList(ctx, st, &run, o, log); err != nil {
			return err
		}
	}
	run.State = store.RunCrawling
	if err := st.UpdateRun(ctx, run); err != nil {
		return err
	}

	c := crawl.New(cfg, client, st)
	if err := c.CheckResolvers(ctx); err != nil {
		return finishRun(st, &run, store.RunFailed, err)
	}
	var p crawl.Progress
	var bar *progress.Bar
	if !lf.quiet && isTerminal(stderr) {
		bar = progress.Start(stderr, "crawl", 250*time.Millisecond, func() progress.Counts {
			return progress.Counts{Done: p.Done.Load(), Total: p.Total.Load(), Errors: p.Errors.Load()}
		})
	}
	start := time.Now()
	err = c.Run(ctx, run.ID, &p)
	if bar != nil {
		bar.Stop()
	}
	elapsed := time.Since(start)
	if errors.Is(err, context.Canceled) {
		err = finishRun(st, &run, store.RunInterrupted, nil)
		log.Warn("crawl interrupted; continue with: v6matrix crawl --resume", "run", run.ID, "done", p.Done.Load(), "pending", p.Total.Load()-p.Done.Load())
		if err != nil {
			return err
		}
		return errors.New("interrupted")
	}
	if err != nil {
		return finishRun(st, &run, store.RunInterrupted, err)
	}
	rate := float64(p.Done.Load()) / max(elapsed.Seconds(), 1e-9)
	log.Info("DNS stage done", "run", run.ID, "domains", p.Done.Load(), "queries", client.Queries(),
		"elapsed", elapsed.Round(time.Millisecond), "domains_per_s", fmt.Sprintf("%.0f", rate))
	if err := probeStage(ctx, st, &run, o, cfg, log, lf.quiet, stderr); err != nil {
		if errors.Is(err, context.Canceled) {
			finishRun(st, &run, store.RunInterrupted, nil)
			log.Warn("probe stage interrupted; continue with: v6matrix crawl --resume", "run", run.ID)
			return errors.New("interrupted")
		}
		return finishRun(st, &run, store.RunInterrupted, err)
	}
	if err := finishRun(st, &run, store.RunDone, nil); err != nil {
		return err
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

// loadList streams the run's list into the store.
func loadList(ctx context.Context, st store.Store, run *store.Run, o crawlOptions, log *slog.Logger) error {
	in, name, err := openList(o.List)
	if err != nil {
		return finishRun(st, run, store.RunFailed, err)
	}
	defer in.Close()
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
		return errors.New("interrupted")
	}
	if err != nil {
		if errors.Is(err, crawl.ErrNoDomains) {
			err = fmt.Errorf("%s: %w (%d lines skipped, %d outside the selection)", name, err, stats.Skipped, stats.Filtered)
		}
		return finishRun(st, run, store.RunFailed, err)
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
	return f, filepath.Base(path), nil
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

// mergeOptions takes a run's stored options and overrides those set on the command line.
func mergeOptions(stored string, cli crawlOptions, set map[string]bool) (crawlOptions, error) {
	var o crawlOptions
	if err := json.Unmarshal([]byte(stored), &o); err != nil {
		return o, fmt.Errorf("run options are damaged: %w", err)
	}
	for name, apply := range map[string]func(){
		"resolver":    func() { o.Resolvers = cli.Resolvers },
		"timeout":     func() { o.Timeout = cli.Timeout },
		"retries":     func() { o.Retries = cli.Retries },
		"concurrency": func() { o.Concurrency = cli.Concurrency },
	} {
		if set[name] {
			apply()
		}
	}
	for _, name := range []string{"tld", "top", "exclude", "www-apex", "allow-ranges", "prefix-table"} {
		if set[name] {
			return o, usagef("--%s cannot change when resuming: the run keeps its settings", name)
		}
	}
	return o, nil
}

func validateOptions(o *crawlOptions) error {
	switch {
	case o.Concurrency < 1 || o.Concurrency > 10000:
		return usagef("--concurrency %d: want 1 to 10000", o.Concurrency)
	case o.Top < 0:
		return usagef("--top %d: want 0 (all) or more", o.Top)
	case o.Timeout <= 0:
		return usagef("--timeout %v: want a positive duration such as 2s", o.Timeout)
	case o.Retries < 0 || o.Retries > 10:
		return usagef("--retries %d: want 0 to 10", o.Retries)
	}
	for i, t := range o.TLDs {
		n, err := domains.Normalize("x." + t)
		if err != nil || slices.Contains(o.TLDs[:i], t) {
			return usagef("--tld %q: want top-level labels such as uk,net", t)
		}
		o.TLDs[i] = domains.TLD(n)
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
	client, err := resolve.NewClient(rc)
	if err != nil {
		return cfg, nil, err
	}
	if o.Exclude != "" {
		f, err := os.Open(o.Exclude)
		if err != nil {
			return cfg, nil, fmt.Errorf("--exclude: %w", err)
		}
		defer f.Close()
		if cfg.OptOut, err = domains.ParseOptOut(f, o.Exclude); err != nil {
			return cfg, nil, err
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
			return cfg, nil, err
		}
	}
	// The parents' delegations are asked of the parent zones' servers directly: the
	// probe gate decides which of their addresses may be sent a query.
	gate, err := polite.NewGate(allow, cfg.OptOut.Networks())
	if err != nil {
		return cfg, nil, err
	}
	cfg.ParentAllowed = func(a netip.Addr) bool { ok, _ := gate.Allowed(a); return ok }
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
