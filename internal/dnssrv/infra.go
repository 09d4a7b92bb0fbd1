package dnssrv

import (
	"cmp"
	"container/list"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Infrastructure cache parameters. Like Unbound's infra cache and BIND's
// ADB, the recursor remembers per server address how fast it answers and
// whether it stopped answering, so that a dead server of a nameserver set
// does not cost a timeout on every uncached query.
const (
	// backoffAfter consecutive timeouts put a server in back-off: it is
	// skipped, and tried only once every other server of its set failed.
	// Fewer timeouts only demote it behind the servers without timeouts.
	backoffAfter = 2
	// backoffDuration is how long a timeout demotes a server. When it ends,
	// one query probes the server first; a reply clears its timeouts, a
	// timeout renews the period.
	backoffDuration = 30 * time.Second
	// rttBand groups servers whose smoothed RTTs differ by less than this
	// (Unbound's RTT band); inside a band the delegation's order is kept, so
	// that the choice is deterministic.
	rttBand = 400 * time.Millisecond
	// maxInfraDefault bounds the infrastructure cache when
	// Recursor.MaxInfraEntries is 0.
	maxInfraDefault = 10000
)

// infraEntry is what the recursor knows about one server address.
type infraEntry struct {
	addr netip.AddrPort
	// srtt is the smoothed round-trip time of its replies (0: none yet).
	srtt time.Duration
	// timeouts counts the consecutive queries it did not answer.
	timeouts int
	// until ends the demotion or back-off of its last timeout.
	until time.Time
}

// infraCache holds infraEntries for at most max addresses, dropping the
// least recently used; safe for concurrent use.
type infraCache struct {
	mu  sync.Mutex
	max int
	lru *list.List // of *infraEntry, most recently used at the front
	m   map[netip.AddrPort]*list.Element
}

func newInfraCache(max int) *infraCache {
	return &infraCache{max: max, lru: list.New(), m: make(map[netip.AddrPort]*list.Element)}
}

// entry returns addr's entry, creating it (and evicting the least recently
// used one if the cache is full) when create is set. c.mu must be held.
func (c *infraCache) entry(addr netip.AddrPort, create bool) *infraEntry {
	if el, ok := c.m[addr]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*infraEntry)
	}
	if !create {
		return nil
	}
	if c.lru.Len() >= c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.m, old.Value.(*infraEntry).addr)
	}
	e := &infraEntry{addr: addr}
	c.m[addr] = c.lru.PushFront(e)
	return e
}

// replied records a reply from addr (whatever its rcode: the server is
// up) after rtt; it ends any back-off.
func (c *infraCache) replied(addr netip.AddrPort, rtt time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entry(addr, true)
	if e.srtt == 0 {
		e.srtt = rtt
	} else {
		e.srtt = (7*e.srtt + rtt) / 8 // as TCP and BIND smooth RTTs
	}
	e.timeouts, e.until = 0, time.Time{}
}

// timedOut records a query addr did not answer: it demotes addr, or puts
// it in back-off from the backoffAfter-th consecutive one, for
// backoffDuration from now.
func (c *infraCache) timedOut(addr netip.AddrPort, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entry(addr, true)
	e.timeouts++
	e.until = now.Add(backoffDuration)
}

// Server tiers, in the order they are tried.
const (
	tierProbe   = iota // demotion or back-off just ended: this query checks it first
	tierHealthy        // no timeout since its last reply
	tierSuspect        // timed out, fewer than backoffAfter times in a row
	tierBackoff        // in back-off: tried only after every other server
)

// order sorts addrs into the order a query should try them and splits off
// the servers in back-off (deferred, fewest timeouts first). The first query to
// see a demotion ended claims the probe: the server stays demoted for
// concurrent queries until the probe's reply or timeout.
func (c *infraCache) order(addrs []netip.AddrPort, now time.Time) (use, deferred []netip.AddrPort) {
	type ranked struct {
		addr           netip.AddrPort
		tier, timeouts int
		band           time.Duration
	}
	rs := make([]ranked, 0, len(addrs))
	c.mu.Lock()
	for _, a := range addrs {
		r := ranked{addr: a, tier: tierHealthy}
		if e := c.entry(a, false); e != nil {
			r.timeouts, r.band = e.timeouts, e.srtt/rttBand
			switch {
			case e.timeouts == 0:
			case !now.Before(e.until):
				r.tier = tierProbe
				e.until = now.Add(backoffDuration)
			case e.timeouts >= backoffAfter:
				r.tier = tierBackoff
			default:
				r.tier = tierSuspect
			}
		}
		rs = append(rs, r)
	}
	c.mu.Unlock()
	slices.SortStableFunc(rs, func(a, b ranked) int {
		return cmp.Or(cmp.Compare(a.tier, b.tier), cmp.Compare(a.timeouts, b.timeouts), cmp.Compare(a.band, b.band))
	})
	for _, r := range rs {
		if r.tier == tierBackoff {
			deferred = append(deferred, r.addr)
		} else {
			use = append(use, r.addr)
		}
	}
	return use, deferred
}
