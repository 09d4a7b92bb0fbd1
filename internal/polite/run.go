package polite

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Run starts every queued task once, within the limits, and returns nil when
// all have returned. If ctx ends first, Run starts nothing more, waits for
// the tasks in flight (which see ctx end) and returns ctx.Err(). Run may be
// called once.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.state != stateIdle {
		s.mu.Unlock()
		return errors.New("polite: Run called twice")
	}
	s.state = stateRunning
	s.untouched.sort()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.state = stateFinished
		s.mu.Unlock()
	}()

	// A fixed pool of workers runs the tasks: no goroutine or closure is
	// made per task, which keeps the garbage collector off a large queue.
	// Both channels hold Workers items, more than are ever in flight, so
	// neither Run nor a worker waits to hand over.
	work := make(chan started, s.cfg.Workers)
	ended := make(chan *addrState, s.cfg.Workers)
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() {
			for w := range work {
				w.run(ctx)
				ended <- w.a
			}
		})
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	inflight := 0
	for {
		s.mu.Lock()
		wait := time.Duration(-1) // -1: no timer, wait for an event
		for ctx.Err() == nil && !s.stopped && inflight < s.cfg.Workers {
			now := s.now()
			at, n, fromActive := s.next(now)
			if n == nil {
				break
			}
			if at > now {
				wait = at - now
				break
			}
			a, j, ok := s.start(n, fromActive, now)
			if !ok {
				continue
			}
			inflight++
			s.inflight.Add(1)
			work <- started{a, j.run}
		}
		finished := inflight == 0 && s.queued == 0 && s.holds == 0
		if finished {
			s.state = stateFinished // from now on Add fails: nothing is lost
		}
		stopped := s.stopped
		freed := s.freed
		s.freed = nil
		s.mu.Unlock()
		handBack(freed)

		if stopped && !finished {
			for ; inflight > 0; inflight-- {
				s.finish(<-ended)
			}
			return ErrStopped
		}
		if err := ctx.Err(); err != nil {
			for ; inflight > 0; inflight-- {
				s.finish(<-ended)
			}
			return err
		}
		if finished {
			return nil
		}
		var timer Timer
		var fire <-chan time.Time
		if wait >= 0 {
			timer = s.clk.NewTimer(wait)
			fire = timer.C()
		}
		select {
		case a := <-ended:
			s.finish(a)
			inflight--
		case <-fire:
		case <-s.wake:
		case <-ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// started is a task handed to a worker.
type started struct {
	a   *addrState
	run func(context.Context)
}

// next returns the network whose address may start first, and when. The
// order: an address under way, so that addresses are finished soon after
// they are begun; then a new address in a network already begun, so that
// large networks (which NetGap slows most) progress all through the run;
// then a network not begun yet, in random order; else whichever of the
// first two may start soonest.
func (s *Scheduler) next(now time.Duration) (at time.Duration, n *netState, fromActive bool) {
	ak, tk := forever, forever
	if len(s.active.e) > 0 {
		ak = s.active.e[0].key
	}
	if len(s.touched.e) > 0 {
		tk = s.touched.e[0].key
	}
	switch u := s.untouched.peek(); {
	case ak <= now:
		at, n, fromActive = ak, s.active.e[0].n, true
	case tk <= now:
		at, n = tk, s.touched.e[0].n
	case u != nil:
		at, n = never, u
	case ak == forever && tk == forever:
		return 0, nil, false
	case ak <= tk:
		at, n, fromActive = ak, s.active.e[0].n, true
	default:
		at, n = tk, s.touched.e[0].n
	}
	return max(at, s.last+s.spacing), n, fromActive
}

// start takes the first address of n and the job it may start at now. It
// reports false, having requeued the address, if no job may start. That
// cannot happen while the address's port history only shrinks between the
// computation of its key and its start, but requeueing keeps the limits
// safe if it ever did.
func (s *Scheduler) start(n *netState, fromActive bool, now time.Duration) (*addrState, job, bool) {
	if s.excl != nil && !s.excl.acquire(s, peekAddr(n, fromActive)) {
		s.park(n, fromActive) // in flight in another scheduler
		return nil, job{}, false
	}
	if n.last == never {
		s.untouched.pop(n)
	}
	a := popAddr(n, fromActive)
	j, ok := s.take(a, now)
	if !ok {
		a.key = s.eligible(a, now)
		n.active.Push(a)
		s.fixNet(n)
		if s.excl != nil {
			s.freed = append(s.freed, s.excl.release(a.addr)...)
		}
		return nil, job{}, false
	}
	a.busy = true
	a.cur = j
	a.last = now
	n.last = now
	s.last = now
	s.queued--
	s.fixNet(n)
	return a, j, true
}

// finish records that a's probe returned.
func (s *Scheduler) finish(a *addrState) {
	if s.excl != nil {
		defer handBack(s.excl.release(a.addr)) // after the unlock below
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.ended(a, now)
	s.done.Add(1)
	s.inflight.Add(-1)
	if len(a.jobs) == 0 {
		a.jobs = nil // keep the history while it limits what may be added, not the slice
		a.quietAt = now + s.cfg.quiet()
		s.idle = append(s.idle, idleAddr{a: a, at: a.quietAt})
		s.forget(now)
		return
	}
	a.key = s.eligible(a, now)
	a.net.active.Push(a)
	s.fixNet(a.net)
}

// idleAddr is an address that ran its last job, and when its history stops limiting it.
type idleAddr struct {
	a  *addrState
	at time.Duration
}

// forget drops the addresses whose history no longer limits anything, and the networks
// left with none of their addresses, so that the scheduler's memory follows the
// addresses queued and recently probed, not every address of the run (183,375 in the
// synthetic million-domain run). An address queued again after that starts as a new one, which
// is what the limits allow: its last start, its ports and its network's last start are
// all older than their gaps and window. s.idle is in order of at (quiet is a constant).
func (s *Scheduler) forget(now time.Duration) {
	for len(s.idle) > 0 && s.idle[0].at <= now {
		e := s.idle[0]
		s.idle[0] = idleAddr{}
		s.idle = s.idle[1:]
		a := e.a
		if a.quietAt != e.at || len(a.jobs) > 0 || a.busy || a.parked || a.index >= 0 {
			continue // queued again since: a later entry, if any, is its own
		}
		delete(s.addrs, a.addr)
		n := a.net
		if n.addrs--; n.addrs == 0 && n.last != never && !n.away && n.idx == [2]int{-1, -1} {
			delete(s.nets, s.cfg.Network(a.addr))
		}
	}
}
