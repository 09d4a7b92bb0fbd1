package heapq

import (
	"math/rand/v2"
	"slices"
	"testing"
)

type item struct {
	key, idx int
}

func (a *item) Less(b *item) bool { return a.key < b.key }
func (a *item) SetIndex(i int)    { a.idx = i }

// check fails unless every element's position is its index and no child is less than
// its parent.
func check(t *testing.T, h *Heap[*item]) {
	t.Helper()
	for i, x := range h.s {
		if x.idx != i {
			t.Fatalf("element %d (key %d) says it is at %d", i, x.key, x.idx)
		}
		if i > 0 && x.Less(h.s[(i-1)/2]) {
			t.Fatalf("element %d (key %d) is less than its parent (key %d)", i, x.key, h.s[(i-1)/2].key)
		}
	}
}

// TestHeap runs random pushes, pops, removals and key changes against a sorted slice.
func TestHeap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var h Heap[*item]
	var in []*item // what the heap should hold
	for step := range 20000 {
		switch op := r.IntN(10); {
		case op < 4 || len(in) == 0:
			x := &item{key: r.IntN(100)}
			h.Push(x)
			in = append(in, x)
		case op < 6:
			least := slices.MinFunc(in, func(a, b *item) int { return a.key - b.key })
			if p := h.Peek(); p.key != least.key {
				t.Fatalf("step %d: peek %d, want %d", step, p.key, least.key)
			}
			x := h.Pop()
			if x.key != least.key || x.idx != -1 {
				t.Fatalf("step %d: pop key %d index %d, want key %d index -1", step, x.key, x.idx, least.key)
			}
			in = slices.DeleteFunc(in, func(y *item) bool { return y == x })
		case op < 8:
			x := in[r.IntN(len(in))]
			if got := h.Remove(x.idx); got != x || x.idx != -1 {
				t.Fatalf("step %d: removed %p (index %d), want %p", step, got, x.idx, x)
			}
			in = slices.DeleteFunc(in, func(y *item) bool { return y == x })
		default:
			x := in[r.IntN(len(in))]
			x.key = r.IntN(100)
			h.Fix(x.idx)
		}
		if h.Len() != len(in) {
			t.Fatalf("step %d: %d elements, want %d", step, h.Len(), len(in))
		}
		check(t, &h)
	}
	var keys []int
	for h.Len() > 0 {
		keys = append(keys, h.Pop().key)
	}
	if !slices.IsSorted(keys) {
		t.Fatalf("popped out of order: %v", keys)
	}
}
