package main

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/v6matrix/v6matrix/internal/progress"
)

// listFlag is a repeatable flag that also splits comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// defaultList is a list flag with a default: the first use on the command line
// replaces the default, later uses add to it.
type defaultList struct {
	vals listFlag
	set  bool
}

func (d *defaultList) String() string { return d.vals.String() }

func (d *defaultList) Set(v string) error {
	if !d.set {
		d.vals, d.set = nil, true
	}
	return d.vals.Set(v)
}

// parseInterleaved parses flags that may come before or after the positional
// arguments (v6matrix crawl LIST --top 10), as users expect.
func parseInterleaved(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	var pos []string
	for {
		if err := parseFlags(fs, args, stderr); err != nil {
			return err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...) // after --, everything is positional
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	return fs.Parse(append([]string{"--"}, pos...))
}

// parsePrefixes parses --allow-ranges values.
func parsePrefixes(flagName string, vals []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range vals {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			return nil, usagef("--%s %q: want a CIDR network such as 192.0.2.0/24 or 2001:db8::/32", flagName, v)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// logFlags are the logging flags every long-running command takes.
type logFlags struct {
	format   string
	level    string
	quiet    bool
	progress time.Duration
}

func (l *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&l.format, "log-format", "text", "log format: text or json")
	fs.StringVar(&l.level, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&l.quiet, "quiet", false, "no progress bar and only warnings and errors in the log")
	fs.DurationVar(&l.progress, "log-progress", 15*time.Second, "without a terminal, log a progress line this often (0: never)")
}

// showProgress shows a stage's progress: a bar on a terminal, else a log line every
// --log-progress; nothing with --quiet. It returns the function that stops it.
func showProgress(stderr io.Writer, log *slog.Logger, lf logFlags, label string, read func() progress.Counts) (stop func()) {
	switch {
	case lf.quiet:
		return func() {}
	case isTerminal(stderr):
		b := progress.Start(stderr, label, 250*time.Millisecond, read)
		return b.Stop
	case lf.progress > 0:
		return progress.StartLog(log, label, lf.progress, read)
	}
	return func() {}
}

// parse parses a command's flags with parser, and returns the logger they ask for
// and the names of the flags given.
func (l *logFlags) parse(fs *flag.FlagSet, args []string, stderr io.Writer, parser func(*flag.FlagSet, []string, io.Writer) error) (*slog.Logger, map[string]bool, error) {
	if err := parser(fs, args, stderr); err != nil {
		return nil, nil, err
	}
	log, err := l.logger(stderr)
	if err != nil {
		return nil, nil, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return log, set, nil
}

// logger builds the slog logger the flags ask for, writing to w.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", l.level)
	}
	if l.quiet && level < slog.LevelWarn {
		level = slog.LevelWarn
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, usagef("--log-format %q: want text or json", l.format)
	}
}

// isTerminal reports whether w is a terminal (where a progress bar makes sense).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// parseFlags parses args: --help prints the usage on the flag set's output, stdout
// (exit 0); a bad flag becomes a usage error (exit 2) with one clear line instead of
// the whole usage.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	help := fs.Output()
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.SetOutput(help)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.Usage()
		return err
	case err != nil:
		return usagef("%v (see %s --help)", err, fs.Name())
	}
	return nil
}
