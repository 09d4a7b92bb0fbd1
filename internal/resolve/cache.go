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
//
// A cache that reads a store (ReadStored) also knows which hosts a committed batch holds
// (Saved): a host is reported unsaved until then, so that every domain using it carries
// its row, and it is not evicted before, so that it is never looked up twice. A miss
// then asks the store before DNS once the store may hold a host the cache lacks: a host
// stored is never looked up again, nor its row overwritten by a later lookup.
type HostCache struct {
	client *Client
	max    int
	stored StoredFunc // nil: no store read, eviction by recency alone

	mu       sync.Mutex
	lru      *list.List // of *cacheEntry, most recent first
	entries  map[string]*list.Element
	inflight map[string]*call
	lookups  int64
	// readStored is set once the store may hold a host the cache lacks: from the start
	// (ReadStored's now) or after the first eviction.
	readStored bool
}

// StoredFunc returns the hosts a store holds among names; a name it lacks is left out.
type StoredFunc func(ctx context.Context, names []string) (map[string]result.Host, error)

type cacheEntry struct {
	name  string
	host  result.Host
	saved bool // a committed batch holds the host's row
}

type call struct {
	done  chan struct{}
	host  result.Host
	saved bool
	err   error
}

// NewHostCache returns a cache holding at most max hosts (and the hosts not saved yet,
// when it reads a store).
func NewHostCache(c *Client, max int) *HostCache {
	return &HostCache{client: c, max: max, lru: list.New(), entries: map[string]*list.Element{}, inflight: map[string]*call{}}
}

// ReadStored makes the cache read the hosts it misses from stored before it looks them
// up: from now on when now is set (a resume, whose earlier invocations saved hosts),
// else after its first eviction. Call it before the first lookup; the caller then
// reports each committed batch's hosts with Saved.
func (hc *HostCache) ReadStored(stored StoredFunc, now bool) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	hc.stored, hc.readStored = stored, now
}

// Saved records that a committed batch holds the rows of these hosts (names the cache
// does not hold are ignored): domains that use them later need not carry them, and they
// may be evicted.
func (hc *HostCache) Saved(names []string) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	for _, name := range names {
		if el, ok := hc.entries[name]; ok {
			el.Value.(*cacheEntry).saved = true
		}
	}
	hc.evict()
}

// evict drops the least recently used hosts beyond max, but none that is not saved
// while the cache reads a store: its lookup would be repeated before its row is stored.
// hc.mu is held.
func (hc *HostCache) evict() {
	for el := hc.lru.Back(); el != nil && hc.lru.Len() > hc.max; {
		prev := el.Prev()
		if e := el.Value.(*cacheEntry); e.saved || hc.stored == nil {
			hc.lru.Remove(el)
			delete(hc.entries, e.name)
			hc.readStored = hc.stored != nil
		}
		el = prev
	}
}

// Hosts returns the hosts of shared names (through the cache) and of own names (not
// cached: a domain's own www, ntp and time), looking up everything not cached nor
// stored in one batch of queries. unsaved[i] reports that no committed batch is known
// to hold shared[i]'s row: the caller stores it with its domain. Without ReadStored,
// that is the host this call looked up.
func (hc *HostCache) Hosts(ctx context.Context, shared []string, own []HostQuery) (hosts []result.Host, unsaved []bool, ownHosts []result.Host, err error) {
	hosts, unsaved = make([]result.Host, len(shared)), make([]bool, len(shared))
	var waitFor, mine map[int]*call // made when needed: most names are cached
	var missed []string
	hc.mu.Lock()
	tracked := hc.stored != nil
	for i, name := range shared {
		if el, ok := hc.entries[name]; ok {
			hc.lru.MoveToFront(el)
			e := el.Value.(*cacheEntry)
			hosts[i], unsaved[i] = e.host, tracked && !e.saved
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
		if mine == nil {
			mine = map[int]*call{}
		}
		mine[i] = c
		missed = append(missed, name)
	}
	read := hc.readStored && len(missed) > 0
	hc.mu.Unlock()

	var found map[string]result.Host
	if read {
		found, err = hc.stored(ctx, missed)
	}
	var batch []HostQuery
	var got []result.Host
	if err == nil {
		for _, name := range missed {
			if _, ok := found[name]; !ok {
				batch = append(batch, HostQuery{Name: name})
			}
		}
		if len(batch)+len(own) > 0 {
			got, err = hc.client.Hosts(ctx, append(batch, own...))
		}
	}
	hc.mu.Lock()
	hc.lookups += int64(len(batch))
	k := 0
	for i := range shared {
		c := mine[i]
		if c == nil {
			continue
		}
		if err == nil {
			h, ok := found[shared[i]]
			if !ok {
				h, k = got[k], k+1
			}
			c.host, c.saved = h, ok
			hosts[i], unsaved[i] = h, !ok
			hc.entries[shared[i]] = hc.lru.PushFront(&cacheEntry{name: shared[i], host: h, saved: ok})
		}
		c.err = err
		delete(hc.inflight, shared[i])
	}
	hc.evict()
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
			// Another domain looked it up: it is not saved before that domain's batch
			// commits, which may come after this one's.
			hosts[i], unsaved[i] = c.host, tracked && !c.saved
		case <-ctx.Done():
			return nil, nil, nil, ctx.Err()
		}
	}
	return hosts, unsaved, got[len(batch):], nil
}

// Lookups returns how many hosts the cache looked up (neither cached nor stored).
func (hc *HostCache) Lookups() int64 {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	return hc.lookups
}
