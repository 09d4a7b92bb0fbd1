package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/v6matrix/v6matrix/internal/crawl"
	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/resolve"
)

// crawlOptions are a run's settings; they are stored with the run so that --resume
// continues with the same ones (see resumeFlags for what a resume may change).
type crawlOptions struct {
	List        string        `json:"list"` // absolute path, or - for stdin
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

// register binds one flag per stored setting to o's fields, with the defaults.
func (o *crawlOptions) register(fs *flag.FlagSet) {
	def := resolve.DefaultConfig()
	fs.Var((*listFlag)(&o.Resolvers), "resolver", "recursive resolver `host:port`, repeatable, used in turn (default: /etc/resolv.conf)")
	fs.DurationVar(&o.Timeout, "timeout", def.Timeout, "wait of a DNS query's first try; each retry waits twice as long, earlier tries stay open")
	fs.IntVar(&o.Retries, "retries", def.Retries, "further tries after a timeout, each to the next resolver")
	fs.IntVar(&o.Concurrency, "concurrency", crawl.DefaultConfig().Concurrency, "domains measured at once")
	fs.Var((*listFlag)(&o.TLDs), "tld", "only these TLDs, comma separated (e.g. uk,net)")
	fs.IntVar(&o.Top, "top", 0, "only the N best-ranked domains of each TLD (0 = all)")
	fs.StringVar(&o.Exclude, "exclude", "", "opt-out `file`: domains and CIDR networks never measured (read again on every resume)")
	fs.BoolVar(&o.WWWApex, "www-apex", false, "look up the apex as a www host too")
	fs.Var((*listFlag)(&o.AllowRanges), "allow-ranges", "CIDR ranges treated as valid and probe-able although special-purpose (labs; only loopback unless the crawl runs inside a lab's network namespace), comma separated")
	fs.StringVar(&o.PrefixTable, "prefix-table", "", "replace the built-in IPv6 prefix table with this CSV `file`")
	o.Probe.register(fs)
}

// defaultOptions returns the options of a crawl given no flag.
func defaultOptions() crawlOptions {
	var o crawlOptions
	o.register(flag.NewFlagSet("defaults", flag.ContinueOnError))
	o.Probe.Kinds = o.Probe.kinds.vals
	return o
}

// resumeApplies are the stored settings a resume may change: they decide how fast and
// through which resolvers the crawl goes, not what one measurement means. Every other
// stored setting given on resume must equal the run's, or the resume is refused: a run
// mixing measurements made two ways would be wrong without a trace.
var resumeApplies = []string{"resolver", "timeout", "retries", "concurrency",
	"addr-gap", "net-gap", "net-bits-v4", "net-bits-v6", "rate", "port-window", "max-ports", "workers", "seed",
	"ns-check-rate", "ns-check-workers"}

// mergeOptions returns the run's stored options with the flags given on the command
// line (cli, set) applied or refused. Each applied change is logged.
func mergeOptions(runID int64, stored string, cli crawlOptions, cliFS *flag.FlagSet, set map[string]bool, log *slog.Logger) (crawlOptions, error) {
	var o crawlOptions
	fs := flag.NewFlagSet("stored", flag.ContinueOnError)
	o.register(fs)
	// Settings an older v6matrix did not store keep today's defaults.
	if err := unmarshalOptions(stored, &o); err != nil {
		return o, fmt.Errorf("run %d: its stored options are damaged: %w", runID, err)
	}
	o.Probe.kinds.vals = o.Probe.Kinds
	var names []string
	for n := range set {
		if fs.Lookup(n) != nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, name := range names {
		was, now := fs.Lookup(name).Value.String(), cliFS.Lookup(name).Value.String()
		if name == "probes" {
			was, now = kindsString(o.Probe.Kinds), kindsString(cli.Probe.Kinds)
		}
		if was == now {
			continue
		}
		if !slices.Contains(resumeApplies, name) {
			hint := "start a new crawl to use another"
			if name == "exclude" && o.Exclude != "" {
				hint = fmt.Sprintf("edit %s instead: the opt-out file is read again on every resume", o.Exclude)
			}
			return o, usagef("--%s %s: cannot change when resuming run %d, which was started with %q (results measured so far used it); %s",
				name, now, runID, was, hint)
		}
		if name == "resolver" {
			o.Resolvers = cli.Resolvers
		} else if err := fs.Set(name, now); err != nil {
			return o, usagef("--%s %s: %v", name, now, err)
		}
		log.Info("resume: setting changed", "run", runID, "flag", name, "was", was, "now", now)
	}
	return o, nil
}

// kindsString is the canonical form of a probe selection, for comparisons.
func kindsString(kinds []string) string {
	if len(kinds) == 0 {
		return "none"
	}
	k := slices.Clone(kinds)
	slices.Sort(k)
	return strings.Join(k, ",")
}

// marshalOptions encodes options for the store; an unlimited --rate (+Inf, which JSON
// cannot hold) is stored as -1.
func marshalOptions(o crawlOptions) (string, error) {
	if math.IsInf(o.Probe.Polite.Rate, 1) {
		o.Probe.Polite.Rate = -1
	}
	if math.IsInf(o.Probe.NSCheckRate, 1) {
		o.Probe.NSCheckRate = -1
	}
	b, err := json.Marshal(o)
	return string(b), err
}

func unmarshalOptions(s string, o *crawlOptions) error {
	if err := json.Unmarshal([]byte(s), o); err != nil {
		return err
	}
	if o.Probe.Polite.Rate == -1 {
		o.Probe.Polite.Rate = math.Inf(1)
	}
	if o.Probe.NSCheckRate == -1 {
		o.Probe.NSCheckRate = math.Inf(1)
	}
	return nil
}

// validateOptions checks the DNS settings; probeOptions.validate checks the rest.
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
	return o.Probe.validate()
}
