package measure

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

func TestHostLocks(t *testing.T) {
	var h hostLocks
	var inside [3]atomic.Int32 // traces of each host running now
	var overlap atomic.Bool
	var wg sync.WaitGroup
	hosts := []string{"www.a.test", "www.b.test", "mx.c.test"}
	for i := range 300 {
		wg.Go(func() {
			k := i % len(hosts)
			unlock := h.lock(hosts[k])
			if inside[k].Add(1) > 1 {
				overlap.Store(true)
			}
			for range 20 { // let others run while the lock is held
				runtime.Gosched()
			}
			inside[k].Add(-1)
			unlock()
		})
	}
	wg.Wait()
	if overlap.Load() {
		t.Error("two traces of one host ran at once")
	}
	if n := h.inUse(); n != 0 {
		t.Errorf("%d lock entries left after all traces ended", n)
	}
}
