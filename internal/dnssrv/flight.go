package dnssrv

import (
	"context"
	"sync"
)

// flight is one client question being resolved; identical questions that
// arrive meanwhile wait for its result instead of asking upstream again.
type flight struct {
	done chan struct{}
	res  result
	// shared is set when the leader finished with its context alive, so
	// that res is an answer and not the leader's cancellation.
	shared bool
}

// flights tracks the client questions being resolved; the zero value is
// ready for use.
type flights struct {
	mu sync.Mutex
	m  map[countKey]*flight
}

// resolveShared is resolve for a client question, shared with identical
// concurrent client questions (singleflight). Only client questions are
// shared, never the nested lookups of a resolution, so a leader never waits
// for another flight and flights cannot wait for each other in a cycle.
//
// The leader resolves on its own goroutine: the lab relies on upstream
// sockets being opened on the thread that serves the request (it runs in the
// vantage's network namespace), so no resolution may move to another
// goroutine.
func (r *Recursor) resolveShared(ctx context.Context, qname string, qtype uint16) result {
	key := countKey{qname, qtype}
	r.flights.mu.Lock()
	if r.flights.m == nil {
		r.flights.m = make(map[countKey]*flight)
	}
	f, busy := r.flights.m[key]
	if !busy {
		f = &flight{done: make(chan struct{})}
		r.flights.m[key] = f
	}
	r.flights.mu.Unlock()

	if busy {
		select {
		case <-f.done:
			if f.shared {
				return f.res
			}
			// The leader gave up (its caller went away): resolve for ourselves.
			return r.resolve(ctx, qname, qtype, &budget{})
		case <-ctx.Done():
			return servfail
		}
	}
	f.res = r.resolve(ctx, qname, qtype, &budget{})
	f.shared = ctx.Err() == nil
	r.flights.mu.Lock()
	delete(r.flights.m, key)
	r.flights.mu.Unlock()
	close(f.done)
	return f.res
}
