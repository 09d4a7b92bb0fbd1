// Package heapq is the priority queue of the schedulers (internal/polite's addresses,
// internal/measure's networks and name servers): a binary heap whose elements are told
// their position, so that one can be fixed or removed when its key changes. The zero
// Heap is empty and ready to use.
package heapq

// Elem is what a Heap holds: usually a pointer to a struct that orders itself against
// another and keeps its position (-1 once out of the heap).
type Elem[T any] interface {
	Less(T) bool
	SetIndex(int)
}

// Heap is a min-heap of elements ordered by their Less.
type Heap[T Elem[T]] struct {
	s []T
}

// Len returns how many elements the heap holds.
func (h *Heap[T]) Len() int { return len(h.s) }

// Peek returns the least element; the heap must not be empty.
func (h *Heap[T]) Peek() T { return h.s[0] }

// Push adds x.
func (h *Heap[T]) Push(x T) {
	h.s = append(h.s, x)
	x.SetIndex(len(h.s) - 1)
	h.up(len(h.s) - 1)
}

// Pop removes and returns the least element; the heap must not be empty.
func (h *Heap[T]) Pop() T { return h.Remove(0) }

// Remove removes and returns the element at position i.
func (h *Heap[T]) Remove(i int) T {
	x, n := h.s[i], len(h.s)-1
	if i != n {
		h.swap(i, n)
	}
	var zero T
	h.s[n] = zero
	h.s = h.s[:n]
	if i != n && !h.down(i) {
		h.up(i)
	}
	x.SetIndex(-1)
	return x
}

// Fix restores the order after the element at position i changed its key.
func (h *Heap[T]) Fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h *Heap[T]) swap(i, j int) {
	h.s[i], h.s[j] = h.s[j], h.s[i]
	h.s[i].SetIndex(i)
	h.s[j].SetIndex(j)
}

func (h *Heap[T]) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if !h.s[j].Less(h.s[i]) {
			return
		}
		h.swap(i, j)
		j = i
	}
}

// down moves the element at i down; it reports whether it moved.
func (h *Heap[T]) down(i0 int) bool {
	i, n := i0, len(h.s)
	for {
		j := 2*i + 1
		if j >= n || j < 0 {
			break
		}
		if r := j + 1; r < n && h.s[r].Less(h.s[j]) {
			j = r
		}
		if !h.s[j].Less(h.s[i]) {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
