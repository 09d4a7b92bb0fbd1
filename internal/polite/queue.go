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

// addrState is one address: its queued jobs and the history the limits need.
// Times are offsets from Scheduler.origin.
type addrState struct {
	addr  netip.Addr
	net   *netState
	jobs  []job
	ports []portUse
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
func Rank(a netip.Addr, seed int64) uint64 { return rankOf(a.Unmap(), seed) }

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
func (a *addrState) prune(cutoff time.Duration) {
	i := 0
	for i < len(a.ports) && a.ports[i].end <= cutoff {
		i++
	}
	if i > 0 {
		a.ports = append(a.ports[:0], a.ports[i:]...)
	}
}

// seen reports whether j's port is in the current window (or j has none), so
// that starting j adds no distinct port.
func (a *addrState) seen(j job) bool {
	if j.proto == ProtoICMP {
		return true
	}
	for _, p := range a.ports {
		if p.port == j.port && p.proto == j.proto {
			return true
		}
	}
	return false
}

// portReady is the earliest time j may start under the port-window rule.
// It needs the ports seen in the window, j's included, to number at most
// max; the others expire oldest first, PortWindow after their end.
func (a *addrState) portReady(j job, window time.Duration, max int) time.Duration {
	if window == 0 || a.seen(j) || len(a.ports)+1 <= max {
		return never
	}
	return a.ports[len(a.ports)-max].end + window
}

// eligible is the earliest start allowed by the address gap and the port
// rule for the best of a's jobs, as known at now. A port seen now may expire
// before that time, so take checks again at the start.
func (a *addrState) eligible(now time.Duration, c *Config) time.Duration {
	a.prune(now - c.PortWindow)
	best := forever
	for _, j := range a.jobs {
		best = min(best, a.portReady(j, c.PortWindow, c.MaxPortsPerWindow))
	}
	return max(a.last+c.AddrGap, best)
}

// take removes and returns the job to start at now: one that adds no new
// port if any may start, else the first (in Add order) that may. It
// reports false if none may start now.
func (a *addrState) take(now time.Duration, c *Config) (job, bool) {
	a.prune(now - c.PortWindow)
	pick := -1
	for i, j := range a.jobs {
		if a.portReady(j, c.PortWindow, c.MaxPortsPerWindow) > now {
			continue
		}
		if c.PortWindow == 0 || a.seen(j) {
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

// ended records that the job in flight ended at now.
func (a *addrState) ended(now time.Duration, window time.Duration) {
	a.busy = false
	j := a.cur
	a.cur = job{}
	if window == 0 || j.proto == ProtoICMP {
		return
	}
	for i, p := range a.ports {
		if p.port == j.port && p.proto == j.proto {
			a.ports = append(a.ports[:i], a.ports[i+1:]...)
			break
		}
	}
	a.ports = append(a.ports, portUse{end: now, port: j.port, proto: j.proto})
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
