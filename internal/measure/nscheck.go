package measure

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/v6matrix/v6matrix/internal/heapq"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/store"
)

// DefaultNSCheck returns the limits of the name server checks (docs/POLITENESS.md):
// one SOA query per (domain, name server address), at most one in flight and 50 per
// second per address (a provider's name server serving many domains of a run sees
// what a resolver's ordinary traffic looks like), 500 per second over the run. They
// all go to udp/53, which counts in the probes' port window: the stage gives the
// checks the probes' window (newNSChecks), so that an address that is also a web or
// mail server sees at most the window's ports from both together.
func DefaultNSCheck() polite.Config {
	c := polite.DefaultConfig()
	c.AddrGap, c.NetGap = 20*time.Millisecond, 0
	c.Rate, c.Workers = 500, 64
	return c
}

// DefaultNSQueue is Config.NSQueue's default: about 45 MB of checks waiting. A
// million-domain run has three million checks; with the default limits (500 a second)
// they take far longer than the DNS stage, which without a bound queued them all.
const DefaultNSQueue = 500_000

// nsPerAddr is how many checks of one address are queued in the checks' scheduler at
// once: one running and the next ready, so that an address is never left waiting
// for its next query while others take the window.
const nsPerAddr = 2

// nsChecks runs the name server checks of a stage beside its probes, as the DNS stage
// finds (domain, name server address) pairs: under their own scheduler with the
// limits of Config.NSCheck, which shares a polite.Exclusion with the probes' scheduler,
// so that no address ever has a check and a probe in flight at once (docs/POLITENESS.md).
// Pairs wait per address; the scheduler holds at most window of them, nsPerAddr per
// address, taken from the addresses in the seeded random order of polite.Rank, so
// that one provider's domains do not queue behind each other.
type nsChecks struct {
	sched   *polite.Scheduler
	release func()
	gate    *polite.Gate
	seed    int64
	window  int
	task    func(t *target) polite.Task
	p       *Progress

	mu      sync.Mutex
	addrs   map[netip.Addr]*nsAddr
	ready   heapq.Heap[*nsAddr] // addresses with pairs waiting and room in the scheduler
	inSched int
	pending int // pairs not yet in the scheduler
	checks  int // pairs known in this invocation (the bound)
	most    *nsAddr
	closed  bool
	err     error
	// queue is Config.NSQueue; room is closed (and replaced) when checks leave the
	// queue, waking an AddNS that waits for room.
	queue   int
	room    chan struct{}
	stopped bool // stop: no check starts any more, none waits for room
	// backlog is a resume's pairs still to read from the store (nil: none left), and
	// coming the pairs of batches being saved meanwhile (Stage.Incoming), which add
	// queues and the backlog leaves alone.
	backlog *nsBacklog
	coming  map[nsKey]bool
}

// nsKey names a (domain, name server address) pair.
type nsKey struct {
	domain string
	ip     netip.Addr
}

// nsAddr is one name server address and its pairs still to queue.
type nsAddr struct {
	ip      netip.Addr
	rank    uint64
	pairs   []nsPair
	inSched int
	known   int // its pairs known in this invocation (the bound)
	idx     int // position in nsChecks.ready; -1 when absent
}

// newNSChecks makes the checks' scheduler; run starts it.
func newNSChecks(cfg Config, x *polite.Exclusion, task func(t *target) polite.Task, p *Progress) (*nsChecks, error) {
	nc := cfg.NSCheck
	// The probes' port rule, over the ports of both (x keeps them).
	nc.PortWindow, nc.MaxPortsPerWindow = cfg.Polite.PortWindow, cfg.Polite.MaxPortsPerWindow
	sched, err := polite.New(nc, nil)
	if err != nil {
		return nil, err
	}
	sched.Exclude(x)
	queue := cfg.NSQueue
	if queue <= 0 {
		queue = DefaultNSQueue
	}
	return &nsChecks{sched: sched, release: sched.Hold(), gate: cfg.Gate, seed: cfg.NSCheck.Seed,
		window: max(cfg.Window, 1), task: task, p: p, addrs: map[netip.Addr]*nsAddr{},
		queue: queue, room: make(chan struct{})}, nil
}

// waitRoom waits until fewer than the queue's bound of checks wait, the checks failed,
// or ctx ends (then it returns its error).
func (n *nsChecks) waitRoom(ctx context.Context) error {
	for {
		n.mu.Lock()
		full, room := n.pending >= n.queue && n.err == nil && !n.stopped, n.room
		n.mu.Unlock()
		if !full {
			return nil
		}
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// incoming marks the pairs of a batch about to be saved while a resume's backlog is
// read: the backlog may find them stored before add has them, and leaves them to add.
// It holds one batch's pairs at a time (the DNS stage saves batches one by one).
func (n *nsChecks) incoming(pairs []store.NSTarget) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.backlog == nil {
		return
	}
	for _, pr := range pairs {
		n.coming[nsKey{pr.Domain, pr.IP}] = true
	}
}

// add queues pairs whose address the gate allows (the others are not checked). The
// pairs are stored: while a resume's backlog is read, those ahead of its cursor are
// left to it (it will read them, no longer marked coming), and those behind it, which
// it passed while they were marked or not yet stored, are queued here. Either way a
// pair is queued once.
func (n *nsChecks) add(ctx context.Context, pairs []store.NSTarget) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, pr := range pairs {
		delete(n.coming, nsKey{pr.Domain, pr.IP})
		if n.backlog != nil && n.backlog.ahead(pr) {
			continue
		}
		n.addLocked(pr)
	}
	n.fill(ctx)
}

// addLocked queues one pair if the gate allows its address; n.mu is held.
func (n *nsChecks) addLocked(pr store.NSTarget) {
	if ok, _ := n.gate.Allowed(pr.IP); !ok {
		return
	}
	ip := polite.Dest(pr.IP)
	a := n.addrs[ip]
	if a == nil {
		a = &nsAddr{ip: ip, rank: polite.Rank(ip, n.seed), idx: -1}
		n.addrs[ip] = a
	}
	a.pairs = append(a.pairs, nsPair{domain: pr.Domain, host: pr.Host, ip: pr.IP})
	a.known++
	if n.most == nil || a.known > n.most.known {
		n.most = a
	}
	n.pending++
	n.checks++
	n.p.Total.Add(1)
	n.fix(a)
}

// fix puts a in ready, or takes it out.
func (n *nsChecks) fix(a *nsAddr) {
	want := len(a.pairs) > 0 && a.inSched < nsPerAddr
	switch {
	case want && a.idx < 0:
		n.ready.Push(a)
	case !want && a.idx >= 0:
		n.ready.Remove(a.idx)
	}
}

// fill moves pairs into the scheduler while the window has room, and lets the
// scheduler finish once nothing more can come.
func (n *nsChecks) fill(ctx context.Context) {
	for n.err == nil && n.inSched < n.window {
		if n.backlog != nil && n.pending <= n.queue/2 {
			n.refill(ctx)
		}
		if n.ready.Len() == 0 {
			break
		}
		a := n.ready.Peek()
		pr := a.pairs[0]
		a.pairs[0] = nsPair{}
		a.pairs = a.pairs[1:]
		if len(a.pairs) == 0 {
			a.pairs = nil // let the drained backing array go
		}
		a.inSched++
		n.inSched++
		n.pending--
		if n.pending == n.queue-1 {
			n.wake() // room for a waiting AddNS
		}
		n.fix(a)
		task := n.task(&target{ip: pr.ip, nsZone: pr.domain, host: pr.host})
		probe := task.Run
		task.Run = func(ctx context.Context) {
			probe(ctx)
			n.mu.Lock()
			defer n.mu.Unlock()
			a.inSched--
			n.inSched--
			n.fix(a)
			if ctx.Err() == nil {
				n.fill(ctx)
			}
		}
		if err := n.sched.Add(task); err != nil && ctx.Err() == nil {
			n.err = err
		}
	}
	if n.err != nil || (n.closed && n.pending == 0 && n.backlog == nil) {
		n.release() // nothing more will be queued: the scheduler ends with what it has
	}
	if n.err != nil {
		n.wake() // a waiting AddNS gives up
	}
}

// wake wakes the AddNS calls waiting for room (waitRoom), which look again; n.mu is
// held. Once stopped nothing waits (waitRoom), and it does nothing.
func (n *nsChecks) wake() {
	if !n.stopped {
		close(n.room)
		n.room = make(chan struct{})
	}
}

// stop makes the checks start no more, and AddNS wait no more for room.
func (n *nsChecks) stop() {
	n.mu.Lock()
	n.wake()
	n.stopped = true
	n.mu.Unlock()
	n.sched.Stop()
}

// close says that no more pairs will come.
func (n *nsChecks) close(ctx context.Context) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.closed = true
	n.fill(ctx)
}

// run runs the checks until closed and done, or ctx ends.
func (n *nsChecks) run(ctx context.Context) error {
	err := n.sched.Run(ctx)
	n.mu.Lock()
	defer n.mu.Unlock()
	if err == nil {
		err = n.err
	}
	return err
}

// bound is the least time the checks known so far need at their limits: all of them
// at the run's rate, and the address with the most at its gap.
func (n *nsChecks) bound(cfg polite.Config) (time.Duration, *nsAddr) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var lb time.Duration
	if !math.IsInf(cfg.Rate, 1) && n.checks > 0 {
		lb = time.Duration(float64(n.checks-1) / cfg.Rate * float64(time.Second))
	}
	if a := n.most; a != nil {
		if d := time.Duration(a.known-1) * cfg.AddrGap; d > lb {
			return d, a
		}
	}
	return lb, nil
}

// nsBacklog is a resume's cursor over the stored pairs not yet checked, in the store's
// (domain, address) order: they are read a page at a time as the checks leave room in
// the queue, not all at once (a million-domain run resumed early has three million).
type nsBacklog struct {
	st      store.Store
	run     int64
	vantage string
	after   store.NSCursor
}

// ahead reports whether the backlog has still to read pr: it comes after the cursor in
// the store's order (domain, then the address's text, bytewise).
func (b *nsBacklog) ahead(pr store.NSTarget) bool {
	if c := strings.Compare(pr.Domain, b.after.Domain); c != 0 {
		return c > 0
	}
	return pr.IP.String() > b.after.IP
}

// nsPage is how many stored pairs a backlog reads at most at a time.
const nsPage = 1000

// loadPending queues the pairs of the run not yet checked from vantage (a resume, or a
// second vantage; a fresh run has none): up to the queue's bound now, the rest as the
// checks leave room. Until all are read, the bound (nsChecks.bound) counts only those
// read.
func (n *nsChecks) loadPending(ctx context.Context, st store.Store, run int64, vantage string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.backlog, n.coming = &nsBacklog{st: st, run: run, vantage: vantage}, map[nsKey]bool{}
	n.fill(ctx)
	return n.err
}

// refill reads stored pairs from the backlog until more than half the queue waits or
// none is left; n.mu is held. It skips the pairs of batches saved during the resume
// (coming, marked before they are stored): add queues those, so that each pair is
// queued once. A read that fails stops the checks (n.err), unless ctx ended.
func (n *nsChecks) refill(ctx context.Context) {
	b := n.backlog
	for n.pending <= n.queue/2 {
		limit := min(nsPage, n.queue-n.pending)
		ns, err := b.st.PendingNSTargets(ctx, b.run, b.vantage, b.after, limit)
		if err != nil {
			if ctx.Err() == nil && n.err == nil {
				n.err = fmt.Errorf("name server checks to resume: %w", err)
			}
			return
		}
		for _, pr := range ns {
			if !n.coming[nsKey{pr.Domain, pr.IP}] {
				n.addLocked(pr)
			}
		}
		if len(ns) < limit {
			n.backlog = nil
			return
		}
		last := ns[len(ns)-1]
		b.after = store.NSCursor{Domain: last.Domain, IP: last.IP.String()}
	}
}

// Less orders name server addresses in nsChecks.ready (heapq) by rank.
func (a *nsAddr) Less(b *nsAddr) bool { return a.rank < b.rank }

// SetIndex keeps a's position in nsChecks.ready (heapq).
func (a *nsAddr) SetIndex(i int) { a.idx = i }
