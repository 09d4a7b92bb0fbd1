package measure

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// failingWrites fails every SaveMeasurements.
type failingWrites struct{ store.Store }

var errDiskFull = errors.New("disk full")

func (failingWrites) SaveMeasurements(context.Context, int64, []store.Measurement) error {
	return errDiskFull
}

// TestWriteErrorStops fails the first write of a probe stage that takes some 2 s (400
// pings of 20 ms, 4 at a time): the stage starts nothing more, instead of probing every
// address to throw the results away, Failed is closed and Wait returns the error.
func TestWriteErrorStops(t *testing.T) {
	ctx, st, run := nsTestRun(t)
	cfg := DefaultConfig()
	cfg.Probes = newFakeProbes(20 * time.Millisecond).funcs()
	nsTestLimits(t, &cfg)
	cfg.Kinds = map[string]bool{result.KindPing: true}
	cfg.Polite.Workers = 4
	const n = 400
	var part Part
	for i := range n {
		ip := netip.AddrFrom4([4]byte{127, 3, byte(i / 200), byte(i%200 + 1)})
		part.Targets = append(part.Targets, store.Target{IP: ip, Roles: store.RoleAddr})
	}
	cfg.Part = &part
	var p Progress
	s, err := Start(ctx, cfg, failingWrites{st}, run, &p)
	if err != nil {
		t.Fatal(err)
	}
	s.Close(ctx)
	err = s.Wait(ctx)
	t.Logf("Wait: %v; %d of %d probes done", err, p.Done.Load(), p.Total.Load())
	if !errors.Is(err, errDiskFull) {
		t.Errorf("Wait = %v, want %v", err, errDiskFull)
	}
	select {
	case <-s.Failed():
	default:
		t.Error("Failed is not closed after a write error")
	}
	// The first write is at 500 ms (flushEvery), some 100 probes in.
	if done, total := p.Done.Load(), p.Total.Load(); total != n || done >= n/2 {
		t.Errorf("%d of %d probes done, want the stage to stop at the first write error (%d probes, fewer than %d done)",
			done, total, n, n/2)
	}
}

// TestFailedOpen checks that Failed stays open when every write succeeds.
func TestFailedOpen(t *testing.T) {
	ctx, st, run := nsTestRun(t)
	cfg := DefaultConfig()
	cfg.Probes = newFakeProbes(0).funcs()
	nsTestLimits(t, &cfg)
	cfg.Kinds = map[string]bool{result.KindPing: true}
	cfg.Part = &Part{Targets: []store.Target{{IP: netip.MustParseAddr("127.3.0.1"), Roles: store.RoleAddr}}}
	var p Progress
	s, err := Start(ctx, cfg, st, run, &p)
	if err != nil {
		t.Fatal(err)
	}
	s.Close(ctx)
	if err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Failed():
		t.Error("Failed is closed after a stage without error")
	default:
	}
	if done, total := p.Done.Load(), p.Total.Load(); done != 1 || total != 1 {
		t.Errorf("%d of %d probes done, want 1 of 1", done, total)
	}
}
