package polite

import (
	"context"
	"errors"
	"math"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// TestStop stops a scheduler while a task is in flight: that task runs to its end with
// its context alive, no other task starts, and Run returns ErrStopped.
func TestStop(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Workers, cfg.Rate, cfg.AddrGap, cfg.NetGap, cfg.PortWindow = 1, math.Inf(1), 0, 0, 0
	s, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	running := make(chan struct{})
	var started, cancelled atomic.Int32
	for i := range 5 {
		err := s.Add(Task{Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)}), Proto: ProtoTCP, Port: 80, Run: func(ctx context.Context) {
			if started.Add(1) == 1 {
				close(running)
			}
			select {
			case <-ctx.Done():
				cancelled.Add(1)
			case <-time.After(100 * time.Millisecond):
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-running
	s.Stop()
	if err := <-done; !errors.Is(err, ErrStopped) {
		t.Fatalf("Run after Stop: %v, want ErrStopped", err)
	}
	if started.Load() != 1 || cancelled.Load() != 0 {
		t.Errorf("%d tasks started, %d saw their context end; want the one in flight, run to its end", started.Load(), cancelled.Load())
	}
}
