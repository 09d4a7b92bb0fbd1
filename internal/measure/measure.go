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
	"net/netip"
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
	// Vantage is where the probes are sent from: the stage saves its measurements
	// under it and resumes what it lacks, so that one run (its DNS stage done once)
	// can be measured from several places. "" is the run's own vantage.
	Vantage string
	// Kinds enabled (result.Kind*); the default is all of them.
	Kinds  map[string]bool
	Polite polite.Config
	// NSCheck paces the SOA queries of the name server checks (one per domain and name
	// server address): DNS traffic, spaced per address as docs/POLITENESS.md says.
	NSCheck polite.Config
	// Window is how many addresses are queued in the scheduler at once (DefaultWindow).
	Window int
	// NSQueue is how many name server checks the stage holds waiting, at most (one
	// batch's more): AddNS waits for room beyond it, so that the DNS stage goes at the
	// checks' pace rather than queueing millions of them in memory (DefaultNSQueue; 0:
	// the default).
	NSQueue int
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
	// Part, when set, limits the stage to a part of the run (a distributed job's):
	// its targets instead of every target the run has pending, its name server pairs
	// instead of every pair not yet checked. Add still queues more.
	Part *Part
}

// Part is a share of a run's probe stage: targets (with the kinds they have measured,
// as store.Targets gives them) and name server pairs not yet checked.
type Part struct {
	Targets []store.Target
	NS      []store.NSTarget
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

// Progress counts addresses and probes, and gives the stage's politeness lower bound.
type Progress struct {
	Addresses atomic.Int64 // unique addresses of the run
	Skipped   atomic.Int64 // not probed (special-purpose, opted out)
	Total     atomic.Int64 // probes to run
	Done      atomic.Int64 // probes finished
	Failed    atomic.Int64 // probes that could not run (local errors)
	InFlight  atomic.Int64 // probes running now

	bound      atomic.Pointer[func() (time.Duration, string)]
	unfinished atomic.Pointer[func(context.Context) (*Unfinished, error)]
	start, end atomic.Int64        // the stage's start and the probes' end, Unix nanoseconds (0: not yet)
	kinds      [maxKinds]kindCount // by index in result.Kinds
}

// maxKinds bounds the kinds Progress counts one by one (result.Kinds has 13).
const maxKinds = 16

// kindCount counts the finished probes of one kind.
type kindCount struct{ measured, failed atomic.Int64 }

// kindIndex is each kind's index in result.Kinds.
var kindIndex = func() map[string]int {
	m := map[string]int{}
	for i, k := range result.Kinds {
		m[k] = i
	}
	return m
}()

// count records a finished probe of kind: measured, or could not run.
func (p *Progress) count(kind string, ok bool) {
	i, known := kindIndex[kind]
	if !known || i >= maxKinds {
		return
	}
	if ok {
		p.kinds[i].measured.Add(1)
	} else {
		p.kinds[i].failed.Add(1)
	}
}

// ByKind returns how many probes of kind finished with a stored result, and how many
// could not run.
func (p *Progress) ByKind(kind string) (measured, failed int64) {
	i, known := kindIndex[kind]
	if !known || i >= maxKinds {
		return 0, 0
	}
	return p.kinds[i].measured.Load(), p.kinds[i].failed.Load()
}

// Bound returns the politeness lower bound of the stage's wall time, from its start,
// for the addresses known so far (it grows as the DNS stage finds more), and what sets
// it, e.g. "2001:db8:ffdd::/48 has 876 addresses (7884 probes at --net-gap 200ms)".
// docs/POLITENESS.md explains it. Zero before the stage starts.
func (p *Progress) Bound() (time.Duration, string) {
	if f := p.bound.Load(); f != nil {
		return (*f)()
	}
	return 0, ""
}

func (p *Progress) setBound(f func() (time.Duration, string)) { p.bound.Store(&f) }

// Unfinished reads from the store what the run still has to measure (see Unfinished):
// a run's summary is built early for the domains that are final. An error before the
// stage starts, or for a part of a run.
func (p *Progress) Unfinished(ctx context.Context) (*Unfinished, error) {
	f := p.unfinished.Load()
	if f == nil {
		return nil, errors.New("measure: the probe stage has not started")
	}
	return (*f)(ctx)
}

func (p *Progress) setUnfinished(f func(context.Context) (*Unfinished, error)) {
	p.unfinished.Store(&f)
}

// Efficiency is the lower bound (Bound) over the probes' wall time from the stage's
// start, until now or until the probes ended: 1 when the probes ran as fast as the
// politeness limits allow. Zero before the stage starts.
func (p *Progress) Efficiency() float64 {
	start := p.start.Load()
	if start == 0 {
		return 0
	}
	end := p.end.Load()
	if end == 0 {
		end = time.Now().UnixNano()
	}
	lb, _ := p.Bound()
	if end <= start {
		return 0
	}
	return lb.Seconds() / time.Duration(end-start).Seconds()
}

// Left is the least time the probes still take: the lower bound (Bound) less the time
// since the stage started; zero before it starts and once the probes ended.
func (p *Progress) Left() time.Duration {
	start := p.start.Load()
	if start == 0 || p.end.Load() != 0 {
		return 0
	}
	lb, _ := p.Bound()
	return max(lb-time.Since(time.Unix(0, start)), 0)
}

// flushEvery bounds how long a finished measurement waits before it is saved.
const flushEvery = 500 * time.Millisecond

// writeBatch is how many measurements are saved at most per transaction: a lifted
// crawl ends some 8,000 a second, in random order, so that each row changes its own
// B-tree page; 2,000 a transaction cost SQLite 0.78x the time of 200
// (BenchmarkSaveMeasurements; docs/PERFORMANCE.md).
const writeBatch = 2000

// Run measures every address of the run that is not yet measured, after the DNS stage
// (Start, Close and Wait run it beside the DNS stage instead). It returns ctx.Err()
// when interrupted, after saving what finished, and the first error saving
// measurements once the probes in flight have finished: nothing more starts after it.
func Run(ctx context.Context, cfg Config, st store.Store, run int64, p *Progress) error {
	s, err := Start(ctx, cfg, st, run, p)
	if err != nil {
		return err
	}
	s.Close(ctx)
	return s.Wait(ctx)
}

// write saves measurements, under the vantage, in batches until results closes. At
// the first error it calls fail, which stops the stage, and drops what comes after.
func write(ctx context.Context, st store.Store, run int64, vantage string, results <-chan store.Measurement, fail func()) error {
	return batch.Write(ctx, results, writeBatch, flushEvery, func(ctx context.Context, ms []store.Measurement) error {
		for i := range ms {
			ms[i].Vantage = vantage
		}
		if err := st.SaveMeasurements(ctx, run, ms); err != nil {
			fail()
			return err
		}
		return nil
	})
}
