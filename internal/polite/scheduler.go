// Package polite schedules v6matrix's address probes so that no site
// mistakes the crawler for an attack: at most one probe in flight per
// address, minimum gaps between probe starts to one address and to one
// network, a global rate cap, few distinct destination ports per address in
// any window (what port-scan detectors count), and addresses taken in a
// seeded random order. Gate refuses addresses that must never be probed.
// docs/POLITENESS.md gives the defaults and the reasons for them.
package polite

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Proto is the transport of a probe, which with the port makes the
// destination port that port-scan detectors count.
type Proto uint8

// The transports of probes. ICMP probes have no port.
const (
	ProtoICMP Proto = iota
	ProtoTCP
	ProtoUDP
)

// String returns "icmp", "tcp" or "udp".
func (p Proto) String() string {
	switch p {
	case ProtoICMP:
		return "icmp"
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// Task is one probe of one address.
type Task struct {
	// Addr is the destination. An IPv4-mapped IPv6 address counts as the
	// IPv4 address for every limit.
	Addr netip.Addr
	// Proto and Port are the destination port; ProtoICMP has Port 0.
	Proto Proto
	Port  uint16
	// Run sends the probe and returns when it is over. It must return
	// soon after ctx ends. The scheduler counts the address busy, and the
	// port seen, until Run returns.
	Run func(ctx context.Context)
}

// Progress counts tasks, for a progress bar.
type Progress struct {
	Done, InFlight, Total int
}

// Scheduler runs queued tasks under the limits of its Config. Add may be
// called from any goroutine before and during Run (a running probe may
// queue more); once Run has returned, Add fails rather than lose a task.
type Scheduler struct {
	cfg     Config
	clk     Clock
	spacing time.Duration
	origin  time.Time
	wake    chan struct{}

	mu    sync.Mutex
	addrs map[netip.Addr]*addrState
	nets  map[netip.Prefix]*netState
	// Networks by when they may start a probe: active holds those with an
	// address under way, touched those with addresses not begun after a
	// start, untouched those no probe has started in.
	active    netHeap
	touched   netHeap
	untouched untouched
	// Addresses and networks are allocated in chunks: a million small
	// objects cost the garbage collector more than a thousand slices.
	addrChunk []addrState
	netChunk  []netState
	last      time.Duration // latest start of any probe
	// idle are the addresses that ran their last job, to forget once their
	// history no longer limits them (forget), oldest first.
	idle   []idleAddr
	queued int // tasks not started
	// excl, when set, is shared with other schedulers (Exclude); freed holds the
	// addresses of theirs to hand back once s's lock is released.
	excl    *Exclusion
	freed   []parked
	holds   int  // Hold calls not released: Run waits for more tasks
	stopped bool // Stop was called: Run starts nothing more
	state   int  // idle, running, finished

	done, inflight, total atomic.Int64
}

// chunkSize is how many addresses or networks are allocated at once.
const chunkSize = 1024

const (
	stateIdle = iota
	stateRunning
	stateFinished
)

// New returns a scheduler with the limits of cfg, reading time from clk (nil
// means SystemClock).
func New(cfg Config, clk Clock) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clk == nil {
		clk = SystemClock()
	}
	return &Scheduler{
		cfg:     cfg,
		clk:     clk,
		spacing: cfg.spacing(),
		origin:  clk.Now(),
		wake:    make(chan struct{}, 1),
		addrs:   make(map[netip.Addr]*addrState),
		nets:    make(map[netip.Prefix]*netState),
		last:    never,
		active:  netHeap{slot: slotActive},
		touched: netHeap{slot: slotTouched},
		// A network leaves untouched before it can enter touched, so
		// the two share a slot.
		untouched: untouched{late: netHeap{slot: slotTouched}},
	}, nil
}

// Progress returns the task counts; it is safe to call at any time.
func (s *Scheduler) Progress() Progress {
	return Progress{
		Done:     int(s.done.Load()),
		InFlight: int(s.inflight.Load()),
		Total:    int(s.total.Load()),
	}
}

func (s *Scheduler) now() time.Duration { return s.clk.Now().Sub(s.origin) }

// Add queues t. It fails if t is malformed or Run has returned.
func (s *Scheduler) Add(t Task) error {
	if !t.Addr.IsValid() {
		return errors.New("polite: task has no address")
	}
	if t.Run == nil {
		return fmt.Errorf("polite: task %v %v/%d has no Run function", t.Addr, t.Proto, t.Port)
	}
	switch {
	case t.Proto == ProtoICMP && t.Port != 0:
		return fmt.Errorf("polite: task %v: icmp takes no port, got %d", t.Addr, t.Port)
	case (t.Proto == ProtoTCP || t.Proto == ProtoUDP) && t.Port == 0:
		return fmt.Errorf("polite: task %v: %v needs a destination port", t.Addr, t.Proto)
	case t.Proto > ProtoUDP:
		return fmt.Errorf("polite: task %v: unknown protocol %v", t.Addr, t.Proto)
	}
	addr := Dest(t.Addr) // the limits of the destination it reaches
	j := job{run: t.Run, port: t.Port, proto: t.Proto}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state == stateFinished {
		return fmt.Errorf("polite: task %v %v/%d added after Run returned", t.Addr, t.Proto, t.Port)
	}
	s.queued++
	s.total.Add(1)
	s.forget(s.now())
	a := s.addrs[addr]
	switch {
	case a == nil:
		rank := rankOf(addr, s.cfg.Seed)
		if len(s.addrChunk) == 0 {
			s.addrChunk = make([]addrState, chunkSize)
		}
		a = &s.addrChunk[0]
		s.addrChunk = s.addrChunk[1:]
		*a = addrState{addr: addr, net: s.netOf(addr, rank), jobs: []job{j}, last: never, key: never,
			rank: rank, index: -1}
		s.addrs[addr] = a
		a.net.addrs++
		a.net.fresh.Push(a)
		s.comeBack(a.net, rank)
	case a.last == never || a.busy || a.parked: // waiting in fresh, in flight or parked
		a.jobs = append(a.jobs, j)
	default: // under way and idle: its eligible time may change
		a.jobs = append(a.jobs, j)
		a.key = s.eligible(a, s.now())
		if a.index < 0 {
			a.net.active.Push(a)
		} else {
			a.net.active.Fix(a.index)
		}
	}
	s.fixNet(a.net)
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// ErrStopped is what Run returns after Stop, once the tasks in flight have returned.
var ErrStopped = errors.New("polite: stopped")

// Stop makes Run start nothing more and return ErrStopped once the tasks in flight
// have returned: unlike the end of Run's context, Stop lets them finish (a distributed
// job's slice ends without losing a probe half sent). The queued tasks are not run.
func (s *Scheduler) Stop() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Hold keeps Run from returning while the caller may still add tasks (a stream of
// them arriving from elsewhere), even when nothing is queued meanwhile; release, which
// may be called once, lets Run finish once all is done. Hold must be called before Run.
func (s *Scheduler) Hold() (release func()) {
	s.mu.Lock()
	s.holds++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.holds--
			s.mu.Unlock()
			select {
			case s.wake <- struct{}{}:
			default:
			}
		})
	}
}

// netOf returns a's network, making it, with the rank of its first
// address, if it is new.
func (s *Scheduler) netOf(a netip.Addr, rank uint64) *netState {
	p := s.cfg.Network(a) // the bits are validated; a is valid
	n := s.nets[p]
	if n == nil {
		if len(s.netChunk) == 0 {
			s.netChunk = make([]netState, chunkSize)
		}
		n = &s.netChunk[0]
		s.netChunk = s.netChunk[1:]
		*n = netState{last: never, idx: [2]int{-1, -1}}
		s.nets[p] = n
		s.untouched.push(n, rank, s.state == stateRunning)
	}
	return n
}
