// Command v6matrix crawls ranked domain lists and measures how far IPv6 has spread:
// DNS records, addresses and, per address, reachability, paths and address types.
//
// main.go holds only the dispatch; each subcommand lives in its own file.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"sync/atomic"
	"syscall"

	"github.com/v6matrix/v6matrix/internal/lab"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// command is one subcommand: it parses its own flags from args and writes to the streams.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// commands is the literal list of subcommands (no init registration).
var commands = map[string]command{
	"version":   {"print the version", cmdVersion},
	"lab":       {"build and run the lab: a small dual-stack Internet in network namespaces", cmdLab},
	"crawl":     {"crawl a ranked domain list (or --resume an interrupted run)", cmdCrawl},
	"export":    {"write a run's records as CSV files and JSON Lines", cmdExport},
	"runs":      {"list the runs in a database with their counts (runs copy: copy one to another database)", cmdRuns},
	"demo":      {"bring the lab up, crawl it and export the records (needs root)", cmdDemo},
	"infopage":  {"serve the crawler's info page and take opt-out requests (serve --info-only)", cmdInfoPage},
	"serve":     {"serve the website and API of a database's runs", cmdServe},
	"bench-web": {"load the website with concurrent clients on a large synthetic store and print latency percentiles", cmdBenchWeb},
	"bench-net": {"build a synthetic Internet of 100k domains in network namespaces, crawl it with v6matrix and a reference crawler, print domains/s, CPU, RSS, idle seconds", cmdBenchNet},
	"bench":     {"crawl synthetic domains against a loopback server and print domains/s, queries/s, peak RSS", cmdBench},
	"worker":    {"work the jobs of distributed runs (crawl --distributed) from one vantage, until SIGINT or SIGTERM", cmdWorker},
	"geoip":     {"geoip update: fetch the GeoIP City and ASN databases (DB-IP Lite, or MaxMind with a licence key)", cmdGeoIP},
}

// caught is the signal that stopped the command (0: none), for its exit code.
var caught atomic.Int32

func main() {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		for s := range sigs {
			if sig, ok := s.(syscall.Signal); ok {
				caught.CompareAndSwap(0, int32(sig))
				// lab exec forwards the signal to its command (lab.SignalCause).
				cancel(lab.SignalCause{Signal: sig})
			}
		}
	}()
	os.Exit(dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// errInterrupted ends a command stopped by SIGINT or SIGTERM after its graceful stop:
// exit 128+signal (130 for Ctrl-C), as shells expect.
var errInterrupted = errors.New("interrupted")

// dispatch runs a subcommand and turns its error into an exit code:
// 0 success, 1 failure, 2 usage error.
func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout) // asked for: the usage is the output
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "v6matrix: unknown command %q\n\n", args[0])
		usage(stderr)
		return 2
	}
	err := c.run(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errInterrupted):
		fmt.Fprintf(stderr, "v6matrix %s: %v\n", args[0], err)
		if sig := caught.Load(); sig != 0 {
			return 128 + int(sig)
		}
		return 128 + int(syscall.SIGINT)
	case errors.As(err, new(usageError)):
		fmt.Fprintf(stderr, "v6matrix %s: %v\n", args[0], err)
		return 2
	default:
		fmt.Fprintf(stderr, "v6matrix %s: %v\n", args[0], err)
		return 1
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: v6matrix <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-8s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'v6matrix <command> --help' for the flags of one command.")
}

// usageError marks a bad flag or argument: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

// newFlagSet returns a FlagSet that reports errors instead of exiting and prints
// a usage line before the flag defaults on help, a command's output (stdout).
func newFlagSet(name, synopsis string, help io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("v6matrix "+name, flag.ContinueOnError)
	fs.SetOutput(help)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: v6matrix %s %s\n\nflags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

func cmdVersion(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("version", "", stdout)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "v6matrix %s\n", version)
	return nil
}
