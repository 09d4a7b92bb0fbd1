package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/v6matrix/v6matrix/internal/synthnet"
)

// benchNetOptions are the flags of `v6matrix bench-net`.
type benchNetOptions struct {
	data           synthnet.Data
	crawl, ref     bool
	dnsOnly        bool
	refConcurrency int
	refWorkers     int
	keep           bool
	prefix         string
	timeline       string
	distributed    int
	shard          int
	workerArgs     string
	distFirst      bool
	// refChild is the hidden child mode: run the reference crawler on this list.
	refChild bool
	refDNS   bool // the child resolves only
}

var hiddenBenchNetFlags = map[string]bool{"reference-child": true, "ref-dns-only": true}

func cmdBenchNet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench-net", "[flags] [-- crawl flags]", stdout)
	var o benchNetOptions
	var lf logFlags
	fs.IntVar(&o.data.Domains, "domains", 100_000, "number of synthetic domains (about 0.45 unique addresses each)")
	fs.Float64Var(&o.data.HotShare, "hot-share", 0, "fraction of the addresses in one /48 ("+synthnet.HotNet.String()+"), e.g. 0.02")
	fs.StringVar(&o.data.TLD, "tld", "test", "TLD of the synthetic domains")
	fs.BoolVar(&o.crawl, "crawl", true, "run v6matrix crawl")
	fs.BoolVar(&o.ref, "reference", true, "run the reference crawler")
	fs.BoolVar(&o.dnsOnly, "dns-only", false, "also run v6matrix crawl --probes none")
	fs.IntVar(&o.refConcurrency, "ref-concurrency", 200, "domains the reference crawler resolves at once")
	fs.IntVar(&o.refWorkers, "ref-workers", 1024, "probes the reference crawler runs at once")
	fs.BoolVar(&o.keep, "keep", false, "keep the directory with zones, databases and logs and print its path")
	fs.StringVar(&o.prefix, "prefix", "", "namespace name prefix (default sn<pid>-)")
	fs.StringVar(&o.timeline, "timeline", "", "write the packets sent per second of every run to this CSV `file`")
	fs.IntVar(&o.distributed, "distributed", 0, "also run a distributed crawl with this many `workers` on a throw-away PostgreSQL cluster (needs PostgreSQL) and compare it with v6matrix crawl")
	fs.IntVar(&o.shard, "shard", 0, "with --distributed: domains per DNS job (0: crawl's default)")
	fs.StringVar(&o.workerArgs, "worker-args", "", "with --distributed: flags of every v6matrix worker, space separated, e.g. \"--probe-jobs 16\"")
	fs.BoolVar(&o.distFirst, "distributed-first", false, "with --distributed: run the distributed crawl before v6matrix crawl")
	fs.BoolVar(&o.refChild, "reference-child", false, "(internal) run the reference crawler on the list argument")
	fs.BoolVar(&o.refDNS, "ref-dns-only", false, "(internal) the reference crawler resolves only")
	lf.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: v6matrix bench-net [flags] [-- crawl flags]\n\n"+
			"Builds a synthetic Internet in network namespaces (needs root and nsd), runs v6matrix crawl\n"+
			"and a plain reference crawler in its vantage, and prints wall time, domains/s, CPU, peak\n"+
			"RSS and the seconds with nothing sent. --distributed N also runs crawl --distributed and N\n"+
			"workers on a throw-away PostgreSQL cluster, prints its queue and store figures and\n"+
			"compares its export with v6matrix crawl's. Flags after -- go to v6matrix crawl, e.g.\n"+
			"-- --rate inf --addr-gap 0 --net-gap 0 --port-window 0 --workers 1024\n\nflags:\n")
		printFlags(fs, hiddenBenchNetFlags)
	}
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case o.data.Domains < 1 || o.data.Domains > 10_000_000:
		return usagef("--domains %d: want 1 to 10000000", o.data.Domains)
	case o.data.HotShare < 0 || o.data.HotShare > 0.2:
		return usagef("--hot-share %g: want 0 to 0.2", o.data.HotShare)
	case o.distributed < 0 || o.distributed > 64 || o.shard < 0:
		return usagef("--distributed %d, --shard %d: want 0 to 64 workers and a shard of 0 or more", o.distributed, o.shard)
	case o.refConcurrency < 1 || o.refWorkers < 1:
		return usagef("--ref-concurrency %d, --ref-workers %d: want at least 1", o.refConcurrency, o.refWorkers)
	}
	if o.refChild {
		return runReferenceChild(ctx, o, fs.Args(), stdout)
	}
	if fs.NArg() > 0 && !strings.HasPrefix(fs.Arg(0), "-") {
		return usagef("takes no arguments; crawl flags go after --, got %q", fs.Args())
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "v6matrix-bench-net-")
	if err != nil {
		return fmt.Errorf("bench-net: %w", err)
	}
	defer func() {
		if o.keep {
			fmt.Fprintf(stdout, "kept %s\n", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	cfg := synthnet.Config{Data: o.data, Prefix: o.prefix, Dir: dir, CrawlArgs: fs.Args(),
		Crawl: o.crawl, Reference: o.ref, DNSOnly: o.dnsOnly,
		Distributed: o.distributed, Shard: o.shard, WorkerArgs: strings.Fields(o.workerArgs), DistributedFirst: o.distFirst,
		RefConcurrency: o.refConcurrency, RefWorkers: o.refWorkers, Logger: log}
	rep, err := synthnet.Run(ctx, cfg)
	printBenchNet(stdout, rep)
	if err == nil && rep.Dist != nil && len(rep.Dist.ExportDiffs) > 0 {
		err = errors.New("bench-net: the distributed run's export differs from the single-process crawl's")
	}
	if o.timeline != "" {
		if terr := writeTimeline(o.timeline, rep); terr != nil && err == nil {
			err = terr
		}
	}
	return err
}

// runReferenceChild is the reference crawler, run in the vantage: it prints its counts
// as JSON.
func runReferenceChild(ctx context.Context, o benchNetOptions, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return usagef("--reference-child takes one list file, got %q", args)
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := synthnet.RunReference(ctx, synthnet.RefConfig{Resolver: synthnet.ResolverAddr,
		Concurrency: o.refConcurrency, Workers: o.refWorkers, Probes: !o.refDNS}, f)
	if err != nil {
		return err
	}
	return json.NewEncoder(stdout).Encode(rep)
}

// printBenchNet prints one line per run and the ratio of v6matrix to the reference.
func printBenchNet(w io.Writer, rep synthnet.Report) {
	fmt.Fprintf(w, "synthetic Internet: %d domains, %d unique addresses (hot /48 share %g)\n",
		rep.Data.Domains, rep.Addresses, rep.Data.HotShare)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\twall\tdomains/s\tCPU\tCPU/domain\tpeak RSS\tpackets\tidle s\tlongest idle\tmachine busy\tload\tLB/wall\t")
	rate := map[string]float64{}
	for _, r := range rep.Runs {
		var sent uint64
		for _, n := range r.Sent {
			sent += n
		}
		idle, longest, at := r.IdleSeconds()
		rate[r.Name] = float64(rep.Data.Domains) / r.Wall.Seconds()
		eff := "-"
		if r.LowerBound > 0 {
			eff = fmt.Sprintf("%.2f", r.LowerBound.Seconds()/r.Wall.Seconds())
		}
		fmt.Fprintf(tw, "%s\t%.1fs\t%.0f\t%.1fs\t%.0fµs\t%d MiB\t%d\t%d\t%ds at %ds\t%.0f%%\t%s\t%s\t\n",
			r.Name, r.Wall.Seconds(), rate[r.Name], r.CPU.Seconds(),
			float64(r.CPU.Microseconds())/float64(rep.Data.Domains), r.PeakRSSKiB/1024, sent,
			idle, longest, at, 100*r.MachineBusy, r.LoadAvg, eff)
	}
	tw.Flush()
	for _, r := range rep.Runs {
		if r.ExitCode != 0 {
			fmt.Fprintf(w, "%s exited with status %d: its figures are those of an unfinished run\n", r.Name, r.ExitCode)
		}
	}
	for _, r := range rep.Runs {
		if r.Name == synthnet.NameReference && len(r.Stdout) > 0 {
			fmt.Fprintf(w, "reference counts: %s", r.Stdout)
		}
	}
	if c, ref := rate[synthnet.NameCrawl], rate[synthnet.NameReference]; c > 0 && ref > 0 {
		fmt.Fprintf(w, "v6matrix / reference: %.2f× domains/s\n", c/ref)
	}
	if rep.Dist != nil {
		printDist(w, rep, rate[synthnet.NameDistributed], rate[synthnet.NameCrawl])
	}
}

// writeTimeline writes run,second,packets rows.
func writeTimeline(path string, rep synthnet.Report) error {
	var b strings.Builder
	b.WriteString("run,second,packets\n")
	for _, r := range rep.Runs {
		for i, n := range r.Sent {
			fmt.Fprintf(&b, "%s,%d,%d\n", r.Name, i, n)
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
