package measure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// Stage is a run's probe stage fed while the DNS stage runs: Start loads what the run
// has pending and starts probing; Add queues the targets of each batch the DNS stage
// saves; Close says no more will come; Wait returns when everything is measured (then
// the name server checks have run too).
//
// An address's probes wait outside the scheduler's window in a compact record, in its
// network's queue (see planner); the names its probes use (SNI, STARTTLS, the host of
// the path trace) are those of the best-ranked domain saved when the address enters the
// window. Each (address, kind) is queued once per run and vantage (Config.Vantage): on
// resume from the store's targets less what the vantage measured, then from the roles
// that each saved batch adds (store.Target.Added).
type Stage struct {
	cfg   Config
	st    store.Store
	run   int64
	p     *Progress
	log   *slog.Logger
	pr    *probers
	sched *polite.Scheduler
	// task makes the scheduler task of one measurement (the probers', or a test's).
	task  func(t *target, kind string) polite.Task
	start time.Time

	results  chan store.Measurement
	writeErr chan error
	failed   chan struct{} // closed at the first write error (fail)
	failOnce sync.Once
	schedErr chan error
	release  func()
	// ns runs the name server checks beside the probes (nil when dns53 is off).
	ns    *nsChecks
	nsErr chan error

	mu      sync.Mutex
	plan    *planner
	byIP    map[netip.Addr]*waiting // addresses waiting outside the window
	local   []localJob              // PTR and GeoIP to do
	wakeL   *sync.Cond
	closed  bool
	stopped bool // Stop was called
	dnsEnd  time.Time
	err     error
	localWG sync.WaitGroup
}

// localJob is one measurement that sends nothing to the address.
type localJob struct {
	t    *target
	kind string
}

// Start opens the probers, queues what the run has pending in the store and starts
// probing; the caller must then Close the stage and Wait for it.
func Start(ctx context.Context, cfg Config, st store.Store, run int64, p *Progress) (*Stage, error) {
	switch {
	case cfg.Gate == nil:
		return nil, errors.New("measure: no gate: the allowed and opted-out ranges must be set")
	case cfg.Kinds[result.KindHTTP80] && cfg.UserAgent == "":
		return nil, errors.New("measure: the HTTP probe needs a User-Agent that names the crawler")
	case cfg.Kinds[result.KindSTARTTLS] && cfg.EHLOName == "":
		return nil, errors.New("measure: the STARTTLS probe needs the crawler's EHLO name")
	}
	s := &Stage{st: st, run: run, p: p, log: cfg.Logger, byIP: map[netip.Addr]*waiting{}, start: time.Now()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if s.sched, err = polite.New(cfg.Polite, nil); err != nil {
		return nil, err
	}
	excl := polite.NewExclusion() // the probes and the checks: one in flight per address
	s.sched.Exclude(excl)
	cfg.Kinds = maps.Clone(cfg.Kinds) // newProbers may turn a kind off for this run
	if s.pr, err = newProbers(cfg, s.log); err != nil {
		return nil, err
	}
	s.cfg = s.pr.cfg
	s.task = func(t *target, kind string) polite.Task { return s.pr.task(t, kind, s.results, s.p, s.log) }
	if s.cfg.Kinds[result.KindDNS53] {
		check := func(t *target) polite.Task { return s.pr.task(t, result.KindDNS53, s.results, s.p, s.log) }
		if s.ns, err = newNSChecks(s.cfg, excl, check, p); err != nil {
			s.pr.close()
			return nil, err
		}
	}
	every := &target{www: "w", mx: "m", ntp: true}
	s.plan = newPlanner(cfg.Polite, cfg.Window, s.portOf, setOf(every.kinds(s.cfg.Kinds))&^localKinds)
	s.wakeL = sync.NewCond(&s.mu)
	p.setBound(s.bound)
	p.setUnfinished(s.unfinished)
	p.start.Store(s.start.UnixNano())

	s.results = make(chan store.Measurement, 256)
	s.writeErr = make(chan error, 1)
	s.failed = make(chan struct{})
	go func() { s.writeErr <- write(context.WithoutCancel(ctx), st, run, cfg.Vantage, s.results, s.fail) }()
	if err := s.loadPending(ctx); err != nil {
		s.closeEarly()
		return nil, err
	}
	if s.ns != nil {
		if part := s.cfg.Part; part != nil {
			s.ns.add(ctx, part.NS)
		} else if err := s.ns.loadPending(ctx, st, run, s.cfg.Vantage); err != nil {
			s.closeEarly()
			return nil, err
		}
		s.nsErr = make(chan error, 1)
		go func() { s.nsErr <- s.ns.run(ctx) }()
	}
	s.release = s.sched.Hold()
	s.schedErr = make(chan error, 1)
	go func() { s.schedErr <- s.sched.Run(ctx) }()
	for range localWorkers {
		s.localWG.Go(func() { s.runLocal(ctx) })
	}
	s.mu.Lock()
	s.fill(ctx)
	s.mu.Unlock()
	return s, nil
}

// closeEarly undoes Start after a failure.
func (s *Stage) closeEarly() {
	close(s.results)
	<-s.writeErr
	s.pr.close()
}

// portOf returns a kind's destination port, as its task has it.
func (s *Stage) portOf(kind string) (polite.Proto, uint16) {
	t := s.pr.task(&target{}, kind, nil, s.p, s.log)
	return t.Proto, t.Port
}

// loadPending queues the targets of the run with kinds not yet measured (a resume; a
// fresh run has none). A run saved before the store kept targets gets them first.
func (s *Stage) loadPending(ctx context.Context) error {
	if part := s.cfg.Part; part != nil {
		s.mu.Lock()
		for _, t := range part.Targets {
			s.addLocked(ctx, t, t.Roles, setOf(t.Measured))
		}
		s.mu.Unlock()
		return nil
	}
	if err := store.BackfillTargets(ctx, s.st, s.run); err != nil {
		return err
	}
	const page = 1000
	for after := ""; ; {
		ts, err := s.st.Targets(ctx, s.run, s.cfg.Vantage, after, page)
		if err != nil {
			return err
		}
		s.mu.Lock()
		for _, t := range ts {
			s.addLocked(ctx, t, t.Roles, setOf(t.Measured))
		}
		s.mu.Unlock()
		if len(ts) < page {
			return nil
		}
		after = ts[len(ts)-1].IP.String()
	}
}

// Add queues what the targets of a saved batch add to the run: the kinds of the roles
// they add, and better names for addresses still waiting. It is crawl.Config.OnSaved.
func (s *Stage) Add(ctx context.Context, ts []store.Target) {
	if ctx.Err() != nil {
		return // stopping: the store has them for the resume
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range ts {
		if t.Changed {
			s.addLocked(ctx, t, t.Added, 0)
		}
	}
	s.fill(ctx)
}

// Incoming marks (domain, name server address) pairs that a batch about to be saved
// brings, which AddNS will queue: it is crawl.Config.BeforeSave.
func (s *Stage) Incoming(ns []store.NSTarget) {
	if s.ns != nil {
		s.ns.incoming(ns)
	}
}

// AddNS queues the name server checks of a saved batch's (domain, name server address)
// pairs. Like Add, it is called from crawl.Config.OnSaved. When Config.NSQueue checks
// wait already it waits for room first, which holds the DNS stage back.
func (s *Stage) AddNS(ctx context.Context, ns []store.NSTarget) {
	if ctx.Err() != nil || s.ns == nil || len(ns) == 0 {
		return // stopping: the store has them for the resume
	}
	if s.ns.waitRoom(ctx) != nil {
		return // stopping: the store has them for the resume
	}
	s.ns.add(ctx, ns)
}

// targetOf is the probe stage's view of a stored target with the given roles.
func targetOf(t store.Target, roles store.Roles) *target {
	tg := &target{ip: t.IP, host: t.Host, ntp: roles&store.RoleNTP != 0}
	if roles&store.RoleWWW != 0 {
		tg.www = t.WWW
	}
	if roles&store.RoleMX != 0 {
		tg.mx = t.MX
	}
	return tg
}

// addLocked queues the kinds that the roles added call for, less those measured.
func (s *Stage) addLocked(ctx context.Context, t store.Target, added store.Roles, measured kindSet) {
	tg := targetOf(t, t.Roles)
	kinds := setOf(tg.kinds(s.cfg.Kinds))
	first := added&store.RoleAddr != 0
	if !first {
		kinds &^= setOf(targetOf(t, t.Roles&^added).kinds(s.cfg.Kinds))
	}
	kinds &^= measured
	// By the address itself: an IPv4-mapped IPv6 address (an AAAA record of
	// ::ffff:a.b.c.d) is another target than a.b.c.d, with names of its own, though
	// the scheduler's limits count both as one destination.
	w := s.byIP[t.IP]
	if w != nil { // still waiting: its probes will use the newest names
		w.www, w.mx, w.host, w.ntp = tg.www, tg.mx, tg.host, tg.ntp
	}
	allowed, reason := s.allowed(t.IP, measured)
	if !allowed {
		if !first {
			return
		}
		s.p.Addresses.Add(1)
		s.p.Skipped.Add(1)
		if measured&kindBit(result.KindSkipped) == 0 {
			s.results <- store.Measurement{IP: t.IP, Kind: result.KindSkipped, Value: reason}
		}
		// GeoIP sends no packet: every recorded address gets it, probed or not.
		kinds &= kindBit(result.KindGeo)
	} else if first {
		s.p.Addresses.Add(1)
	}
	if kinds == 0 {
		return
	}
	s.p.Total.Add(int64(kinds.len()))
	for _, k := range (kinds & localKinds).list() {
		s.local = append(s.local, localJob{tg, k})
	}
	if kinds&localKinds != 0 {
		s.wakeL.Signal()
	}
	remote := kinds &^ localKinds
	if remote == 0 {
		return
	}
	if w != nil { // still waiting: one record
		s.plan.grow(w, remote)
		return
	}
	w = s.plan.add(waiting{ip: t.IP, kinds: remote, www: tg.www, mx: tg.mx, host: tg.host, ntp: tg.ntp}, first)
	s.byIP[w.ip] = w
}

// allowed reports whether an address may be probed: the gate allows it and no skip of
// it is recorded (measured); reason is the gate's when it refuses.
func (s *Stage) allowed(ip netip.Addr, measured kindSet) (ok bool, reason string) {
	if ok, reason = s.cfg.Gate.Allowed(ip); !ok || measured&kindBit(result.KindSkipped) == 0 {
		return ok, reason
	}
	return false, ""
}

// fill moves addresses from their networks' queues into the scheduler's window while
// the planner allows, and lets the scheduler finish once nothing more can come.
func (s *Stage) fill(ctx context.Context) {
	for s.err == nil && !s.stopped {
		w, ok := s.plan.next()
		if !ok {
			break
		}
		delete(s.byIP, w.ip)
		t := &target{ip: w.ip, www: w.www, mx: w.mx, host: w.host, ntp: w.ntp}
		kinds := w.kinds.list()
		entered := time.Now()
		var left atomic.Int32
		left.Store(int32(len(kinds)))
		for _, kind := range kinds {
			task := s.task(t, kind)
			probe := task.Run
			task.Run = func(ctx context.Context) {
				probe(ctx)
				if left.Add(-1) == 0 {
					s.mu.Lock()
					s.plan.observe(time.Since(entered), len(kinds))
					s.plan.finished(w)
					if ctx.Err() == nil {
						s.fill(ctx)
					}
					s.mu.Unlock()
				}
			}
			if err := s.sched.Add(task); err != nil && ctx.Err() == nil {
				s.err = err
			}
		}
	}
	if s.closed && s.plan.waiting == 0 && s.release != nil {
		s.release()
	}
}

// runLocal does the measurements that send nothing to the addresses.
func (s *Stage) runLocal(ctx context.Context) {
	for {
		s.mu.Lock()
		for len(s.local) == 0 && !s.closed && !s.stopped && ctx.Err() == nil {
			s.wakeL.Wait()
		}
		if len(s.local) == 0 || s.stopped || ctx.Err() != nil {
			s.mu.Unlock()
			return
		}
		j := s.local[0]
		s.local[0] = localJob{}
		s.local = s.local[1:]
		s.mu.Unlock()
		s.pr.task(j.t, j.kind, s.results, s.p, s.log).Run(ctx)
	}
}

// ErrStopped is what Wait returns after Stop.
var ErrStopped = errors.New("probe stage stopped")

// Stop makes the stage start no more probes: Wait returns ErrStopped once those in
// flight have finished and their results are saved. What was not started stays pending
// in the store, as after an interruption (a distributed job's slice ends so).
func (s *Stage) Stop() {
	s.mu.Lock()
	s.stopped = true
	s.wakeL.Broadcast()
	s.mu.Unlock()
	s.sched.Stop()
	if s.ns != nil {
		s.ns.stop()
	}
}

// fail stops the stage at its first write error (from the writer): nothing more
// starts, the probes in flight finish (their results are dropped: the store has them
// pending for a resume) and Wait returns the error. Stop runs apart because the writer
// must go on reading results while it waits for s.mu (a sender may hold it).
func (s *Stage) fail() {
	s.failOnce.Do(func() {
		close(s.failed)
		go s.Stop()
	})
}

// Failed is closed when the stage stops on an error of its own, a measurement batch
// that could not be saved, before Wait returns it: the DNS stage beside it can stop at
// once rather than at the probe stage's end.
func (s *Stage) Failed() <-chan struct{} { return s.failed }

// Close says that the DNS stage is over: no more Add.
func (s *Stage) Close(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed, s.dnsEnd = true, time.Now()
	s.wakeL.Broadcast()
	s.fill(ctx)
	if s.ns != nil {
		s.ns.close(ctx)
	}
	lb, why := s.boundLocked()
	s.log.Info("probe stage: every address known", "addresses", s.p.Addresses.Load(), "probes", s.p.Total.Load(),
		"lower_bound", lb.Round(time.Second), "bound_by", why)
}

// bound is the stage's lower bound so far (Progress.Bound).
func (s *Stage) bound() (time.Duration, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.boundLocked()
}

// boundLocked is bound with s.mu held: the probes' bound (planner.bound), or the name
// server checks' when they need longer at their own limits.
func (s *Stage) boundLocked() (time.Duration, string) {
	dns := time.Since(s.start)
	if s.closed {
		dns = s.dnsEnd.Sub(s.start)
	}
	lb, why := s.plan.bound(dns)
	if s.ns != nil {
		if d, a := s.ns.bound(s.cfg.NSCheck); d > lb {
			lb, why = d, fmt.Sprintf("%d name server checks at --ns-check-rate %g/s", s.ns.checks, s.cfg.NSCheck.Rate)
			if a != nil {
				why = fmt.Sprintf("name server %s has %d checks %v apart", a.ip, a.known, s.cfg.NSCheck.AddrGap)
			}
		}
	}
	return lb, why
}

// Wait returns when the probes and then the name server checks are done, or ctx ended
// (ctx.Err(), after saving what finished), or a write failed (that error, once the
// probes in flight have finished; see Failed). The stage must be closed first, or ctx
// end, or a write fail.
func (s *Stage) Wait(ctx context.Context) error {
	defer s.pr.close()
	err := <-s.schedErr
	if s.ns != nil {
		if nerr := <-s.nsErr; err == nil {
			err = nerr
		}
	}
	if ctx.Err() != nil {
		s.mu.Lock()
		s.wakeL.Broadcast()
		s.mu.Unlock()
	}
	s.localWG.Wait()
	end := time.Now()
	done := err == nil
	var lb time.Duration
	var why string
	if done {
		s.p.end.Store(end.UnixNano())
		lb, why = s.bound()
		s.log.Info("probe stage: probes done", "elapsed", end.Sub(s.start).Round(time.Millisecond), "lower_bound", lb.Round(time.Millisecond),
			"bound_by", why, "efficiency", fmt.Sprintf("%.2f", s.p.Efficiency()))
	}
	s.mu.Lock()
	if err == nil {
		err = s.err
	}
	s.mu.Unlock()
	if errors.Is(err, polite.ErrStopped) {
		err = ErrStopped
	}
	close(s.results)
	if werr := <-s.writeErr; werr != nil {
		return werr
	}
	if done && err == nil {
		// Every measurement is saved: the progress keeps the final bound and nothing
		// unfinished, not the stage (its planner, scheduler and checks), which the
		// run's summary would otherwise hold while it builds.
		s.p.setBound(func() (time.Duration, string) { return lb, why })
		s.p.setUnfinished(func(context.Context) (*Unfinished, error) {
			return &Unfinished{Addrs: map[netip.Addr]bool{}, Domains: map[string]bool{}}, nil
		})
	}
	return err
}
