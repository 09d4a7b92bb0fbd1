package measure

import "sync"

// hostLocks makes the path traces of one host run one after the other: its IPv4 and
// its IPv6 address are traced in turn, not at once, so that a host (and the network
// in front of it) sees one trace at a time. Entries live only while in use, so the
// map stays as small as the number of traces in flight.
type hostLocks struct {
	mu    sync.Mutex
	locks map[string]*hostLock
}

type hostLock struct {
	sync.Mutex
	users int // holders and waiters
}

// lock takes the lock of host and returns its unlock function.
func (h *hostLocks) lock(host string) (unlock func()) {
	h.mu.Lock()
	if h.locks == nil {
		h.locks = map[string]*hostLock{}
	}
	l := h.locks[host]
	if l == nil {
		l = &hostLock{}
		h.locks[host] = l
	}
	l.users++
	h.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		h.mu.Lock()
		if l.users--; l.users == 0 {
			delete(h.locks, host)
		}
		h.mu.Unlock()
	}
}

// inUse returns how many hosts have a lock entry (for tests).
func (h *hostLocks) inUse() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.locks)
}
