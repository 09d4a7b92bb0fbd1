package measure

import (
	"testing"
	"time"
)

// TestEfficiency: zero before the stage starts; the bound over the time so far while the
// probes run; frozen at the probes' end.
func TestEfficiency(t *testing.T) {
	var p Progress
	if e := p.Efficiency(); e != 0 {
		t.Errorf("before the start: %v, want 0", e)
	}
	p.setBound(func() (time.Duration, string) { return 30 * time.Second, "test" })
	start := time.Now().Add(-60 * time.Second)
	p.start.Store(start.UnixNano())
	if e := p.Efficiency(); e > 0.5 || e < 0.49 {
		t.Errorf("running for 60 s with a 30 s bound: %v, want about 0.5", e)
	}
	p.end.Store(start.Add(40 * time.Second).UnixNano())
	if e := p.Efficiency(); e != 0.75 {
		t.Errorf("ended after 40 s with a 30 s bound: %v, want 0.75", e)
	}
}

// TestLeft: the least time left is the bound less the time spent, never below zero,
// and zero once the probes ended.
func TestLeft(t *testing.T) {
	var p Progress
	if l := p.Left(); l != 0 {
		t.Errorf("before the start: %v, want 0", l)
	}
	p.setBound(func() (time.Duration, string) { return 10 * time.Minute, "test" })
	start := time.Now().Add(-4 * time.Minute)
	p.start.Store(start.UnixNano())
	if l := p.Left(); l > 6*time.Minute || l < 6*time.Minute-10*time.Second {
		t.Errorf("4 min into a 10 min bound: %v left, want about 6 min", l)
	}
	p.start.Store(time.Now().Add(-11 * time.Minute).UnixNano())
	if l := p.Left(); l != 0 {
		t.Errorf("past the bound: %v left, want 0", l)
	}
	p.start.Store(start.UnixNano())
	p.end.Store(time.Now().UnixNano())
	if l := p.Left(); l != 0 {
		t.Errorf("probes ended: %v left, want 0", l)
	}
}
