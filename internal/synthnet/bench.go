package synthnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Config says what a benchmark builds and runs.
type Config struct {
	Data Data
	// Prefix names the namespaces (default "sn<pid>-", so that it never meets another lab).
	Prefix string
	// Dir holds the zones, the list, the databases and the logs.
	Dir string
	// Self is the v6matrix binary run in the vantage (default: this program).
	Self string
	// CrawlArgs are passed to `v6matrix crawl` after the bench's own flags.
	CrawlArgs []string
	// Crawl runs v6matrix crawl; Reference the reference crawler; DNSOnly v6matrix crawl
	// with --probes none.
	Crawl, Reference, DNSOnly bool
	// Distributed is the number of worker processes of a distributed crawl (0: none):
	// crawl --distributed into a throw-away PostgreSQL cluster reached through its Unix
	// socket, then that many `v6matrix worker`s in the vantage until the run is done; its
	// export is compared with the single-process crawl's when both run.
	Distributed int
	// Shard is the distributed crawl's domains per DNS job (0: its default).
	Shard int
	// WorkerArgs are passed to every `v6matrix worker`.
	WorkerArgs []string
	// DistributedFirst runs the distributed crawl before the single-process one (to
	// alternate their order between invocations).
	DistributedFirst bool
	// RefConcurrency and RefWorkers are the reference crawler's domains and probes at once.
	RefConcurrency, RefWorkers int
	Logger                     *slog.Logger
}

// Run names.
const (
	NameCrawl     = "v6matrix crawl"
	NameReference = "reference"
	NameDNSOnly   = "v6matrix crawl --probes none"
)

// Report is the outcome of a benchmark: one RunStats per run, in the order run.
type Report struct {
	Data      Data
	Addresses int // unique addresses of the data
	Runs      []RunStats
	// CrawlDB is the database of the v6matrix crawl (in Dir).
	CrawlDB string
	// Dist are the distributed run's queue and store figures (nil: none ran).
	Dist *DistStats
}

// Run builds the synthetic Internet, runs what cfg asks in its vantage one after the
// other, and removes the namespaces again (also on error or cancellation).
func Run(ctx context.Context, cfg Config) (rep Report, err error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "sn" + strconv.Itoa(os.Getpid()%10_000_000) + "-"
	}
	if cfg.Self == "" {
		if cfg.Self, err = os.Executable(); err != nil {
			return rep, err
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RefConcurrency < 1 || cfg.RefWorkers < 1 {
		return rep, fmt.Errorf("synthnet: reference concurrency %d and workers %d must be at least 1", cfg.RefConcurrency, cfg.RefWorkers)
	}
	rep.Data = cfg.Data
	rep.Addresses = cfg.Data.CountAddrs()
	list := filepath.Join(cfg.Dir, "list.csv")
	if err := os.WriteFile(list, cfg.Data.List(), 0o644); err != nil {
		return rep, err
	}
	w, err := Build(ctx, cfg.Prefix, cfg.Dir, cfg.Data, cfg.Logger)
	if err != nil {
		return rep, err
	}
	defer func() { err = errors.Join(err, w.Close()) }()
	crawl := func(db string, extra ...string) []string { return crawlArgv(cfg, db, list, extra...) }
	type run struct {
		on   bool
		name string
		argv []string
	}
	rep.CrawlDB = filepath.Join(cfg.Dir, "crawl.db")
	refArgv := []string{cfg.Self, "bench-net", "--reference-child", "--ref-concurrency",
		strconv.Itoa(cfg.RefConcurrency), "--ref-workers", strconv.Itoa(cfg.RefWorkers), list}
	runs := []run{
		{cfg.Crawl, NameCrawl, crawl(rep.CrawlDB)},
		{cfg.Distributed > 0, NameDistributed, nil},
		{cfg.Reference, NameReference, refArgv},
		{cfg.DNSOnly, NameDNSOnly, crawl(filepath.Join(cfg.Dir, "dns.db"), "--probes", "none")},
	}
	if cfg.DistributedFirst {
		runs[0], runs[1] = runs[1], runs[0]
	}
	for _, r := range runs {
		if !r.on {
			continue
		}
		if r.name == NameDistributed {
			cfg.Logger.Info("run starts", "run", r.name, "workers", cfg.Distributed)
			st, ds, err := w.runDistributed(ctx, cfg, list)
			rep.Runs, rep.Dist = append(rep.Runs, st), ds
			if err != nil {
				return rep, fmt.Errorf("%s: %w", r.name, err)
			}
			cfg.Logger.Info("run done", "run", r.name, "wall", st.Wall.Round(1e6), "cpu", st.CPU.Round(1e6),
				"postgres_cpu", ds.PGCPU.Round(1e6), "peak_rss_mib", st.PeakRSSKiB/1024)
			continue
		}
		cfg.Logger.Info("run starts", "run", r.name, "argv", strings.Join(r.argv[1:], " "))
		logPath := filepath.Join(cfg.Dir, strings.NewReplacer(" ", "_", "-", "").Replace(r.name)+".log")
		st, err := w.RunInVantage(ctx, r.name, r.argv, logPath)
		rep.Runs = append(rep.Runs, st)
		if err != nil {
			return rep, fmt.Errorf("%s: %w", r.name, err)
		}
		if st.ExitCode != 0 {
			return rep, fmt.Errorf("%s exited with status %d; the end of its log %s:\n%s", r.name, st.ExitCode, logPath, logTail(logPath, 10))
		}
		cfg.Logger.Info("run done", "run", r.name, "wall", st.Wall.Round(1e6), "cpu", st.CPU.Round(1e6),
			"peak_rss_mib", st.PeakRSSKiB/1024)
	}
	if cfg.Crawl && rep.Dist != nil {
		if err := rep.Dist.compare(ctx, cfg, rep.CrawlDB); err != nil {
			return rep, fmt.Errorf("compare the exports: %w", err)
		}
	}
	return rep, ctx.Err()
}

// crawlArgv is a v6matrix crawl of list into db, in the vantage.
func crawlArgv(cfg Config, db, list string, extra ...string) []string {
	argv := []string{cfg.Self, "crawl", "--db", db, "--resolver", ResolverAddr.String(),
		"--allow-ranges", allowArg(), "--vantage", "synthnet", "--log-progress", "10s"}
	return append(append(append(argv, extra...), cfg.CrawlArgs...), list)
}

func allowArg() string {
	parts := make([]string, len(AllowRanges))
	for i, p := range AllowRanges {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}

// logTail returns the last n lines of a log file.
func logTail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
