// Package crawl runs one crawl: it loads a ranked list into the store, then measures
// every pending domain (NS, SOA, MX, www, ntp and their addresses) with a bounded
// number of workers, writing results in batches so that an interrupted run resumes
// where it stopped and memory stays flat on any list length.
package crawl

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/batch"
	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// Config sets up a crawl.
type Config struct {
	Concurrency int             // domains measured at once
	WWWApex     bool            // look up the apex as a www host too
	OptOut      *domains.OptOut // domains never queried, networks never probed
	HostCache   int             // shared hosts kept in the cache
	BatchSize   int             // domains per store transaction
	FlushEvery  time.Duration   // longest wait before a partial batch is written
	// HostsStored says that the store may hold hosts of the run before this crawl
	// saves any (another process's shards): a host the cache misses is read from the
	// store before it is looked up. A resume (done domains) implies it.
	HostsStored bool
	// ParentAllowed says which parent zone server addresses may be asked for a domain's
	// delegation (the probe gate); nil asks no parent.
	ParentAllowed func(netip.Addr) bool
	// ParentPort is the parent servers' port (0: 53).
	ParentPort uint16
	// Classify gives an address its type; nil leaves addresses unclassified.
	Classify func(netip.Addr) result.Class
	// OnSaved, when set, is called after each committed batch with the batch's probe
	// targets (merged by Save: see store.Target's Added and Changed) and its (domain,
	// name server address) pairs, from the writer's goroutine: it must not block for
	// long. The probe stage uses it to start on addresses and name server checks while
	// the DNS stage goes on.
	OnSaved func(targets []store.Target, ns []store.NSTarget)
	// BeforeSave, when set, is called with each batch's (domain, name server address)
	// pairs before the batch is saved, from the writer's goroutine: the probe stage
	// marks them as coming from OnSaved, so that a resume reading the pairs stored
	// but not yet checked leaves them alone.
	BeforeSave func(ns []store.NSTarget)
	Logger     *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Concurrency: 200, HostCache: 100_000, BatchSize: 1000, FlushEvery: 500 * time.Millisecond}
}

// Progress is updated as the crawl goes; read it from another goroutine.
type Progress struct {
	Total  atomic.Int64 // domains to measure in this invocation
	Done   atomic.Int64 // domains measured and saved
	Errors atomic.Int64 // domains whose status is not ok (nxdomain, timeout, ...)
	// HostLookups is how many shared-host lookups the run-wide cache let through
	// (set when Run returns).
	HostLookups atomic.Int64
}

// Crawler measures the pending domains of a run.
type Crawler struct {
	cfg    Config
	client *resolve.Client
	hosts  *resolve.HostCache
	parent *resolve.Parents // nil: no delegation asked
	store  store.Store
	log    *slog.Logger
}

// New returns a Crawler that queries through client and writes to st.
func New(cfg Config, client *resolve.Client, st store.Store) *Crawler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Crawler{cfg: cfg, client: client, hosts: resolve.NewHostCache(client, cfg.HostCache), store: st, log: cfg.Logger}
	if cfg.ParentAllowed != nil {
		c.parent = &resolve.Parents{Client: client, Port: cfg.ParentPort, Allowed: cfg.ParentAllowed}
	}
	return c
}

// HostLookups returns how many shared-host lookups the cache let through.
func (c *Crawler) HostLookups() int64 { return c.hosts.Lookups() }

// CheckResolvers asks each resolver for the root NS set, so that a crawl through dead
// resolvers fails at once instead of recording every domain as a timeout.
func (c *Crawler) CheckResolvers(ctx context.Context) error {
	a, err := c.client.Query(ctx, ".", dns.TypeNS)
	if err != nil {
		return err
	}
	if a.Status == result.StatusTimeout {
		return errors.New("no resolver answered a query for the root NS set: check --resolver")
	}
	return nil
}

// Run measures every pending domain of the run. When ctx ends it stops taking
// domains, saves what is finished and returns ctx.Err(). The first error of its own (a
// batch that could not be saved, a domain that could not be measured, the pending
// domains that could not be read) stops it the same way, sending nothing more, and Run
// returns that error: the domains not saved stay pending for a resume.
func (c *Crawler) Run(ctx context.Context, run int64, p *Progress) error {
	counts, err := c.store.Counts(ctx, run)
	if err != nil {
		return err
	}
	p.Total.Store(int64(counts.Total - counts.Done))
	defer func() { p.HostLookups.Store(c.hosts.Lookups()) }()
	// A host saved by an earlier invocation, or evicted from the cache, is read back
	// rather than looked up again: a lookup that now failed would differ from the row
	// that done domains use.
	c.hosts.ReadStored(func(ctx context.Context, names []string) (map[string]result.Host, error) {
		return c.store.Hosts(ctx, run, names)
	}, counts.Done > 0 || c.cfg.HostsStored)

	// sctx is the stage's: it ends with ctx or at the first error (fail).
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var first atomic.Pointer[error]
	fail := func(err error) {
		if first.CompareAndSwap(nil, &err) {
			stop()
		}
	}

	jobs := make(chan result.Domain, 2*c.cfg.BatchSize)
	results := make(chan outcome, 2*c.cfg.BatchSize)
	go func() {
		defer close(jobs)
		if err := c.feed(sctx, run, jobs); err != nil && sctx.Err() == nil {
			fail(err)
		}
	}()

	var workers sync.WaitGroup
	for range c.cfg.Concurrency {
		workers.Go(func() {
			for d := range jobs {
				o, err := c.measureDomain(sctx, d)
				if err != nil {
					if sctx.Err() == nil { // not an error of stopping
						fail(err)
					}
					continue // stays pending; resume picks it up
				}
				o.addresses = c.addresses(o.rows)
				o.targets, o.ns = store.TargetsOf(o.domain, o.hosts)
				select {
				case results <- o:
				case <-sctx.Done():
				}
			}
		})
	}
	go func() {
		workers.Wait()
		close(results)
	}()

	// The writer saves what arrives after ctx ends: what was measured is kept. A save
	// error stops the stage (fail) even then.
	c.write(context.WithoutCancel(ctx), run, results, p, fail)
	if e := first.Load(); e != nil {
		return *e
	}
	return ctx.Err()
}

// feed pages through the pending domains in rank order.
func (c *Crawler) feed(ctx context.Context, run int64, jobs chan<- result.Domain) error {
	after := store.Cursor{Rank: -1}
	for {
		page, err := c.store.Pending(ctx, run, after, c.cfg.BatchSize)
		if err != nil {
			return err
		}
		for _, d := range page {
			select {
			case jobs <- d:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if len(page) < c.cfg.BatchSize {
			return nil
		}
		after = store.Cursor{Rank: page[len(page)-1].Rank, Name: page[len(page)-1].Name}
	}
}

// write saves outcomes in batches until results closes; the first error that saving
// returns goes to fail, which stops the stage, and the outcomes after it are dropped.
func (c *Crawler) write(ctx context.Context, run int64, results <-chan outcome, p *Progress, fail func(error)) {
	_ = batch.Write(ctx, results, c.cfg.BatchSize, c.cfg.FlushEvery, func(ctx context.Context, outs []outcome) error {
		var b store.Batch
		for _, o := range outs {
			b.Domains = append(b.Domains, o.domain)
			b.Hosts = append(b.Hosts, o.rows...)
			b.Addresses = append(b.Addresses, o.addresses...)
			b.Targets = append(b.Targets, o.targets...)
			b.NSTargets = append(b.NSTargets, o.ns...)
			if o.domain.Status != result.StatusOK {
				p.Errors.Add(1)
			}
		}
		if c.cfg.BeforeSave != nil {
			c.cfg.BeforeSave(b.NSTargets)
		}
		if err := c.store.Save(ctx, run, b); err != nil {
			fail(err)
			return err
		}
		c.hosts.Saved(hostNames(b.Hosts))
		p.Done.Add(int64(len(b.Domains)))
		if c.cfg.OnSaved != nil {
			c.cfg.OnSaved(b.Targets, b.NSTargets)
		}
		return nil
	})
}

// hostNames returns the names of hosts.
func hostNames(hosts []result.Host) []string {
	names := make([]string, len(hosts))
	for i, h := range hosts {
		names[i] = h.Name
	}
	return names
}

// addresses returns the address rows of the hosts a batch writes.
func (c *Crawler) addresses(hosts []result.Host) []result.Address {
	var out []result.Address
	for _, h := range hosts {
		for _, ips := range [][]netip.Addr{h.V4, h.V6} {
			for _, ip := range ips {
				a := result.Address{IP: ip}
				if c.cfg.Classify != nil {
					cl := c.cfg.Classify(ip)
					a.Class = &cl
				}
				out = append(out, a)
			}
		}
	}
	return out
}

// ErrNoDomains is returned by Load when the list held no valid domain.
var ErrNoDomains = errors.New("the list holds no valid domain")
