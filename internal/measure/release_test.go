package measure

import (
	"context"
	"math"
	"net/netip"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/store"
)

// TestProgressReleasesStage runs a stage to its end with fake probes: its Progress
// then answers the final bound and nothing unfinished without keeping the stage, so
// that the run's summary, which holds the Progress, does not hold the stage's planner,
// scheduler and checks (the whole run's peak memory is the summary's).
func TestProgressReleasesStage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run, _ := st.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "f", State: store.RunCrawling})
	cfg := DefaultConfig()
	cfg.Probes = newFakeProbes(time.Millisecond).funcs()
	cfg.Gate, _ = polite.NewGate([]netip.Prefix{netip.MustParsePrefix("127.3.0.0/16")}, nil)
	cfg.EHLOName, cfg.UserAgent = "crawler.test", "v6matrix/test (+https://crawler.test/)"
	cfg.Polite.AddrGap, cfg.Polite.NetGap, cfg.Polite.PortWindow, cfg.Polite.Rate = 0, 0, 0, math.Inf(1)
	var p Progress
	freed := make(chan struct{})
	func() {
		s, err := Start(ctx, cfg, st, run, &p)
		if err != nil {
			t.Fatal(err)
		}
		runtime.AddCleanup(s, func(ch chan struct{}) { close(ch) }, freed)
		roles := store.RoleAddr | store.RoleWWW
		for i := range 20 {
			ip := netip.AddrFrom4([4]byte{127, 3, byte(i / 4), byte(i + 1)})
			s.Add(ctx, []store.Target{{IP: ip, Roles: roles, WWW: "www.a", Host: "www.a", Changed: true, Added: roles}})
		}
		s.Close(ctx)
		if err := s.Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}()
	lb, why := p.Bound()
	if why == "" {
		t.Errorf("no bound after the stage's end (%v)", lb)
	}
	if u, err := p.Unfinished(ctx); err != nil || len(u.Addrs) != 0 || len(u.Domains) != 0 {
		t.Errorf("unfinished after the stage's end: %+v (%v), want nothing", u, err)
	}
	for range 50 {
		runtime.GC()
		select {
		case <-freed:
			if lb2, why2 := p.Bound(); lb2 != lb || why2 != why {
				t.Errorf("bound %v (%s) after the stage was freed, want %v (%s)", lb2, why2, lb, why)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatal("the stage is still reachable after its end (through its Progress?)")
}
