package measure

import (
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"time"

	"github.com/v6matrix/v6matrix/internal/heapq"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/result"
)

// kindSet is a set of measurement kinds, one bit per entry of result.Kinds.
type kindSet uint16

func kindBit(kind string) kindSet { return 1 << slices.Index(result.Kinds, kind) }

// setOf returns the set of kinds.
func setOf(kinds []string) kindSet {
	var s kindSet
	for _, k := range kinds {
		s |= kindBit(k)
	}
	return s
}

// list returns the kinds of s in result.Kinds order.
func (s kindSet) list() []string {
	var out []string
	for i, k := range result.Kinds {
		if s&(1<<i) != 0 {
			out = append(out, k)
		}
	}
	return out
}

func (s kindSet) len() int { return bits.OnesCount16(uint16(s)) }

// localKinds are the kinds measured without sending anything to the address.
var localKinds = kindBit(result.KindPTR) | kindBit(result.KindGeo)

// waiting is an address whose probes wait outside the scheduler's window: a compact
// record (about 100 bytes), so that a run's pending addresses cost little memory.
type waiting struct {
	ip    netip.Addr
	rank  uint64  // polite.Rank: the order within its network
	kinds kindSet // probes (no local kinds) still to run
	www   string
	mx    string
	host  string
	ntp   bool
}

// network is one network (--net-bits-v4/-v6) of the probe stage: its addresses waiting
// outside the window, in rank order, and what the bound and the LPT order need.
type network struct {
	prefix  netip.Prefix
	rank    uint64
	queue   heapq.Heap[*waiting]
	work    int // probes of its addresses queued or in the window, not finished
	inWin   int // its addresses in the window
	starts  int // probes it is known to need in this invocation (the bound)
	addrs   int // its addresses known in this invocation
	heapIdx int // position in planner.ready; -1 when absent
}

// planner decides which addresses enter the scheduler's window: the window holds at
// most window addresses, and at most perNet of one network (enough to keep that
// network at its --net-gap limit, no more); it is refilled from the network with the
// most remaining work first (longest processing time first), so that the network that
// bounds the run starts first and stays at its limit all through the run. It also
// computes the politeness lower bound of the stage as addresses become known. It is
// plain data, with no clock or network: the stage calls it under its lock.
type planner struct {
	cfg    polite.Config
	window int
	perNet int
	ports  func(kind string) (polite.Proto, uint16)
	// perProbe is the time an address takes per probe: at first from its limits alone,
	// then the longest of that and the mean seen (observe), since real probes wait for
	// answers and timeouts.
	perProbe  time.Duration
	minPer    time.Duration
	seen      time.Duration // mean time per probe of the addresses finished
	finishedN int

	nets    map[netip.Prefix]*network
	ready   heapq.Heap[*network] // networks with addresses waiting and room in the window
	waiting int                  // addresses waiting outside the window
	inWin   int

	// The bound's terms: probe starts in all, the network and the address that need
	// the longest at their limits.
	starts   int
	worstNet *network
	addrMin  time.Duration
	addrIP   netip.Addr
	addrN    int
}

// newPlanner returns a planner for the limits of cfg; ports gives a kind's destination
// port (ICMP: none). perNet comes from the minimum time of an address with every probe
// of ports (see netSlots).
func newPlanner(cfg polite.Config, window int, ports func(string) (polite.Proto, uint16), kinds kindSet) *planner {
	pl := &planner{cfg: cfg, window: max(window, 1), ports: ports, nets: map[netip.Prefix]*network{}}
	if n := kinds.len(); n > 0 {
		pl.minPer = pl.minTime(kinds) / time.Duration(n)
	}
	pl.perProbe = pl.minPer
	pl.perNet = netSlots(cfg, pl.window, 1, pl.perProbe)
	return pl
}

// observe records that an address took d for its n probes, from entering the window
// to its last probe's end. When the mean time per probe has grown by a quarter, each
// network's share of the window grows with it, so that slow probes do not leave a
// network below its --net-gap pace.
func (pl *planner) observe(d time.Duration, n int) {
	if n == 0 {
		return
	}
	pl.finishedN++
	per := d / time.Duration(n)
	pl.seen += (per - pl.seen) / time.Duration(min(pl.finishedN, 100)) // the mean, then a moving one
	if pl.seen <= pl.perProbe+pl.perProbe/4 || pl.finishedN < 8 {
		return
	}
	pl.perProbe = max(pl.seen, pl.minPer)
	if k := netSlots(pl.cfg, pl.window, 1, pl.perProbe); k > pl.perNet {
		pl.perNet = k
		for _, nw := range pl.nets {
			pl.fix(nw)
		}
	}
}

// netSlots is how many addresses of one network the window holds: an address takes at
// least d for its n probes, so a network whose starts are --net-gap apart needs about
// d/(n × gap) addresses under way to start one every gap; twice that, and one more,
// covers probes that take longer than their minimum. No --net-gap: no limit but the
// window's.
func netSlots(cfg polite.Config, window, n int, d time.Duration) int {
	if cfg.NetGap <= 0 || n == 0 {
		return window
	}
	k := int(math.Ceil(2*float64(d)/(float64(n)*float64(cfg.NetGap)))) + 1
	return min(max(k, 2), window)
}

// minTime is the least time the limits allow one address to run the probes of ks:
// its starts at least --addr-gap apart, and its distinct ports in groups of --max-ports
// at least --port-window apart (the first start of a port M places later in the order
// of first starts comes at least a window after; see docs/POLITENESS.md).
func (pl *planner) minTime(ks kindSet) time.Duration {
	n := ks.len()
	if n == 0 {
		return 0
	}
	d := time.Duration(n-1) * pl.cfg.AddrGap
	if pl.cfg.PortWindow > 0 {
		type port struct {
			proto polite.Proto
			port  uint16
		}
		seen := map[port]bool{}
		for _, k := range ks.list() {
			if proto, p := pl.ports(k); proto != polite.ProtoICMP {
				seen[port{proto, p}] = true
			}
		}
		if ports := len(seen); ports > 0 {
			d = max(d, time.Duration((ports-1)/pl.cfg.MaxPortsPerWindow)*pl.cfg.PortWindow)
		}
	}
	return d
}

func (pl *planner) prefixOf(ip netip.Addr) netip.Prefix {
	return pl.cfg.Network(ip)
}

// add queues the probes of w (an address new to this invocation when first) outside
// the window and counts them in the bound; it returns the record, which grow may
// extend while it waits.
func (pl *planner) add(w waiting, first bool) *waiting {
	n := w.kinds.len()
	w.rank = polite.Rank(w.ip, pl.cfg.Seed)
	p := pl.prefixOf(w.ip)
	nw := pl.nets[p]
	if nw == nil {
		nw = &network{prefix: p, rank: w.rank, heapIdx: -1}
		pl.nets[p] = nw
	}
	nw.queue.Push(&w)
	pl.waiting++
	if first {
		nw.addrs++
	}
	pl.count(nw, &w, n)
	return &w
}

// grow adds kinds to w, still waiting.
func (pl *planner) grow(w *waiting, kinds kindSet) {
	kinds &^= w.kinds
	w.kinds |= kinds
	pl.count(pl.nets[pl.prefixOf(w.ip)], w, kinds.len())
}

// count adds n probes of w, in nw, to the work and the bound.
func (pl *planner) count(nw *network, w *waiting, n int) {
	nw.work += n
	nw.starts += n
	pl.starts += n
	if pl.worstNet == nil || nw.starts > pl.worstNet.starts {
		pl.worstNet = nw
	}
	if d := pl.minTime(w.kinds); d > pl.addrMin {
		pl.addrMin, pl.addrIP, pl.addrN = d, w.ip, w.kinds.len()
	}
	pl.fix(nw)
}

// next takes the address to put into the window, if there is room and one waits in a
// network below its share.
func (pl *planner) next() (*waiting, bool) {
	if pl.inWin >= pl.window || pl.ready.Len() == 0 {
		return nil, false
	}
	nw := pl.ready.Peek()
	w := nw.queue.Pop()
	pl.waiting--
	pl.inWin++
	nw.inWin++
	pl.fix(nw)
	return w, true
}

// finished records that the address w (taken by next) has run its probes.
func (pl *planner) finished(w *waiting) {
	nw := pl.nets[pl.prefixOf(w.ip)]
	pl.inWin--
	nw.inWin--
	nw.work -= w.kinds.len()
	pl.fix(nw)
}

// fix puts nw in ready, or takes it out, and restores its place by work.
func (pl *planner) fix(nw *network) {
	want := nw.queue.Len() > 0 && nw.inWin < pl.perNet
	switch {
	case want && nw.heapIdx < 0:
		pl.ready.Push(nw)
	case want:
		pl.ready.Fix(nw.heapIdx)
	case nw.heapIdx >= 0:
		pl.ready.Remove(nw.heapIdx)
	}
}

// bound returns the politeness lower bound of the probes known so far and what sets
// it, given how long the DNS stage has taken (so far, while it runs): the largest of
// that, every probe start at --rate, the network with the most starts at --net-gap, and
// the address that needs the longest at its own limits. The probes that did not wait
// (measured earlier in the run) are not counted: it is the bound of this invocation.
func (pl *planner) bound(dns time.Duration) (time.Duration, string) {
	lb, why := dns, "the DNS stage"
	if !math.IsInf(pl.cfg.Rate, 1) && pl.starts > 0 {
		if d := time.Duration(float64(pl.starts-1) / pl.cfg.Rate * float64(time.Second)); d > lb {
			lb, why = d, fmt.Sprintf("%d probes at --rate %g/s", pl.starts, pl.cfg.Rate)
		}
	}
	if nw := pl.worstNet; nw != nil && pl.cfg.NetGap > 0 {
		if d := time.Duration(nw.starts-1) * pl.cfg.NetGap; d > lb {
			lb, why = d, fmt.Sprintf("%s has %d addresses (%d probes at --net-gap %v)", nw.prefix, nw.addrs, nw.starts, pl.cfg.NetGap)
		}
	}
	if pl.addrMin > lb {
		lb, why = pl.addrMin, fmt.Sprintf("%s needs %d probes at --addr-gap %v and --max-ports %d per --port-window %v",
			pl.addrIP, pl.addrN, pl.cfg.AddrGap, pl.cfg.MaxPortsPerWindow, pl.cfg.PortWindow)
	}
	return lb, why
}

// Less orders a network's waiting addresses (network.queue, heapq) by rank.
func (w *waiting) Less(v *waiting) bool { return w.rank < v.rank }

// SetIndex does nothing: a waiting address leaves its queue only first.
func (w *waiting) SetIndex(int) {}

// Less orders networks in planner.ready (heapq) by remaining work, most first, then
// by rank.
func (nw *network) Less(o *network) bool {
	if nw.work != o.work {
		return nw.work > o.work
	}
	return nw.rank < o.rank
}

// SetIndex keeps nw's position in planner.ready (heapq).
func (nw *network) SetIndex(i int) { nw.heapIdx = i }
