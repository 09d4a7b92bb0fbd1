package store

// genCache is a map bounded by two generations: when the current one holds max
// entries it becomes the old one, and the old one is dropped. A key found in the old
// generation moves to the current one, so what stays in use stays cached, in at most
// twice max entries. It is not safe for concurrent use; a nil *genCache keeps nothing.
type genCache[K comparable, V any] struct {
	cur, old map[K]V
	max      int
}

func newGenCache[K comparable, V any](max int) *genCache[K, V] {
	return &genCache[K, V]{cur: make(map[K]V), max: max}
}

func (c *genCache[K, V]) get(k K) (V, bool) {
	if c == nil {
		var zero V
		return zero, false
	}
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	v, ok := c.old[k]
	if ok {
		c.put(k, v)
	}
	return v, ok
}

func (c *genCache[K, V]) put(k K, v V) {
	if c == nil {
		return
	}
	if len(c.cur) >= c.max {
		c.old, c.cur = c.cur, make(map[K]V, c.max)
	}
	c.cur[k] = v
}
