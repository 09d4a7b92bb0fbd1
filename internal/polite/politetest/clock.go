// Package politetest provides a fake polite.Clock, so that tests drive the
// scheduler (and anything built on it) in virtual time and assert exact
// start times.
package politetest

import (
	"context"
	"sync"
	"time"

	"github.com/v6matrix/v6matrix/internal/heapq"
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
	timers heapq.Heap[*timer]
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
	c.timers.Push(t)
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
	return c.timers.Len()
}

// Advance moves the clock d ahead, firing the timers due on the way.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	end := c.now.Add(d)
	for c.timers.Len() > 0 && !c.timers.Peek().when.After(end) {
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
	if c.timers.Len() == 0 {
		return false
	}
	when := c.timers.Peek().when
	for c.timers.Len() > 0 && c.timers.Peek().when.Equal(when) {
		c.fire()
	}
	return true
}

// fire pops the first timer and sends on its channel; c.mu is held.
func (c *Clock) fire() {
	t := c.timers.Pop()
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
	c.timers.Remove(t.index)
	return true
}

// Less orders the clock's timers (heapq) by deadline, then creation.
func (t *timer) Less(u *timer) bool {
	if !t.when.Equal(u.when) {
		return t.when.Before(u.when)
	}
	return t.seq < u.seq
}

// SetIndex keeps t's position in the clock's timers (heapq).
func (t *timer) SetIndex(i int) { t.index = i }
