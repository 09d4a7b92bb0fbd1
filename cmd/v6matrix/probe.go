package main

import (
	"crypto/x509"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/v6matrix/v6matrix/internal/crawl"
	"github.com/v6matrix/v6matrix/internal/geoip"
	"github.com/v6matrix/v6matrix/internal/measure"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/probe"
	"github.com/v6matrix/v6matrix/internal/probe/path"
	"github.com/v6matrix/v6matrix/internal/result"
)

// probeOptions are the settings of the probe stage, stored with the run.
type probeOptions struct {
	Kinds      []string      `json:"kinds"`
	Polite     polite.Config `json:"polite"`
	PingCount  int           `json:"ping_count"`
	TCPTimeout time.Duration `json:"tcp_timeout"`
	PathPort   int           `json:"path_port"`
	PathHops   int           `json:"path_max_hops"`
	PathGap    int           `json:"path_gap_limit"`
	PathProbes int           `json:"path_probes_per_hop"`
	PathWait   time.Duration `json:"path_wait"`
	GeoIPCity  string        `json:"geoip_city,omitempty"`
	GeoIPASN   string        `json:"geoip_asn,omitempty"`
	EHLOName   string        `json:"ehlo_name"`
	TLSRoots   string        `json:"tls_roots,omitempty"`
	InfoURL    string        `json:"info_url"`
	UserAgent  string        `json:"user_agent,omitempty"`
	// NSCheckRate and NSCheckWorkers pace the name server checks (measure.DefaultNSCheck).
	NSCheckRate    float64 `json:"ns_check_rate,omitempty"`
	NSCheckWorkers int     `json:"ns_check_workers,omitempty"`

	kinds defaultList // --probes as parsed
}

func (po *probeOptions) register(fs *flag.FlagSet) {
	def := measure.DefaultConfig()
	po.Polite = def.Polite
	po.Polite.AddFlags(fs)
	po.kinds = defaultList{vals: probeKinds()}
	fs.Var(&po.kinds, "probes", "probes to run on every address, comma separated, or none for DNS only: "+
		strings.Join(probeKinds(), ","))
	fs.IntVar(&po.PingCount, "ping-count", 5, "ICMP echo requests per address")
	fs.Float64Var(&po.NSCheckRate, "ns-check-rate", def.NSCheck.Rate, "name server checks (SOA queries) per second over the run, inf for no cap")
	fs.IntVar(&po.NSCheckWorkers, "ns-check-workers", def.NSCheck.Workers, "name server checks in flight at once (one per address at most)")
	fs.DurationVar(&po.TCPTimeout, "tcp-timeout", def.TCPTimeout, "wait for a TCP handshake (over ~1.2s, so that ICMPv6 errors are seen)")
	fs.IntVar(&po.PathPort, "path-port", path.DefaultPort, "the one UDP destination `port` of every path probe")
	fs.IntVar(&po.PathHops, "path-max-hops", path.DefaultConfig().MaxHops, "longest path traced")
	fs.IntVar(&po.PathProbes, "path-probes-per-hop", path.DefaultConfig().ProbesPerHop, "path probes sent to a silent hop before it is marked *")
	fs.DurationVar(&po.PathWait, "path-wait", path.DefaultConfig().WaitPerProbe, "wait for the answer to one path probe")
	fs.IntVar(&po.PathGap, "path-gap-limit", path.DefaultConfig().GapLimit, "stop a path trace after this many silent hops in a row (0: go on to --path-max-hops, like tracepath)")
	fs.StringVar(&po.GeoIPCity, "geoip-city", "", "MaxMind/DB-IP City database (`.mmdb`; default: the one v6matrix geoip update installed, if any)")
	fs.StringVar(&po.GeoIPASN, "geoip-asn", "", "MaxMind/DB-IP ASN database (`.mmdb`; default: the one v6matrix geoip update installed, if any)")
	fs.StringVar(&po.EHLOName, "ehlo-name", hostname(), "the crawler's host name in SMTP EHLO (give it forward and reverse DNS)")
	fs.StringVar(&po.InfoURL, "info-url", probe.DefaultInfoURL, "page explaining the crawler and taking opt-out requests, named in the User-Agent")
	fs.StringVar(&po.UserAgent, "user-agent", "", "HTTP User-Agent (default \"v6matrix/<version> (+<info-url>)\")")
	fs.StringVar(&po.TLSRoots, "tls-roots", "", "PEM `file` of extra CA certificates trusted when verifying (e.g. a lab CA)")
}

// probeKinds lists every probe (the measurement kinds but "skipped").
func probeKinds() []string {
	return slices.DeleteFunc(slices.Clone(result.Kinds), func(k string) bool { return k == result.KindSkipped })
}

func (po *probeOptions) validate() error {
	if slices.Contains(po.Kinds, "none") {
		if len(po.Kinds) > 1 {
			return usagef("--probes %q: none cannot be combined with other probes; give none alone (DNS only) or a list of probes",
				strings.Join(po.Kinds, ","))
		}
		po.Kinds = nil
	}
	for _, k := range po.Kinds {
		if !slices.Contains(result.Kinds, k) || k == result.KindSkipped {
			return usagef("--probes %q: unknown probe %q; want some of %s, or none", strings.Join(po.Kinds, ","), k,
				strings.Join(probeKinds(), ","))
		}
	}
	switch {
	case po.PingCount < 1 || po.PingCount > 100:
		return usagef("--ping-count %d: want 1 to 100", po.PingCount)
	case po.PathPort < 1 || po.PathPort > 65535:
		return usagef("--path-port %d: want a UDP port, 1 to 65535", po.PathPort)
	case po.PathHops < 1 || po.PathHops > 255:
		return usagef("--path-max-hops %d: want 1 to 255", po.PathHops)
	case po.PathGap < 0 || po.PathGap > 255:
		return usagef("--path-gap-limit %d: want 0 (off) to 255", po.PathGap)
	case po.PathProbes < 1 || po.PathProbes > 10:
		return usagef("--path-probes-per-hop %d: want 1 to 10", po.PathProbes)
	case po.PathWait < 10*time.Millisecond || po.PathWait > time.Minute:
		return usagef("--path-wait %v: want 10ms to 1m", po.PathWait)
	case po.TCPTimeout <= 0:
		return usagef("--tcp-timeout %v: want a positive duration", po.TCPTimeout)
	}
	if err := po.Polite.Validate(); err != nil {
		return usagef("%v", err)
	}
	switch {
	case math.IsNaN(po.NSCheckRate) || po.NSCheckRate <= 0:
		return usagef("--ns-check-rate %v: want a positive number of queries per second, or inf", po.NSCheckRate)
	case po.NSCheckWorkers < 1 || po.NSCheckWorkers > 100000:
		return usagef("--ns-check-workers %d: want 1 to 100000", po.NSCheckWorkers)
	}
	return nil
}

// buildProbe turns the options into the probe stage's configuration, reading the files
// they name (nil when no probe is enabled).
func buildProbe(o crawlOptions, dnsCfg crawl.Config, log *slog.Logger) (*measure.Config, error) {
	po := o.Probe
	if len(po.Kinds) == 0 {
		return nil, nil
	}
	cfg := measure.DefaultConfig()
	cfg.Kinds = map[string]bool{}
	for _, k := range po.Kinds {
		cfg.Kinds[k] = true
	}
	cfg.Polite, cfg.Logger, cfg.EHLOName, cfg.TCPTimeout = po.Polite, log, po.EHLOName, po.TCPTimeout
	cfg.NSCheck.Rate, cfg.NSCheck.Workers = po.NSCheckRate, po.NSCheckWorkers
	cfg.Ping.Count = po.PingCount
	cfg.Path.Port, cfg.Path.MaxHops, cfg.Path.GapLimit = po.PathPort, po.PathHops, po.PathGap
	cfg.Path.ProbesPerHop, cfg.Path.WaitPerProbe = po.PathProbes, po.PathWait
	servers, err := resolverAddrs(o)
	if err != nil {
		return nil, err
	}
	cfg.Resolver = servers[0] // used only without the crawl's client (prepare sets it)
	allow, err := parsePrefixes("allow-ranges", o.AllowRanges)
	if err != nil {
		return nil, err
	}
	if cfg.Gate, err = polite.NewGate(allow, dnsCfg.OptOut.Networks()); err != nil {
		return nil, err
	}
	if po.TLSRoots != "" {
		pem, err := os.ReadFile(po.TLSRoots)
		if err != nil {
			return nil, fmt.Errorf("--tls-roots: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-roots %s: no PEM certificate in it", po.TLSRoots)
		}
		cfg.Roots = pool
	}
	id := probe.NewIdentity(version, po.InfoURL, po.EHLOName)
	if po.UserAgent != "" {
		id.HTTPUserAgent = po.UserAgent
	}
	if err := id.Validate(); err != nil {
		return nil, usagef("%v (--ehlo-name, --user-agent)", err)
	}
	cfg.UserAgent = id.HTTPUserAgent
	if po.GeoIPCity == "" && po.GeoIPASN == "" {
		// What `v6matrix geoip update` installed, if anything.
		if po.GeoIPCity, po.GeoIPASN = geoip.DefaultPaths(geoip.DefaultDir()); po.GeoIPCity != "" || po.GeoIPASN != "" {
			log.Info("GeoIP databases from geoip update", "city", po.GeoIPCity, "asn", po.GeoIPASN)
		}
	}
	if po.GeoIPCity != "" || po.GeoIPASN != "" {
		cfg.GeoIP = geoip.OpenOrWarn(log, po.GeoIPCity, po.GeoIPASN)
	} else {
		delete(cfg.Kinds, result.KindGeo)
	}
	return &cfg, nil
}
