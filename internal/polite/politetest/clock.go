// Package politetest provides a fake polite.Clock, so that tests drive the
// scheduler (and anything built on it) in virtual time and assert exact
// start times.
package politetest

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/v6matrix/v6matrix/internal/polite"
)

// Clock is a fake polite.Clock. Time moves only when Advance or
// AdvanceToNext is called; timers due by then fire in deadline order. To
// step through every deadline exactly (so that a woken goroutine reads Now
// equal to its timer's deadline), call AdvanceToNext once everything else
// is blocked, e.g. after testing/synctest.Wait.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers timerHeap
	seq    uint64
}

// NewClock returns a fake clock that reads start.
func NewClock(start time.Time) *Clock {
	return &Clock{now: start}
}

// Now returns the fake time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires when the clock reaches Now()+d; a
// timer with d <= 0 fires at once.
func (c *Clock) NewTimer(d time.Duration) polite.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &timer{clock: c, when: c.now.Add(d), ch: make(chan time.Time, 1), index: -1, seq: c.seq}
	c.seq++
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	heap.Push(&c.timers, t)
	return t
}

// Sleep waits until the fake clock has moved d ahead, or ctx ends; it is
// what a fake probe calls to take time.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Pending returns the number of timers that have not fired or stopped.
func (c *Clock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Advance moves the clock d ahead, firing the timers due on the way.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	end := c.now.Add(d)
	for len(c.timers) > 0 && !c.timers[0].when.After(end) {
		c.fire()
	}
	c.now = end
}

// AdvanceToNext moves the clock to the earliest pending deadline and fires
// the timers due then. It reports false, and does nothing, if no timer is
// pending.
func (c *Clock) AdvanceToNext() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.timers) == 0 {
		return false
	}
	when := c.timers[0].when
	for len(c.timers) > 0 && c.timers[0].when.Equal(when) {
		c.fire()
	}
	return true
}

// fire pops the first timer and sends on its channel; c.mu is held.
func (c *Clock) fire() {
	t := heap.Pop(&c.timers).(*timer)
	if t.when.After(c.now) {
		c.now = t.when
	}
	t.ch <- c.now
}

type timer struct {
	clock *Clock
	when  time.Time
	ch    chan time.Time
	index int
	seq   uint64
}

func (t *timer) C() <-chan time.Time { return t.ch }

func (t *timer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.index < 0 {
		return false
	}
	heap.Remove(&c.timers, t.index)
	return true
}

// timerHeap orders timers by deadline, then creation.
type timerHeap []*timer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].when.Equal(h[j].when) {
		return h[i].when.Before(h[j].when)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}
