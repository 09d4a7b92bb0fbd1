// Package summary condenses a run into what the website shows without reading every
// domain: the per-domain IPv6 summary (ipv6domain.csv plus reachability and broken
// IPv6), aggregates per run, TLD, country and autonomous system, the located addresses,
// and the changes against the run before. Build runs when a run finishes (and on demand
// for older runs); the store keeps the results.
package summary

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/v6matrix/v6matrix/internal/geoip"
	"github.com/v6matrix/v6matrix/internal/probe/httpprobe"
	"github.com/v6matrix/v6matrix/internal/probe/path"
	"github.com/v6matrix/v6matrix/internal/probe/tcpport"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// Of returns the IPv6 summary of one domain. A role has IPv6 when one of its hosts has a
// valid (routable) IPv6 address, as in ipv6domain.csv; "unknown" when it has none but the
// AAAA lookup of one of its hosts failed (timeout, SERVFAIL...: Host.IPv6Known), so that
// a transient failure never reads as "no IPv6" (ipv6domain.csv's ipv6_unknown). Roles of a domain whose own lookups failed are NA.
func Of(d *store.Detail) result.DomainSummary {
	s := result.DomainSummary{Name: d.Name, Rank: d.Rank, TLD: d.TLD, Status: d.Status}
	if d.Status != result.StatusOK {
		return s
	}
	for i, role := range result.Roles {
		rs := result.RoleSummary{IPv6: result.No}
		probed := false
		for _, ref := range d.Hosts {
			if ref.Role != role {
				continue
			}
			h := d.HostsByName[ref.Name]
			if !h.IPv6Known() && rs.IPv6 == result.No {
				rs.IPv6 = result.Unknown
			}
			for _, ip := range h.V6 {
				a, ok := d.Addrs[ip]
				if !ok || a.Class == nil || !a.Class.Valid {
					continue
				}
				rs.IPv6 = result.Yes
				switch Reach(&a) {
				case result.Yes:
					rs.Reachable = result.Yes
				case result.No:
					probed = true
				}
				switch Broken(&a) {
				case result.BrokenBlackHole:
					s.Broken = result.BrokenBlackHole
				case result.BrokenUnreachable:
					if s.Broken == result.BrokenNone {
						s.Broken = result.BrokenUnreachable
					}
				}
			}
		}
		if rs.IPv6 == result.Yes && rs.Reachable != result.Yes {
			rs.Reachable = result.Unknown
			if probed {
				rs.Reachable = result.No
			}
		}
		s.Roles[i] = rs
	}
	return s
}

// Reach says whether an address answered: ping, or a TCP port that opened or refused
// (a reset is an answer too). Unknown when it was not probed.
func Reach(a *result.Address) result.Tri {
	probed := false
	if a.Ping != nil {
		probed = true
		if a.Ping.Received > 0 {
			return result.Yes
		}
	}
	for _, port := range []int{25, 80, 443} {
		if t := a.TCP(port); t != nil {
			probed = true
			if t.State == tcpport.StateOpen || t.State == tcpport.StateClosed {
				return result.Yes
			}
		}
	}
	if probed {
		return result.No
	}
	return result.Unknown
}

// Broken says how an address's IPv6 fails: a path MTU black hole (the path probe
// suspected one, or the signature of one: the TCP handshake's small packets pass, but the
// server's first large packets, a TLS certificate flight or an HTTP response, never
// arrive and the exchange times out), or no answer to any probe.
func Broken(a *result.Address) result.Broken {
	if !a.IP.Is6() || a.IP.Is4In6() {
		return result.BrokenNone
	}
	if a.Path != nil && a.Path.Reason == path.ReasonBlackHole {
		return result.BrokenBlackHole
	}
	open := func(t *tcpport.Result) bool { return t != nil && t.State == tcpport.StateOpen }
	if t := a.TLS443; t != nil && open(a.TCP443) && t.Reachable && t.Version == "none" && strings.Contains(t.HandshakeError, "timeout") {
		return result.BrokenBlackHole
	}
	if h := a.HTTP80; h != nil && open(a.TCP80) && h.Status == httpprobe.StatusTimeout {
		return result.BrokenBlackHole
	}
	if Reach(a) == result.No {
		return result.BrokenUnreachable
	}
	return result.BrokenNone
}

// batch is how many domain summaries are saved per transaction.
const batch = 1000

// Build summarises a run into the store, replacing an earlier summary of it, with each
// domain's document (store.SaveDocs), and records the changes against the latest
// earlier finished run. Memory grows with the run's unique addresses (about 150 bytes
// each), not with its domains.
func Build(ctx context.Context, st store.Store, run int64, log *slog.Logger) error {
	p, err := Begin(ctx, st, run, log)
	if err != nil {
		return err
	}
	if err := p.First(ctx, nil); err != nil {
		return err
	}
	return p.Finish(ctx)
}

// Partial is a summary built in two parts, so that most of it is built while a run's
// last probes go on: First summarises the domains whose measurements are final, Finish
// the others once the run is done, then the aggregates. The rows it writes are those
// Build writes (which is Begin, First of every domain, Finish).
type Partial struct {
	st    store.Store
	claim store.Claim // the run, and whether the summary is provisional
	log   *slog.Logger
	b     *builder
	start time.Time
	// deferred are the domains First left to Finish, in (rank, name) order.
	deferred []string
	first    time.Duration // First's duration
}

// Begin starts a run's final summary, clearing an earlier one: its crawl's own (begun
// beside the last probes, or once they are done) or a finished run's. From then on a
// provisional summary of the run (Provisional) stops at its next write.
func Begin(ctx context.Context, st store.Store, run int64, log *slog.Logger) (*Partial, error) {
	if err := st.SetSummaryFinal(ctx, run, true); err != nil {
		return nil, fmt.Errorf("summarise run %d: %w", run, err)
	}
	return begin(ctx, st, store.Claim{Run: run}, log)
}

func begin(ctx context.Context, st store.Store, c store.Claim, log *slog.Logger) (*Partial, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Partial{st: st, claim: c, log: log, b: newBuilder(), start: time.Now()}
	if err := st.ClearSummary(ctx, c); err != nil {
		return nil, fmt.Errorf("summarise run %d: %w", c.Run, err)
	}
	return p, nil
}

// Provisional summarises a run still being crawled, as Build does, so that its pages
// follow the crawl (serve: KeepCurrent). It fails with store.ErrSuperseded, having
// written nothing more, once the run's final summary has begun (Begin, in another
// process): it never clears or overwrites a part of that summary.
func Provisional(ctx context.Context, st store.Store, run int64, log *slog.Logger) error {
	p, err := begin(ctx, st, store.Claim{Run: run, Provisional: true}, log)
	if err != nil {
		return err
	}
	if err := p.First(ctx, nil); err != nil {
		return err
	}
	return p.Finish(ctx)
}

// First summarises every domain of the run but those that later reports as not final
// (later nil: every domain), which it keeps for Finish. The run's domains must all be
// saved (its DNS stage done).
func (p *Partial) First(ctx context.Context, later func(*store.Detail) bool) error {
	t0 := time.Now()
	err := p.save(ctx, func(ctx context.Context, fn func(store.Detail) error) error {
		return p.st.Details(ctx, p.claim.Run, "", func(d store.Detail) error {
			if later != nil && later(&d) {
				p.deferred = append(p.deferred, d.Name)
				return nil
			}
			return fn(d)
		})
	})
	p.first = time.Since(t0)
	if err != nil {
		return fmt.Errorf("summarise run %d: %w", p.claim.Run, err)
	}
	return nil
}

// Deferred returns how many domains First left to Finish.
func (p *Partial) Deferred() int { return len(p.deferred) }

// Finish summarises the domains First left, then the run's aggregates, and records the
// changes against the run before.
func (p *Partial) Finish(ctx context.Context) error {
	t0 := time.Now()
	err := p.save(ctx, func(ctx context.Context, fn func(store.Detail) error) error {
		return p.st.DetailsOf(ctx, p.claim.Run, "", p.deferred, fn)
	})
	if err == nil {
		err = p.st.SaveAggregates(ctx, p.claim, p.b.aggregates(), p.b.addresses())
	}
	if err != nil {
		return fmt.Errorf("summarise run %d: %w", p.claim.Run, err)
	}
	prev, err := previous(ctx, p.st, p.claim.Run)
	if err != nil {
		return fmt.Errorf("summarise run %d: %w", p.claim.Run, err)
	}
	if prev != 0 {
		if err := p.st.BuildDiff(ctx, prev, p.claim.Run); err != nil {
			return fmt.Errorf("summarise run %d: %w", p.claim.Run, err)
		}
	}
	b := p.b
	p.log.Info("run summarised", "run", p.claim.Run, "provisional", p.claim.Provisional, "domains", b.run.Domains, "addresses", len(b.addrs),
		"tlds", len(b.tlds), "countries", len(b.countries), "previous", prev, "took", time.Since(p.start).Round(time.Millisecond),
		"first_part", p.first.Round(time.Millisecond), "deferred", len(p.deferred), "last_part", time.Since(t0).Round(time.Millisecond))
	return nil
}

// save summarises the domains that each gives (in (rank, name) order; it reads them
// with the context it is given, which ends if saving fails) and saves their summaries
// and documents in batches: one goroutine reads and summarises the domains while
// another encodes and saves the batch before (reading and saving each take about half
// of the work, and a loaded machine gives a process about one share of a core per busy
// thread).
func (p *Partial) save(ctx context.Context, each func(ctx context.Context, fn func(store.Detail) error) error) error {
	saveCtx, stop := context.WithCancel(ctx)
	defer stop()
	// Unbuffered: the reader builds one batch while the saver saves the one before;
	// a buffer let it run a batch further ahead, ~15 MB more peak RSS for no less time.
	batches := make(chan saved)
	saveErr := make(chan error, 1)
	go func() {
		var err error
		for sv := range batches {
			if err == nil {
				err = p.st.SaveSummaries(saveCtx, p.claim, sv.sums)
			}
			if err == nil {
				err = p.st.SaveDocs(saveCtx, p.claim, sv.docs)
			}
			if err != nil {
				stop() // the reader stops at its next batch
			}
		}
		saveErr <- err
	}()
	var cur saved
	send := func() error {
		select {
		case batches <- cur:
			cur = saved{}
			return nil
		case <-saveCtx.Done():
			return saveCtx.Err()
		}
	}
	err := each(saveCtx, func(d store.Detail) error {
		s := Of(&d)
		p.b.add(&d, &s)
		cur.sums, cur.docs = append(cur.sums, s), append(cur.docs, d)
		if len(cur.sums) == batch {
			return send()
		}
		return nil
	})
	if err == nil && len(cur.sums) > 0 {
		err = send()
	}
	close(batches)
	if serr := <-saveErr; serr != nil {
		err = serr // the saver's error, not the cancellation it caused
	}
	return err
}

// saved is one batch of domain summaries and their documents to save.
type saved struct {
	sums []result.DomainSummary
	docs []store.Detail
}

// BuildDocs stores the domain documents of a run summarised by a v6matrix that did
// not write them (Build does), leaving its summary as it is.
func BuildDocs(ctx context.Context, st store.Store, run int64, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	start := time.Now()
	var docs []store.Detail
	n := 0
	err := st.Details(ctx, run, "", func(d store.Detail) error {
		docs = append(docs, d)
		n++
		if len(docs) < batch {
			return nil
		}
		err := st.SaveDocs(ctx, store.Claim{Run: run}, docs)
		docs = docs[:0]
		return err
	})
	if err == nil {
		err = st.SaveDocs(ctx, store.Claim{Run: run}, docs)
	}
	if err != nil {
		return fmt.Errorf("domain documents of run %d: %w", run, err)
	}
	log.Info("domain documents stored", "run", run, "domains", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Complete summarises a finished run that has no summary, and stores the documents of
// one summarised without them; it reports whether it had anything to do.
func Complete(ctx context.Context, st store.Store, r store.Run, log *slog.Logger) (bool, error) {
	if r.State != store.RunDone {
		return false, nil
	}
	built, err := st.Summarised(ctx, r.ID)
	if err != nil {
		return false, err
	}
	if built.IsZero() {
		return true, Build(ctx, st, r.ID, log)
	}
	documented, err := st.Documented(ctx, r.ID)
	if err != nil || documented {
		return false, err
	}
	return true, BuildDocs(ctx, st, r.ID, log)
}

// previous returns the newest finished run older than run, or 0.
func previous(ctx context.Context, st store.Store, run int64) (int64, error) {
	runs, err := st.ListRuns(ctx)
	if err != nil {
		return 0, err
	}
	var prev int64
	for _, r := range runs {
		if r.ID < run && r.State == store.RunDone {
			prev = r.ID
		}
	}
	return prev, nil
}

// addrAcc is what the builder keeps per unique address (its key), as little as makes
// its result.AddressSummary: a run's are all kept until its end (a million domains
// have a few hundred thousand), so its place is shared with the addresses of the
// same one, and its names are the best-ranked domain's own strings.
type addrAcc struct {
	place   *place // nil: GeoIP placed it nowhere
	domain  string // the best-ranked domain using it, and that domain's host and role
	host    string
	role    result.Role
	rank    int // the domain's
	domains int // using it
	reach   result.Tri
}

// place is where GeoIP puts an address.
type place struct {
	cc          string
	asn         uint32
	asOrg, city string
}

// summary returns the located address ip's row.
func (a *addrAcc) summary(ip netip.Addr) result.AddressSummary {
	s := result.AddressSummary{IP: ip.String(), Family: 6, Reachable: a.reach, Domains: a.domains,
		Domain: a.domain, Host: a.host, Role: a.role}
	if ip.Is4() {
		s.Family = 4
	}
	if p := a.place; p != nil {
		s.CountryCode, s.ASN, s.ASOrg, s.City = p.cc, p.asn, p.asOrg, p.city
	}
	return s
}

// builder accumulates the aggregates while Build reads the run.
type builder struct {
	run       result.Aggregate
	tlds      map[string]*result.Aggregate
	countries map[string]*result.Aggregate
	asns      map[uint32]*result.Aggregate
	addrs     map[netip.Addr]*addrAcc
	places    map[place]*place
}

func newBuilder() *builder {
	return &builder{run: result.Aggregate{Kind: "run"}, tlds: map[string]*result.Aggregate{},
		countries: map[string]*result.Aggregate{}, asns: map[uint32]*result.Aggregate{}, addrs: map[netip.Addr]*addrAcc{},
		places: map[place]*place{}}
}

// placeOf returns the shared place of a GeoIP record (nil when it has none).
func (b *builder) placeOf(g *geoip.Record) *place {
	if g == nil {
		return nil
	}
	k := place{cc: g.CountryCode, asOrg: g.ASOrg, city: g.City}
	if g.ASN != nil {
		k.asn = *g.ASN
	}
	if k == (place{}) {
		return nil
	}
	p := b.places[k]
	if p == nil {
		p = &k
		b.places[k] = p
	}
	return p
}

// count adds a domain's summary to an aggregate.
func count(g *result.Aggregate, s *result.DomainSummary) {
	g.Domains++
	if s.Status != result.StatusOK {
		return
	}
	g.Measured++
	anyV6, unknown := false, false
	for i, r := range s.Roles {
		if r.IPv6 == result.Yes {
			g.IPv6[i]++
			anyV6 = true
		}
		if r.IPv6 == result.Unknown {
			unknown = true
		}
		if r.Reachable == result.Yes {
			g.Reachable[i]++
		}
	}
	if anyV6 {
		g.AnyIPv6++
	}
	if unknown {
		g.Unknown++
	}
	if s.AllFour() {
		g.All++
	}
	switch s.Broken {
	case result.BrokenUnreachable:
		g.Unreachable++
	case result.BrokenBlackHole:
		g.BlackHole++
	}
}

func (b *builder) add(d *store.Detail, s *result.DomainSummary) {
	count(&b.run, s)
	t := b.tlds[d.TLD]
	if t == nil {
		t = &result.Aggregate{Kind: "tld", Key: d.TLD}
		b.tlds[d.TLD] = t
	}
	count(t, s)
	// The domain counts once in every country and AS that one of its addresses is in.
	ccs, asns := map[string]bool{}, map[uint32]bool{}
	for _, ref := range d.Hosts {
		h := d.HostsByName[ref.Name]
		for _, ip := range append(h.V4[:len(h.V4):len(h.V4)], h.V6...) {
			a, ok := d.Addrs[ip]
			if !ok {
				continue
			}
			acc := b.addrs[ip]
			if acc == nil {
				acc = &addrAcc{place: b.placeOf(a.Geo), reach: Reach(&a), domain: d.Name, host: ref.Name, role: ref.Role, rank: d.Rank}
				b.addrs[ip] = acc
				b.located(ip, acc)
			} else if d.Rank < acc.rank || d.Rank == acc.rank && d.Name < acc.domain {
				// Finish's domains come after First's: the address is the best-ranked
				// domain's, as in one pass.
				acc.domain, acc.host, acc.role, acc.rank = d.Name, ref.Name, ref.Role, d.Rank
			}
			p := acc.place
			if p == nil {
				continue
			}
			if p.cc != "" && !ccs[p.cc] {
				ccs[p.cc] = true
				count(b.country(p.cc), s)
			}
			if p.asn != 0 && !asns[p.asn] {
				asns[p.asn] = true
				count(b.asn(p.asn, p.asOrg), s)
			}
		}
	}
	for ip := range addrsOf(d) {
		b.addrs[ip].domains++
	}
}

// addrsOf returns the set of a domain's addresses.
func addrsOf(d *store.Detail) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, ref := range d.Hosts {
		h := d.HostsByName[ref.Name]
		for _, ip := range append(h.V4[:len(h.V4):len(h.V4)], h.V6...) {
			if _, ok := d.Addrs[ip]; ok {
				out[ip] = true
			}
		}
	}
	return out
}

// located counts a new address in its country and AS.
func (b *builder) located(ip netip.Addr, a *addrAcc) {
	p := a.place
	if p == nil {
		return
	}
	var gs []*result.Aggregate
	if p.cc != "" {
		gs = append(gs, b.country(p.cc))
	}
	if p.asn != 0 {
		gs = append(gs, b.asn(p.asn, p.asOrg))
	}
	for _, g := range gs {
		if ip.Is4() {
			g.V4Addresses++
			continue
		}
		g.V6Addresses++
		if a.reach == result.Yes {
			g.V6ReachableAddress++
		}
	}
}

func (b *builder) country(cc string) *result.Aggregate {
	g := b.countries[cc]
	if g == nil {
		g = &result.Aggregate{Kind: "country", Key: cc}
		b.countries[cc] = g
	}
	return g
}

func (b *builder) asn(asn uint32, org string) *result.Aggregate {
	g := b.asns[asn]
	if g == nil {
		g = &result.Aggregate{Kind: "asn", Key: strconv.FormatUint(uint64(asn), 10), Name: org}
		b.asns[asn] = g
	}
	return g
}

// aggregates returns every aggregate, the run's first.
func (b *builder) aggregates() []result.Aggregate {
	out := []result.Aggregate{b.run}
	for _, m := range []map[string]*result.Aggregate{b.tlds, b.countries} {
		for _, g := range m {
			out = append(out, *g)
		}
	}
	for _, g := range b.asns {
		out = append(out, *g)
	}
	slices.SortFunc(out[1:], func(x, y result.Aggregate) int {
		if x.Kind != y.Kind {
			return cmp.Compare(x.Kind, y.Kind)
		}
		return cmp.Compare(x.Key, y.Key)
	})
	return out
}

// addresses yields the located addresses' rows one at a time, in the table's key
// order (the address as text), so that saving them appends rather than seeks; only
// the order is built at once (~60 bytes an address: its text and key), not the rows.
func (b *builder) addresses() iter.Seq[result.AddressSummary] {
	return func(yield func(result.AddressSummary) bool) {
		type key struct {
			text string
			ip   netip.Addr
		}
		keys := make([]key, 0, len(b.addrs))
		for ip := range b.addrs {
			keys = append(keys, key{ip.String(), ip})
		}
		slices.SortFunc(keys, func(x, y key) int { return cmp.Compare(x.text, y.text) })
		for _, k := range keys {
			if !yield(b.addrs[k.ip].summary(k.ip)) {
				return
			}
		}
	}
}

// rebuildShare is how many times its last rebuild's duration KeepCurrent waits at
// least before it rebuilds a run in progress again.
const rebuildShare = 10

// KeepCurrent summarises, until ctx ends, every finished run that lacks a summary
// (runs of an older v6matrix, or whose summary failed) or its domain documents (runs
// summarised by an older v6matrix: Complete) and, every interval, the runs
// still being crawled, so that their pages (?run=N) follow the crawl (Provisional: it
// gives way to the crawl's own summary). Finished runs are summarised once. A run
// whose rebuild takes long is rebuilt less often: at most about a tenth of the time
// goes to it (a 1M-domain run takes minutes to summarise, on the machine that may be
// crawling it).
func KeepCurrent(ctx context.Context, st store.Store, interval time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	took := map[int64]time.Duration{} // the last provisional rebuild of a run
	for {
		runs, err := st.ListRuns(ctx)
		if err != nil && ctx.Err() == nil {
			log.Error("list runs", "err", err)
		}
		for _, r := range runs {
			built, err := st.Summarised(ctx, r.ID)
			if err != nil {
				continue
			}
			inProgress := r.State == store.RunCrawling || r.State == store.RunProbing
			if inProgress && time.Since(built) >= max(interval, rebuildShare*took[r.ID]) {
				t0 := time.Now()
				err = Provisional(ctx, st, r.ID, log)
				took[r.ID] = time.Since(t0)
			} else {
				_, err = Complete(ctx, st, r, log)
			}
			if errors.Is(err, store.ErrSuperseded) {
				log.Info("the run's final summary has begun: its provisional one stopped", "run", r.ID)
				continue
			}
			if err != nil && ctx.Err() == nil {
				log.Error("summarise run", "run", r.ID, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
