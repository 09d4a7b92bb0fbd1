// Package measure is a run's probe stage: every unique address of the run is measured
// once, however many domains use it (reverse DNS, GeoIP, ping, TCP 25/80/443, TLS on
// 443 for www hosts, STARTTLS on 25 for mx hosts, SOA over port 53 for ns hosts, NTP
// for ntp hosts, and the path), with the packets scheduled by the polite scheduler and
// nothing sent to special-purpose or opted-out addresses.
package measure

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/v6matrix/v6matrix/internal/batch"
	"github.com/v6matrix/v6matrix/internal/geoip"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/probe/dns53"
	"github.com/v6matrix/v6matrix/internal/probe/httpprobe"
	"github.com/v6matrix/v6matrix/internal/probe/ntpprobe"
	"github.com/v6matrix/v6matrix/internal/probe/path"
	"github.com/v6matrix/v6matrix/internal/probe/ping"
	"github.com/v6matrix/v6matrix/internal/probe/tcpport"
	"github.com/v6matrix/v6matrix/internal/probe/tlsprobe"
	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// Config sets up the probe stage.
type Config struct {
	// Kinds enabled (result.Kind*); the default is all of them.
	Kinds  map[string]bool
	Polite polite.Config
	// NSCheck paces the SOA queries of the name server checks (one per domain and name
	// server address): DNS traffic, spaced per address as docs/POLITENESS.md says.
	NSCheck polite.Config
	// Window is how many addresses are queued in the scheduler at once (DefaultWindow).
	Window int
	// Gate decides which addresses may be sent packets (allow ranges, opt-outs).
	Gate *polite.Gate
	// DNS sends the reverse (PTR) queries: the crawl's client, so that they take its
	// resolvers in turn and are counted with its queries. When nil, the stage opens a
	// client of Resolver (resolve.DefaultConfig) for the run.
	DNS        *resolve.Client
	Resolver   netip.AddrPort
	Ping       ping.Config
	TCPTimeout time.Duration
	TLSTimeout time.Duration
	DNSTimeout time.Duration
	NTPTimeout time.Duration
	// HTTPTimeout bounds the HTTP request to www hosts.
	HTTPTimeout time.Duration
	// EHLOName is the crawler's host name in SMTP EHLO; UserAgent is sent with every
	// HTTP request (probe.UserAgent).
	EHLOName  string
	UserAgent string
	// Roots verify certificates (nil: the system roots).
	Roots *x509.CertPool
	Path  path.Config
	// GeoIP may be nil (no GeoIP columns).
	GeoIP  *geoip.DB
	Logger *slog.Logger
	// Probes replaces the probe of a kind (result.Kind*) by another function: tests
	// run the stage with fake probes. The scheduling and every limit stay as they are.
	Probes map[string]ProbeFunc
}

// DefaultConfig returns the defaults; Gate and DNS (or Resolver) must be set.
func DefaultConfig() Config {
	kinds := map[string]bool{}
	for _, k := range result.Kinds {
		kinds[k] = true
	}
	return Config{Kinds: kinds, Polite: polite.DefaultConfig(), NSCheck: DefaultNSCheck(), Window: DefaultWindow, TCPTimeout: tcpport.DefaultTimeout,
		TLSTimeout: tlsprobe.DefaultTimeout, HTTPTimeout: httpprobe.DefaultTimeout, DNSTimeout: dns53.DefaultTimeout, NTPTimeout: ntpprobe.DefaultTimeout,
		Path: path.DefaultConfig()}
}

// Progress counts addresses and probes.
type Progress struct {
	Addresses atomic.Int64 // unique addresses of the run
	Skipped   atomic.Int64 // not probed (special-purpose, opted out)
	Total     atomic.Int64 // probes to run
	Done      atomic.Int64 // probes finished
	Failed    atomic.Int64 // probes that could not run (local errors)
}

// flushEvery bounds how long a finished measurement waits before it is saved.
const flushEvery = 500 * time.Millisecond

// Run measures every address of the run that is not yet measured. It returns
// ctx.Err() when interrupted, after saving what finished.
func Run(ctx context.Context, cfg Config, st store.Store, run int64, p *Progress) error {
	switch {
	case cfg.Gate == nil:
		return errors.New("measure: no gate: the allowed and opted-out ranges must be set")
	case cfg.Kinds[result.KindHTTP80] && cfg.UserAgent == "":
		return errors.New("measure: the HTTP probe needs a User-Agent that names the crawler")
	case cfg.Kinds[result.KindSTARTTLS] && cfg.EHLOName == "":
		return errors.New("measure: the STARTTLS probe needs the crawler's EHLO name")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	targets, pairs, err := collectTargets(ctx, st, run)
	if err != nil {
		return err
	}
	done, err := st.Measured(ctx, run)
	if err != nil {
		return err
	}
	checked, err := st.NSChecked(ctx, run)
	if err != nil {
		return err
	}
	p.Addresses.Store(int64(len(targets)))

	sched, err := polite.New(cfg.Polite, nil)
	if err != nil {
		return err
	}
	nsSched, err := polite.New(cfg.NSCheck, nil)
	if err != nil {
		return err
	}
	cfg.Kinds = maps.Clone(cfg.Kinds) // newProbers may turn a kind off for this run
	pr, err := newProbers(cfg, log)
	if err != nil {
		return err
	}
	defer pr.close()

	// Plan every address: skipped ones are recorded now; the others get their local
	// measurements (PTR, GeoIP: nothing is sent to the address) and their probes.
	results := make(chan store.Measurement, 256)
	writeErr := make(chan error, 1)
	go func() { writeErr <- write(context.WithoutCancel(ctx), st, run, results) }()
	var plans []plan
	for _, t := range targets {
		skipped := done[t.ip][result.KindSkipped]
		if !skipped {
			if ok, reason := cfg.Gate.Allowed(t.ip); !ok {
				skipped = true
				results <- store.Measurement{IP: t.ip, Kind: result.KindSkipped, Value: reason}
			}
		}
		if skipped {
			// GeoIP sends no packet: every recorded address gets it, probed or not.
			p.Skipped.Add(1)
			if cfg.Kinds[result.KindGeo] && !done[t.ip][result.KindGeo] {
				p.Total.Add(1)
				plans = append(plans, plan{t: t, local: []string{result.KindGeo}})
			}
			continue
		}
		pl := plan{t: t}
		for _, kind := range t.kinds(cfg.Kinds) {
			if done[t.ip][kind] {
				continue
			}
			p.Total.Add(1)
			if kind == result.KindPTR || kind == result.KindGeo {
				pl.local = append(pl.local, kind)
			} else {
				pl.remote = append(pl.remote, kind)
			}
		}
		if len(pl.local)+len(pl.remote) > 0 {
			plans = append(plans, pl)
		}
	}
	// A seeded shuffle: the whole run's addresses in random order, not only those
	// that share the scheduler's window.
	rand.New(rand.NewPCG(uint64(cfg.Polite.Seed), 0x76366d)).Shuffle(len(plans), func(i, j int) { plans[i], plans[j] = plans[j], plans[i] })

	var ns []plan
	if cfg.Kinds[result.KindDNS53] {
		ns = nsPlans(pairs, checked, cfg.Gate, cfg.NSCheck.Seed)
		p.Total.Add(int64(len(ns)))
	}

	var wg sync.WaitGroup
	wg.Go(func() { runLocal(ctx, plans, pr, results, p, log) })
	f := &feeder{plans: plans, sched: sched, pr: pr, results: results, p: p, log: log}
	err = f.start(ctx, max(cfg.Window, 1))
	if err == nil {
		err = sched.Run(ctx)
	}
	// Then the name server checks, under their own limits: not beside the probes,
	// whose timings (ping RTT) they would disturb.
	nf := &feeder{plans: ns, sched: nsSched, pr: pr, results: results, p: p, log: log}
	if err == nil {
		err = nf.start(ctx, max(cfg.Window, 1))
	}
	if err == nil {
		err = nsSched.Run(ctx)
	}
	wg.Wait()
	if err == nil {
		err = nf.failed()
	}
	close(results)
	if werr := <-writeErr; werr != nil {
		return werr
	}
	if err == nil {
		err = f.failed()
	}
	return err
}

// write saves measurements in batches until results closes.
func write(ctx context.Context, st store.Store, run int64, results <-chan store.Measurement) error {
	return batch.Write(ctx, results, 200, flushEvery, func(ctx context.Context, ms []store.Measurement) error {
		return st.SaveMeasurements(ctx, run, ms)
	})
}
