package resolve

import (
	"container/list"
	"context"
	"sync"

	"github.com/v6matrix/v6matrix/internal/result"
)

// HostCache looks each host up once per run: concurrent requests for one name share a
// single lookup, and finished lookups are kept in an LRU of bounded size so that memory
// stays flat on any list length (a host shared by many domains stays hot).
type HostCache struct {
	client *Client
	max    int

	mu       sync.Mutex
	lru      *list.List // of *cacheEntry, most recent first
	entries  map[string]*list.Element
	inflight map[string]*call
	lookups  int64
}

type cacheEntry struct {
	name string
	host result.Host
}

type call struct {
	done chan struct{}
	host result.Host
	err  error
}

// NewHostCache returns a cache holding at most max hosts.
func NewHostCache(c *Client, max int) *HostCache {
	return &HostCache{client: c, max: max, lru: list.New(), entries: map[string]*list.Element{}, inflight: map[string]*call{}}
}

// Host returns the host's addresses, looking it up only on the first request. fresh
// reports whether this call did the lookup (the caller then stores the host).
func (hc *HostCache) Host(ctx context.Context, name string) (h result.Host, fresh bool, err error) {
	hs, fr, _, err := hc.Hosts(ctx, []string{name}, nil)
	if err != nil {
		return result.Host{}, false, err
	}
	return hs[0], fr[0], nil
}

// Hosts returns the hosts of shared names (through the cache: fresh[i] reports whether
// this call looked shared[i] up) and of own names (not cached: a domain's own www, ntp
// and time), looking up everything not cached in one batch of queries.
func (hc *HostCache) Hosts(ctx context.Context, shared []string, own []HostQuery) (hosts []result.Host, fresh []bool, ownHosts []result.Host, err error) {
	hosts, fresh = make([]result.Host, len(shared)), make([]bool, len(shared))
	var waitFor, mine map[int]*call // made when needed: most names are cached
	var batch []HostQuery
	hc.mu.Lock()
	for i, name := range shared {
		if el, ok := hc.entries[name]; ok {
			hc.lru.MoveToFront(el)
			hosts[i] = el.Value.(*cacheEntry).host
			continue
		}
		if c, ok := hc.inflight[name]; ok {
			if waitFor == nil {
				waitFor = map[int]*call{}
			}
			waitFor[i] = c
			continue
		}
		c := &call{done: make(chan struct{})}
		hc.inflight[name] = c
		hc.lookups++
		if mine == nil {
			mine = map[int]*call{}
		}
		mine[i] = c
		batch = append(batch, HostQuery{Name: name})
	}
	hc.mu.Unlock()

	var got []result.Host
	if len(batch)+len(own) > 0 {
		got, err = hc.client.Hosts(ctx, append(batch, own...))
	}
	hc.mu.Lock()
	k := 0
	for i := range shared {
		c := mine[i]
		if c == nil {
			continue
		}
		if err == nil {
			c.host = got[k]
			hosts[i], fresh[i] = c.host, true
			hc.entries[shared[i]] = hc.lru.PushFront(&cacheEntry{name: shared[i], host: c.host})
		}
		c.err = err
		k++
		delete(hc.inflight, shared[i])
	}
	for hc.lru.Len() > hc.max {
		old := hc.lru.Remove(hc.lru.Back()).(*cacheEntry)
		delete(hc.entries, old.name)
	}
	hc.mu.Unlock()
	for _, c := range mine {
		close(c.done)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	for i, c := range waitFor {
		select {
		case <-c.done:
			if c.err != nil {
				return nil, nil, nil, c.err
			}
			hosts[i] = c.host
		case <-ctx.Done():
			return nil, nil, nil, ctx.Err()
		}
	}
	return hosts, fresh, got[len(batch):], nil
}

// Lookups returns how many lookups the cache let through.
func (hc *HostCache) Lookups() int64 {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	return hc.lookups
}
