package polite

import (
	"slices"
	"time"
)

// Which netHeap a network is in; indexes netState.idx.
const (
	slotActive = iota
	slotTouched
)

// netEntry holds a network's sort key inline, so that sifting a heap of a
// million networks does not chase a pointer per comparison.
type netEntry struct {
	key  time.Duration
	rank uint64
	n    *netState
}

func (a netEntry) less(b netEntry) bool {
	return a.key < b.key || (a.key == b.key && a.rank < b.rank)
}

// netHeap is a min-heap of networks by (key, rank) that keeps each
// network's position in n.idx[slot]. It is hand-written because
// container/heap would allocate to box each entry.
type netHeap struct {
	e    []netEntry
	slot int
}

func (h *netHeap) set(i int, e netEntry) {
	h.e[i] = e
	e.n.idx[h.slot] = i
}

func (h *netHeap) up(i int) {
	e := h.e[i]
	for i > 0 {
		p := (i - 1) / 2
		if !e.less(h.e[p]) {
			break
		}
		h.set(i, h.e[p])
		i = p
	}
	h.set(i, e)
}

func (h *netHeap) down(i int) {
	e := h.e[i]
	n := len(h.e)
	for {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && h.e[c+1].less(h.e[c]) {
			c++
		}
		if !h.e[c].less(e) {
			break
		}
		h.set(i, h.e[c])
		i = c
	}
	h.set(i, e)
}

// update puts n in the heap with key and rank, or moves it there.
func (h *netHeap) update(n *netState, key time.Duration, rank uint64) {
	e := netEntry{key, rank, n}
	i := n.idx[h.slot]
	if i < 0 {
		h.e = append(h.e, e)
		h.up(len(h.e) - 1)
		return
	}
	old := h.e[i]
	h.e[i] = e
	if e.less(old) {
		h.up(i)
	} else {
		h.down(i)
	}
}

// remove takes n out of the heap if it is there.
func (h *netHeap) remove(n *netState) {
	i := n.idx[h.slot]
	if i < 0 {
		return
	}
	n.idx[h.slot] = -1
	last := len(h.e) - 1
	if i != last {
		moved := h.e[last]
		h.e[last] = netEntry{}
		h.e = h.e[:last]
		h.set(i, moved)
		h.down(i)
		h.up(h.e[i].n.idx[h.slot])
		return
	}
	h.e[last] = netEntry{}
	h.e = h.e[:last]
}

// untouched holds the networks no probe has started in, in the random
// order of their first address. Those queued before Run are sorted once
// (a million networks need no heap); those queued during Run go to late.
type untouched struct {
	sorted []netEntry
	next   int
	late   netHeap
}

func (u *untouched) push(n *netState, rank uint64, running bool) {
	if running {
		u.late.update(n, 0, rank)
		return
	}
	u.sorted = append(u.sorted, netEntry{0, rank, n})
}

func (u *untouched) sort() {
	slices.SortFunc(u.sorted[u.next:], func(a, b netEntry) int {
		switch {
		case a.rank < b.rank:
			return -1
		case a.rank > b.rank:
			return 1
		}
		return 0
	})
}

// peek returns the first untouched network, or nil.
func (u *untouched) peek() *netState {
	var best *netEntry
	if u.next < len(u.sorted) {
		best = &u.sorted[u.next]
	}
	if len(u.late.e) > 0 && (best == nil || u.late.e[0].less(*best)) {
		best = &u.late.e[0]
	}
	if best == nil {
		return nil
	}
	return best.n
}

// pop removes n, the network peek returned.
func (u *untouched) pop(n *netState) {
	if u.next < len(u.sorted) && u.sorted[u.next].n == n {
		u.sorted[u.next] = netEntry{}
		u.next++
		return
	}
	u.late.remove(n)
}

// fixNet restores n's place in the scheduler's network queues after its
// addresses or its last start changed.
func (s *Scheduler) fixNet(n *netState) {
	gap := n.last + s.cfg.NetGap
	if n.active.Len() > 0 {
		s.active.update(n, max(gap, n.active.Peek().key), n.active.Peek().rank)
	} else {
		s.active.remove(n)
	}
	if n.last == never {
		return // waiting in s.untouched
	}
	if n.fresh.Len() > 0 {
		s.touched.update(n, gap, n.fresh.Peek().rank)
	} else {
		s.touched.remove(n)
	}
}

// popAddr takes n's first address from the heap named by fromActive.
func popAddr(n *netState, fromActive bool) *addrState {
	if fromActive {
		return n.active.Pop()
	}
	return n.fresh.Pop()
}

// peekAddr returns n's first address of the heap named by fromActive.
func peekAddr(n *netState, fromActive bool) *addrState {
	if fromActive {
		return n.active.Peek()
	}
	return n.fresh.Peek()
}
