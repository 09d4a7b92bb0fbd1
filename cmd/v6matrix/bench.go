package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/v6matrix/v6matrix/internal/crawl"
	"github.com/v6matrix/v6matrix/internal/dnsblast"
	"github.com/v6matrix/v6matrix/internal/progress"
	"github.com/v6matrix/v6matrix/internal/run"
	"github.com/v6matrix/v6matrix/internal/store"
)

// benchOptions are the flags of `v6matrix bench`.
type benchOptions struct {
	domains     int
	server      string // synthetic or nsd
	concurrency int
	keepDB      bool
	tld         string
	cpuProfile  string
	memProfile  string
	reference   bool   // also run internal/dnsblast against the same server
	serverAt    string // a server already serving the synthetic data (host:port)
	// serve is the hidden child mode: serve the synthetic data on this address.
	serve string
}

// hiddenBenchFlags are left out of bench --help: they are for the bench's own child.
var hiddenBenchFlags = map[string]bool{"serve-synthetic": true}

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", "[flags]", stdout)
	var o benchOptions
	var lf logFlags
	fs.IntVar(&o.domains, "domains", 100_000, "number of synthetic domains (d1.<tld> ... dN.<tld>)")
	fs.StringVar(&o.server, "server", "synthetic", "authoritative server to crawl: synthetic (ours, in a child process) or nsd (/usr/sbin/nsd)")
	fs.IntVar(&o.concurrency, "concurrency", crawl.DefaultConfig().Concurrency, "domains measured at once")
	fs.BoolVar(&o.keepDB, "keep-db", false, "keep the temporary directory with the database and print its path")
	fs.StringVar(&o.tld, "tld", "test", "TLD of the synthetic domains")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the crawl to `file`")
	fs.StringVar(&o.memProfile, "memprofile", "", "write an allocation profile (heap and allocs) to `file` at the end")
	fs.BoolVar(&o.reference, "reference", false, "also run the massdns-like reference (internal/dnsblast) against the same server, after the crawl, and print the ratio")
	fs.StringVar(&o.serverAt, "server-at", "", "crawl a server already running with the same synthetic data at `addr:port` (e.g. an NSD kept between runs) instead of starting one")
	fs.StringVar(&o.serve, "serve-synthetic", "", "(internal) serve the synthetic data on `addr` and print it")
	lf.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: v6matrix bench [flags]\n\n"+
			"Crawls N synthetic domains at the DNS level through the crawl pipeline (temporary SQLite\n"+
			"database, batch writes) against a server on loopback, and prints domains/s, queries/s,\n"+
			"peak RSS of the crawler, total time and database size.\n\nflags:\n")
		printFlags(fs, hiddenBenchFlags)
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("bench takes no arguments, got %q", fs.Args())
	}
	switch {
	case o.domains < 1 || o.domains > 100_000_000:
		return usagef("--domains %d: want 1 to 100000000", o.domains)
	case o.server != "synthetic" && o.server != "nsd":
		return usagef("--server %q: want synthetic or nsd", o.server)
	case o.concurrency < 1 || o.concurrency > 10000:
		return usagef("--concurrency %d: want 1 to 10000", o.concurrency)
	}
	if o.serve != "" {
		return serveSynthetic(ctx, o, stdout)
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	return runBench(ctx, o, log, lf.quiet, stdout, stderr)
}

// printFlags prints the flag defaults except the hidden ones.
func printFlags(fs *flag.FlagSet, hidden map[string]bool) {
	shown := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	shown.SetOutput(fs.Output())
	fs.VisitAll(func(f *flag.Flag) {
		if !hidden[f.Name] {
			shown.Var(f.Value, f.Name, f.Usage)
		}
	})
	shown.PrintDefaults()
}

// benchReport is what a bench prints.
type benchReport struct {
	Domains, Done    int64
	Queries          int64
	HostLookups      int64
	Load, Crawl      time.Duration
	CPU              time.Duration // user + system time of the crawler process
	PeakRSSKiB       int64         // VmHWM of the crawler process
	ServerPeakRSSKiB int64         // VmHWM of the server process (0 when unknown)
	DBBytes          int64         // database, WAL and shared-memory files
	Statuses         string
	Reference        *dnsblast.Report // --reference
	ReferenceCPU     time.Duration
}

func runBench(ctx context.Context, o benchOptions, log *slog.Logger, quiet bool, stdout, stderr io.Writer) (err error) {
	dir, err := os.MkdirTemp("", "v6matrix-bench-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer func() {
		if o.keepDB {
			fmt.Fprintf(stdout, "kept %s\n", dir)
			return
		}
		os.RemoveAll(dir)
	}()

	log.Info("starting server", "server", o.server, "domains", o.domains)
	t0 := time.Now()
	srv := &benchServer{}
	if o.serverAt != "" {
		if srv.addr, err = netip.ParseAddrPort(o.serverAt); err != nil {
			return usagef("--server-at %q: want address:port", o.serverAt)
		}
	} else if srv, err = startBenchServer(ctx, o, dir); err != nil {
		return err
	}
	defer srv.stop()
	log.Info("server ready", "addr", srv.addr, "after", time.Since(t0).Round(time.Millisecond))

	listPath := filepath.Join(dir, "list.txt")
	if err := writeSyntheticList(listPath, o.tld, o.domains); err != nil {
		return err
	}
	// The same settings and code path as `v6matrix crawl --probes none`.
	co := defaultOptions()
	co.List, co.Resolvers, co.Concurrency, co.Probe.Kinds = listPath, []string{srv.addr.String()}, o.concurrency, nil
	if err := validateOptions(&co); err != nil {
		return err
	}
	plan, err := prepare(ctx, co, log)
	if err != nil {
		return err
	}
	defer plan.Close()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "bench.db"))
	if err != nil {
		return err
	}
	defer st.Close()

	var rep benchReport
	cfg := plan.runConfig(co, log)
	cfg.SkipSummary = true
	opts, err := marshalOptions(co)
	if err != nil {
		return err
	}
	var cpu0 time.Duration
	var profErr error
	stopProfile := func() {}
	cfg.Watch = func(stage store.RunState, p *run.Progress) func() {
		if stage != store.RunCrawling {
			return func() {}
		}
		if o.cpuProfile != "" {
			stopProfile, profErr = startCPUProfile(o.cpuProfile)
		}
		var bar *progress.Bar
		if !quiet && isTerminal(stderr) {
			bar = progress.Start(stderr, "bench", 250*time.Millisecond, func() progress.Counts {
				return progress.Counts{Done: p.DNS.Done.Load(), Total: p.DNS.Total.Load(), Errors: p.DNS.Errors.Load()}
			})
		}
		cpu0 = cpuTime()
		return func() {
			rep.CPU = cpuTime() - cpu0
			if bar != nil {
				bar.Stop()
			}
			stopProfile()
		}
	}
	res, err := run.Start(ctx, st, cfg, run.Meta{Options: opts, Vantage: "bench"})
	if errors.Is(err, run.ErrInterrupted) {
		return errInterrupted
	}
	if err != nil {
		return fmt.Errorf("bench crawl: %w", err)
	}
	if profErr != nil {
		return profErr
	}
	rep.Load, rep.Crawl = res.Load, res.DNS
	if o.memProfile != "" {
		if err := writeMemProfile(o.memProfile); err != nil {
			return err
		}
	}

	counts := res.Counts
	rep.Domains, rep.Done = int64(o.domains), res.Progress.DNS.Done.Load()
	rep.Queries, rep.HostLookups = plan.client.Queries(), res.HostLookups
	rep.Statuses = statusSummary(counts.ByStatus)
	rep.PeakRSSKiB = peakRSS("/proc/self/status")
	rep.ServerPeakRSSKiB = srv.peakRSS()
	rep.DBBytes = dbSize(filepath.Join(dir, "bench.db"))
	if o.reference {
		names := make([]string, o.domains)
		for i := range names {
			names[i] = "d" + strconv.Itoa(i+1) + "." + o.tld
		}
		cpu0 := cpuTime()
		ref, err := dnsblast.Run(ctx, dnsblast.DefaultConfig(srv.addr), names)
		if err != nil {
			return fmt.Errorf("bench reference: %w", err)
		}
		rep.Reference, rep.ReferenceCPU = &ref, cpuTime()-cpu0
	}
	printBench(stdout, o, rep)
	if rep.Done != rep.Domains {
		return fmt.Errorf("bench: %d of %d domains done", rep.Done, rep.Domains)
	}
	return nil
}

func printBench(w io.Writer, o benchOptions, r benchReport) {
	secs := max(r.Crawl.Seconds(), 1e-9)
	fmt.Fprintf(w, "server        %s, %d domains under .%s, crawl concurrency %d, GOMAXPROCS %d\n",
		o.server, o.domains, o.tld, o.concurrency, runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "domains       %d done (%s)\n", r.Done, r.Statuses)
	fmt.Fprintf(w, "domains/s     %.0f\n", float64(r.Done)/secs)
	fmt.Fprintf(w, "queries/s     %.0f (%d queries, %.1f per domain, %d shared-host lookups)\n",
		float64(r.Queries)/secs, r.Queries, float64(r.Queries)/float64(max(r.Done, 1)), r.HostLookups)
	fmt.Fprintf(w, "crawl time    %s (crawler CPU %s, %.1f µs per domain)\n", r.Crawl.Round(time.Millisecond),
		r.CPU.Round(time.Millisecond), float64(r.CPU.Microseconds())/float64(max(r.Done, 1)))
	fmt.Fprintf(w, "load time     %s\n", r.Load.Round(time.Millisecond))
	fmt.Fprintf(w, "total time    %s\n", (r.Load + r.Crawl).Round(time.Millisecond))
	fmt.Fprintf(w, "peak RSS      %.1f MiB (crawler, VmHWM)\n", float64(r.PeakRSSKiB)/1024)
	if r.ServerPeakRSSKiB > 0 {
		fmt.Fprintf(w, "server RSS    %.1f MiB (peak, not counted above)\n", float64(r.ServerPeakRSSKiB)/1024)
	}
	fmt.Fprintf(w, "database      %.1f MiB\n", float64(r.DBBytes)/(1<<20))
	if ref := r.Reference; ref != nil {
		rsecs := max(ref.Elapsed.Seconds(), 1e-9)
		fmt.Fprintf(w, "reference     dnsblast (massdns-like, no store): %.0f domains/s, %.0f queries/s (%d queries, %.1f per domain, %d timeouts), CPU %.1f µs per domain\n",
			float64(ref.Domains)/rsecs, float64(ref.Queries)/rsecs, ref.Queries, float64(ref.Queries)/float64(max(ref.Domains, 1)),
			ref.Timeouts, float64(r.ReferenceCPU.Microseconds())/float64(max(ref.Domains, 1)))
		fmt.Fprintf(w, "ratio         %.2fx the reference's domains/s\n", (float64(r.Done)/secs)/(float64(ref.Domains)/rsecs))
	}
}

// writeSyntheticList writes d1.<tld> ... dN.<tld>, one per line (ranks in order).
func writeSyntheticList(path, tld string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench list: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<16)
	for i := 1; i <= n; i++ {
		w.WriteByte('d')
		w.WriteString(strconv.Itoa(i))
		w.WriteByte('.')
		w.WriteString(tld)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("bench list: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench list: %w", err)
	}
	return nil
}

// startCPUProfile starts writing a CPU profile to path; stop ends it.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return func() {}, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// writeMemProfile writes the allocations since the start to path.
func writeMemProfile(path string) error { return writeProfile("allocs", path, "--memprofile") }

// writeHeapProfile writes the heap in use (after a collection) to path.
func writeHeapProfile(path string) error { return writeProfile("heap", path, "--heapprofile") }

// writeProfile writes the runtime profile named name (after a collection) to path;
// its errors name the flag that asked for it.
func writeProfile(name, path, flag string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	return f.Close()
}

// peakRSS returns VmHWM in KiB from a /proc/<pid>/status file, or 0.
func peakRSS(statusFile string) int64 {
	data, err := os.ReadFile(statusFile)
	if err != nil {
		return 0
	}
	for line := range bytes.Lines(data) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(rest)), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}

// cpuTime returns the user and system time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func dbSize(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		} else if !errors.Is(err, os.ErrNotExist) {
			return -1
		}
	}
	return n
}
