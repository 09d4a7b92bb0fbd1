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
	hc.mu.Lock()
	if el, ok := hc.entries[name]; ok {
		hc.lru.MoveToFront(el)
		h := el.Value.(*cacheEntry).host
		hc.mu.Unlock()
		return h, false, nil
	}
	if c, ok := hc.inflight[name]; ok {
		hc.mu.Unlock()
		select {
		case <-c.done:
			return c.host, false, c.err
		case <-ctx.Done():
			return result.Host{}, false, ctx.Err()
		}
	}
	c := &call{done: make(chan struct{})}
	hc.inflight[name] = c
	hc.lookups++
	hc.mu.Unlock()

	c.host, c.err = hc.client.Host(ctx, name)

	hc.mu.Lock()
	delete(hc.inflight, name)
	if c.err == nil {
		hc.entries[name] = hc.lru.PushFront(&cacheEntry{name: name, host: c.host})
		for hc.lru.Len() > hc.max {
			old := hc.lru.Remove(hc.lru.Back()).(*cacheEntry)
			delete(hc.entries, old.name)
		}
	}
	hc.mu.Unlock()
	close(c.done)
	return c.host, c.err == nil, c.err
}

// Lookups returns how many lookups the cache let through.
func (hc *HostCache) Lookups() int64 {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	return hc.lookups
}
