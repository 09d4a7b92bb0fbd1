package polite

import (
	"net/netip"
	"sync"
	"time"
)

// Exclusion is shared by schedulers whose tasks must not overlap at one address, such
// as a run's probes and its name server checks, each under its own limits: it keeps
// at most one task in flight per address across all of them. A scheduler that finds
// an address busy in another sets the address aside (it is not started, so none of
// its limits counts a start) and takes it up again when the other's task ends.
//
// It also keeps each address's ports seen, shared by the schedulers with a port
// window: the port rule counts the ports of all their tasks (a name server that is
// also a web server sees udp/53, tcp/80 and tcp/443 from us, not two of them and then
// a third at once). Since only one task is in flight per address, a scheduler that
// checks the rule at a start sees every port its start could add to.
type Exclusion struct {
	mu     sync.Mutex
	busy   map[netip.Addr][]parked // an address in flight, and who waits for it
	hists  map[netip.Addr]*portHist
	window time.Duration // the longest port window of the schedulers
	// expiry is every record, oldest first: an address's history is dropped once
	// its last port is older than window.
	expiry []histEntry
	origin time.Time // the schedulers' common origin: their times compare
}

// parked is an address one scheduler set aside while another had it in flight.
type parked struct {
	s *Scheduler
	a *addrState
}

// histEntry is an address's port recorded at end.
type histEntry struct {
	addr netip.Addr
	end  time.Duration
}

// NewExclusion returns an exclusion to pass to the schedulers' Exclude.
func NewExclusion() *Exclusion {
	return &Exclusion{busy: map[netip.Addr][]parked{}, hists: map[netip.Addr]*portHist{}}
}

// Exclude makes s take part in x: before a task starts, its address must be free in
// every scheduler of x, and its ports count with theirs. Call it before Add and Run;
// the schedulers of x must share one Clock.
func (s *Scheduler) Exclude(x *Exclusion) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.excl = x
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.origin.IsZero() {
		x.origin = s.origin
	}
	s.origin = x.origin
	x.window = max(x.window, s.cfg.PortWindow)
}

// portsOf returns a's ports seen (nil: none) and the function to call when done with
// them: under an Exclusion, its shared history, locked until then.
func (s *Scheduler) portsOf(a *addrState) (*portHist, func()) {
	if s.excl == nil || s.cfg.PortWindow == 0 {
		return a.hist, func() {}
	}
	x := s.excl
	x.mu.Lock()
	return x.hists[a.addr], x.mu.Unlock
}

// eligible is a.eligible with a's ports.
func (s *Scheduler) eligible(a *addrState, now time.Duration) time.Duration {
	h, done := s.portsOf(a)
	defer done()
	return a.eligible(now, &s.cfg, h)
}

// take is a.take with a's ports.
func (s *Scheduler) take(a *addrState, now time.Duration) (job, bool) {
	h, done := s.portsOf(a)
	defer done()
	return a.take(now, &s.cfg, h)
}

// ended records that a's job in flight ended at now: its port, in a's history or,
// under an Exclusion, in the shared one.
func (s *Scheduler) ended(a *addrState, now time.Duration) {
	a.busy = false
	j := a.cur
	a.cur = job{}
	if s.cfg.PortWindow == 0 || j.proto == ProtoICMP {
		return
	}
	if s.excl == nil {
		if a.hist == nil {
			a.hist = &portHist{}
		}
		a.hist.prune(now - s.cfg.PortWindow)
		a.hist.record(j, now)
		return
	}
	s.excl.record(a.addr, j, now)
}

// record adds that j's port saw activity at addr until now to the shared history, and
// drops the histories whose last port is older than the longest window.
func (x *Exclusion) record(addr netip.Addr, j job, now time.Duration) {
	x.mu.Lock()
	defer x.mu.Unlock()
	cutoff := now - x.window
	for len(x.expiry) > 0 && x.expiry[0].end <= cutoff {
		e := x.expiry[0]
		x.expiry = x.expiry[1:]
		if h := x.hists[e.addr]; h != nil && h.ports[len(h.ports)-1].end <= cutoff {
			delete(x.hists, e.addr)
		}
	}
	h := x.hists[addr]
	if h == nil {
		h = &portHist{}
		x.hists[addr] = h
	}
	h.prune(cutoff)
	h.record(j, now)
	x.expiry = append(x.expiry, histEntry{addr, now})
}

// acquire marks a's address in flight for s, or, when another scheduler has it in
// flight, records that s waits for it and reports false.
func (x *Exclusion) acquire(s *Scheduler, a *addrState) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	w, busy := x.busy[a.addr]
	if busy {
		x.busy[a.addr] = append(w, parked{s, a})
		return false
	}
	x.busy[a.addr] = nil
	return true
}

// release marks addr free and returns who waited for it. The caller must hold no
// scheduler's lock when it hands them back (unpark), since each takes its own.
func (x *Exclusion) release(addr netip.Addr) []parked {
	x.mu.Lock()
	defer x.mu.Unlock()
	w := x.busy[addr]
	delete(x.busy, addr)
	return w
}

// park sets aside n's first address (of active or fresh), busy in another scheduler.
// A network no probe has started in leaves the untouched queue when it has nothing
// else waiting, and comes back with the address (unpark).
func (s *Scheduler) park(n *netState, fromActive bool) {
	a := popAddr(n, fromActive)
	a.parked = true
	if n.last == never && n.fresh.Len() == 0 && n.active.Len() == 0 {
		s.untouched.pop(n)
		n.away = true
	}
	s.fixNet(n)
}

// unpark takes back an address set aside, now free. It takes s's lock: the caller
// holds none.
func (s *Scheduler) unpark(a *addrState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !a.parked {
		return
	}
	a.parked = false
	n := a.net
	if a.last == never {
		n.fresh.Push(a)
	} else {
		a.key = s.eligible(a, s.now())
		n.active.Push(a)
	}
	s.comeBack(n, a.rank)
	s.fixNet(n)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// comeBack returns a network set aside whole (park) to the untouched queue.
func (s *Scheduler) comeBack(n *netState, rank uint64) {
	if n.away {
		n.away = false
		s.untouched.push(n, rank, true)
	}
}

// handBack unparks, outside s's lock, the addresses that waited for ones s released.
func handBack(ps []parked) {
	for _, p := range ps {
		p.s.unpark(p.a)
	}
}
