package polite

import (
	"net/netip"
	"sync"
)

// Exclusion is shared by schedulers whose tasks must not overlap at one address, such
// as a run's probes and its name server checks, each under its own limits: it keeps
// at most one task in flight per address across all of them. A scheduler that finds
// an address busy in another sets the address aside (it is not started, so none of
// its limits counts a start) and takes it up again when the other's task ends.
type Exclusion struct {
	mu   sync.Mutex
	busy map[netip.Addr][]parked // an address in flight, and who waits for it
}

// parked is an address one scheduler set aside while another had it in flight.
type parked struct {
	s *Scheduler
	a *addrState
}

// NewExclusion returns an exclusion to pass to the schedulers' Exclude.
func NewExclusion() *Exclusion { return &Exclusion{busy: map[netip.Addr][]parked{}} }

// Exclude makes s take part in x: before a task starts, its address must be free in
// every scheduler of x. Call it before Run.
func (s *Scheduler) Exclude(x *Exclusion) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.excl = x
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
		a.key = a.eligible(s.now(), &s.cfg)
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
