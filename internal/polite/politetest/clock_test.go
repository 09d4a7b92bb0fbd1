package politetest_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/polite/politetest"
)

func TestClock(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := politetest.NewClock(t0)
	a, b, stopped := c.NewTimer(2*time.Second), c.NewTimer(time.Second), c.NewTimer(time.Second)
	now := c.NewTimer(0)
	if got := <-now.C(); !got.Equal(t0) {
		t.Errorf("zero timer fired at %v, want %v", got, t0)
	}
	if !stopped.Stop() || stopped.Stop() {
		t.Errorf("Stop should report true once, then false")
	}
	if got := c.Pending(); got != 2 {
		t.Errorf("Pending = %d, want 2", got)
	}
	var fired []time.Duration
	for c.AdvanceToNext() {
		select {
		case at := <-a.C():
			fired = append(fired, at.Sub(t0))
		case at := <-b.C():
			fired = append(fired, at.Sub(t0))
		}
	}
	if diff := cmp.Diff([]time.Duration{time.Second, 2 * time.Second}, fired); diff != "" {
		t.Errorf("firing times (-want +got):\n%s", diff)
	}
	if a.Stop() {
		t.Errorf("Stop of a fired timer reported true")
	}
	select {
	case <-stopped.C():
		t.Errorf("a stopped timer fired")
	default:
	}
	c.Advance(500 * time.Millisecond)
	if got := c.Now().Sub(t0); got != 2500*time.Millisecond {
		t.Errorf("Now after Advance = %v, want 2.5s", got)
	}
	late := c.NewTimer(time.Second)
	c.Advance(3 * time.Second)
	if got := (<-late.C()).Sub(t0); got != 3500*time.Millisecond {
		t.Errorf("timer fired at %v, want 3.5s", got)
	}
	if got := c.Now().Sub(t0); got != 5500*time.Millisecond {
		t.Errorf("Now = %v, want 5.5s", got)
	}
}
