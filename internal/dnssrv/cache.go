package dnssrv

import (
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// maxCacheTTL caps how long anything stays cached, whatever its TTL.
const maxCacheTTL = time.Hour

// cacheEntry is one cached answer (positive or negative) for a name and type.
type cacheEntry struct {
	rcode   int
	answer  []dns.RR
	ns      []dns.RR
	expires time.Time
}

// candidate is a nameserver of a delegation: an address, or a name whose
// address is looked up when the candidate is reached.
type candidate struct {
	addr netip.AddrPort
	name string
}

// delegation is a cached zone cut and its nameservers.
type delegation struct {
	servers []candidate
	expires time.Time
}

// cache holds answers and delegations, bounded in entries; when full, an
// arbitrary entry makes room (map iteration order is random enough).
type cache struct {
	mu    sync.Mutex
	max   int
	ans   map[countKey]cacheEntry
	deleg map[string]delegation
}

func newCache(max int) *cache {
	return &cache{max: max, ans: make(map[countKey]cacheEntry), deleg: make(map[string]delegation)}
}

func (c *cache) getAnswer(name string, qtype uint16, now time.Time) (cacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.ans[countKey{name, qtype}]
	if !ok || now.After(e.expires) {
		return cacheEntry{}, false
	}
	return e, true
}

func (c *cache) putAnswer(name string, qtype uint16, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.ans) >= c.max {
		for k := range c.ans {
			delete(c.ans, k)
			break
		}
	}
	c.ans[countKey{name, qtype}] = e
}

func (c *cache) getDelegation(zone string, now time.Time) ([]candidate, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.deleg[zone]
	if !ok || now.After(d.expires) {
		return nil, false
	}
	return d.servers, true
}

func (c *cache) putDelegation(zone string, d delegation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.deleg) >= c.max {
		for k := range c.deleg {
			delete(c.deleg, k)
			break
		}
	}
	c.deleg[zone] = d
}

// ttlOf returns the smallest TTL of rrs, capped at maxCacheTTL. A negative
// answer's TTL is the smaller of its SOA's TTL and MINIMUM (RFC 2308).
func ttlOf(rrs []dns.RR) time.Duration {
	ttl := uint32(maxCacheTTL / time.Second)
	for _, rr := range rrs {
		ttl = min(ttl, rr.Header().Ttl)
		if soa, ok := rr.(*dns.SOA); ok {
			ttl = min(ttl, soa.Minttl)
		}
	}
	return time.Duration(ttl) * time.Second
}
