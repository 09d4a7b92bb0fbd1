package polite

import (
	"context"
	"encoding/binary"
	"math"
	"net/netip"
	"time"

	"github.com/v6matrix/v6matrix/internal/heapq"
)

// never is the time of something that has not happened. It is far enough
// from math.MinInt64 that adding a gap cannot overflow.
const never = time.Duration(math.MinInt64 / 4)

// forever is the eligible time of something that cannot start.
const forever = time.Duration(math.MaxInt64 / 4)

// job is a queued Task without its address, which its addrState holds.
type job struct {
	run   func(context.Context)
	port  uint16
	proto Proto
}

// portUse records when one address last saw activity on one port. An
// address's list is kept sorted by end, oldest first.
type portUse struct {
	end   time.Duration
	port  uint16
	proto Proto
}

// portHist is an address's ports seen in the port window, in order of end: its own
// scheduler's (addrState.hist), or, under an Exclusion, shared by the schedulers of it
// (Exclusion.hists: the probes' and the name server checks' ports together).
type portHist struct {
	ports []portUse
}

// addrState is one address: its queued jobs and the history the limits need.
// Times are offsets from Scheduler.origin.
type addrState struct {
	addr netip.Addr
	net  *netState
	jobs []job
	// hist is its ports, nil until one is seen; under an Exclusion they are the
	// Exclusion's (Scheduler.portsOf).
	hist  *portHist
	last  time.Duration // start of the latest probe, never if none
	key   time.Duration // earliest start allowed by this address's own limits
	rank  uint64        // random tie-break, fixed by the seed
	index int           // position in net.active or net.fresh; -1 if in neither
	cur   job           // the job in flight when busy
	busy  bool
	// parked: set aside while another scheduler has the address in flight (Exclusion).
	parked bool
	// quietAt is when its history stops limiting it, once it has no job left
	// (Scheduler.forget); it tells a current entry of Scheduler.idle from a stale one.
	quietAt time.Duration
}

// netState is one network (/24, /48): its addresses waiting to start.
// Addresses that have started a probe are in active (by key); those that
// have not are in fresh (by rank). See Scheduler.next for the order.
type netState struct {
	last   time.Duration // latest start in the network, never if none
	active heapq.Heap[*addrState]
	fresh  heapq.Heap[*addrState]
	idx    [2]int // position in Scheduler.active and .touched; -1 if absent
	// away: out of the untouched queue, though never started, because its only
	// address waiting is parked.
	away bool
	// addrs is how many of its addresses the scheduler keeps (Scheduler.forget).
	addrs int
}

// Rank is the random rank of an address under a seed, the keyed hash that orders
// addresses here and in the probe stage's queues: it mixes the seed and the address
// (splitmix64), so the order depends on the set of addresses and the seed, not on the
// order they are added in, and is never a numerical sweep.
func Rank(a netip.Addr, seed int64) uint64 { return rankOf(Dest(a), seed) }

// rankOf is Rank of an unmapped address.
func rankOf(a netip.Addr, seed int64) uint64 {
	b := a.As16()
	h := mix(uint64(seed) ^ binary.BigEndian.Uint64(b[:8]))
	return mix(h ^ binary.BigEndian.Uint64(b[8:]))
}

func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// prune forgets ports whose activity ended at or before cutoff: they can no
// longer share a window with anything that starts later.
func (h *portHist) prune(cutoff time.Duration) {
	i := 0
	for i < len(h.ports) && h.ports[i].end <= cutoff {
		i++
	}
	if i > 0 {
		h.ports = append(h.ports[:0], h.ports[i:]...)
	}
}

// inWindow returns the ports seen in the window that ends at now (a shared history
// also keeps older ones, for schedulers with a longer window).
func (h *portHist) inWindow(now, window time.Duration) []portUse {
	i := len(h.ports)
	for i > 0 && h.ports[i-1].end > now-window {
		i--
	}
	return h.ports[i:]
}

// seen reports whether j's port is among ports (or j has none), so that starting j
// adds no distinct port.
func seen(ports []portUse, j job) bool {
	if j.proto == ProtoICMP {
		return true
	}
	for _, p := range ports {
		if p.port == j.port && p.proto == j.proto {
			return true
		}
	}
	return false
}

// portReady is the earliest time j may start under the port-window rule, as known at
// now. It needs the ports seen in the window, j's included, to number at most max;
// the others expire oldest first, window after their end.
func (h *portHist) portReady(j job, now, window time.Duration, max int) time.Duration {
	if window == 0 || h == nil {
		return never
	}
	ports := h.inWindow(now, window)
	if seen(ports, j) || len(ports)+1 <= max {
		return never
	}
	return ports[len(ports)-max].end + window
}

// record adds that j's port saw activity until now (ports stay in order of end).
func (h *portHist) record(j job, now time.Duration) {
	for i, p := range h.ports {
		if p.port == j.port && p.proto == j.proto {
			h.ports = append(h.ports[:i], h.ports[i+1:]...)
			break
		}
	}
	h.ports = append(h.ports, portUse{end: now, port: j.port, proto: j.proto})
}

// eligible is the earliest start allowed by the address gap and the port rule (ports
// h) for the best of a's jobs, as known at now. A port seen now may expire before
// that time (and, under an Exclusion, another scheduler may add one), so take checks
// again at the start.
func (a *addrState) eligible(now time.Duration, c *Config, h *portHist) time.Duration {
	best := forever
	for _, j := range a.jobs {
		best = min(best, h.portReady(j, now, c.PortWindow, c.MaxPortsPerWindow))
	}
	return max(a.last+c.AddrGap, best)
}

// take removes and returns the job to start at now (ports h): one that adds no new
// port if any may start, else the first (in Add order) that may. It reports false if
// none may start now.
func (a *addrState) take(now time.Duration, c *Config, h *portHist) (job, bool) {
	var ports []portUse
	if h != nil {
		ports = h.inWindow(now, c.PortWindow)
	}
	pick := -1
	for i, j := range a.jobs {
		if h.portReady(j, now, c.PortWindow, c.MaxPortsPerWindow) > now {
			continue
		}
		if c.PortWindow == 0 || seen(ports, j) {
			pick = i
			break
		}
		if pick < 0 {
			pick = i
		}
	}
	if pick < 0 {
		return job{}, false
	}
	j := a.jobs[pick]
	a.jobs = append(a.jobs[:pick], a.jobs[pick+1:]...)
	return j, true
}

// Less orders the addresses of a network's heaps (heapq): by eligible time, then
// rank, then address.
func (a *addrState) Less(b *addrState) bool {
	if a.key != b.key {
		return a.key < b.key
	}
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return a.addr.Less(b.addr)
}

// SetIndex keeps an address's position in its network's heap (heapq).
func (a *addrState) SetIndex(i int) { a.index = i }
