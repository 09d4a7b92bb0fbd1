package summary_test

import (
	"context"
	"encoding/csv"
	"net/netip"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/export"
	"github.com/v6matrix/v6matrix/internal/probe/httpprobe"
	"github.com/v6matrix/v6matrix/internal/probe/path"
	"github.com/v6matrix/v6matrix/internal/probe/ping"
	"github.com/v6matrix/v6matrix/internal/probe/tcpport"
	"github.com/v6matrix/v6matrix/internal/probe/tlsprobe"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/summary"
	"github.com/v6matrix/v6matrix/internal/synthrun"
)

// TestAggregatesMatchExport: the run's and every TLD's IPv6 counts equal those counted
// from the exported ipv6domain.csv of the same run.
func TestAggregatesMatchExport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run, err := synthrun.Fill(ctx, st, synthrun.Config{Domains: 3000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := summary.Build(ctx, st, run, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := export.Write(ctx, st, run, dir, []string{"csv"}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "ipv6domain.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	type counts struct {
		domains, ok int
		v6          [4]int
	}
	want := map[string]*counts{"": {}}
	for _, r := range rows[1:] {
		for _, key := range []string{"", r[5]} {
			c := want[key]
			if c == nil {
				c = &counts{}
				want[key] = c
			}
			c.domains++
			if r[7] == "ok" {
				c.ok++
			}
			for i := range 4 {
				if r[1+i] == "1" {
					c.v6[i]++
				}
			}
		}
	}
	check := func(g result.Aggregate, c *counts) {
		t.Helper()
		if g.Domains != c.domains || g.Measured != c.ok || g.IPv6 != c.v6 {
			t.Errorf("%s %q: domains %d measured %d ipv6 %v; ipv6domain.csv says %d %d %v",
				g.Kind, g.Key, g.Domains, g.Measured, g.IPv6, c.domains, c.ok, c.v6)
		}
	}
	all, err := st.Aggregate(ctx, run, "run", "")
	if err != nil {
		t.Fatal(err)
	}
	check(all, want[""])
	if all.IPv6[2] == 0 || all.IPv6[2] == all.Measured {
		t.Errorf("synthetic run should have some but not all www hosts on IPv6: %v of %d", all.IPv6, all.Measured)
	}
	tlds, err := st.Aggregates(ctx, run, "tld")
	if err != nil {
		t.Fatal(err)
	}
	if len(tlds) != len(want)-1 {
		t.Errorf("%d TLD aggregates, the export has %d TLDs", len(tlds), len(want)-1)
	}
	for _, g := range tlds {
		check(g, want[g.Key])
	}
}

// TestKeepCurrent: a finished run without a summary and a run in progress are both
// summarised, a run summarised without domain documents gets them; a failed run is
// not summarised.
func TestKeepCurrent(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	states := []store.RunState{store.RunDone, store.RunProbing, store.RunFailed}
	var ids []int64
	for i, state := range states {
		id, err := synthrun.Fill(ctx, st, synthrun.Config{Domains: 200, Seed: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		r, _ := st.GetRun(ctx, id)
		r.State = state
		if err := st.UpdateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// A finished run summarised by an older v6matrix: no domain documents.
	old, err := synthrun.Fill(ctx, st, synthrun.Config{Domains: 200, Seed: 9})
	if err != nil {
		t.Fatal(err)
	}
	if err := summary.Build(ctx, noDocs{st}, old, nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.Documented(ctx, old); err != nil || ok {
		t.Fatalf("Documented(%d) = %v, %v; want a run without documents", old, ok, err)
	}
	done := make(chan struct{})
	go func() { summary.KeepCurrent(ctx, st, time.Hour, nil); close(done) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		a, _ := st.Summarised(ctx, ids[0])
		b, _ := st.Summarised(ctx, ids[1])
		documented, _ := st.Documented(ctx, old)
		if !a.IsZero() && !b.IsZero() && documented {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not summarised after 20 s: done run %v, run in progress %v, documents of the old run %v", a, b, documented)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	if c, _ := st.Summarised(context.Background(), ids[2]); !c.IsZero() {
		t.Error("a failed run was summarised")
	}
}

// noDocs is a store that keeps no domain documents, as a v6matrix before them.
type noDocs struct{ store.Store }

func (noDocs) SaveDocs(context.Context, store.Claim, []store.Detail) error { return nil }

// TestBroken: the kinds of broken IPv6 an address shows, from its measurements.
func TestBroken(t *testing.T) {
	v6, v4 := netip.MustParseAddr("2001:db8:b::10"), netip.MustParseAddr("203.0.113.10")
	open443 := &tcpport.Result{Port: 443, State: tcpport.StateOpen}
	open80 := &tcpport.Result{Port: 80, State: tcpport.StateOpen}
	filtered := &tcpport.Result{Port: 443, State: tcpport.StateFiltered}
	answered := &ping.Result{Sent: 3, Received: 3}
	lost := &ping.Result{Sent: 3}
	tlsTimeout := &tlsprobe.Result{Port: 443, Reachable: true, Version: "none", HandshakeError: "read tcp6 ...: i/o timeout"}
	tlsOK := &tlsprobe.Result{Port: 443, Reachable: true, Version: "TLS1.3"}
	tests := []struct {
		name string
		a    result.Address
		want result.Broken
	}{
		{"answers and TLS works", result.Address{IP: v6, Ping: answered, TCP443: open443, TLS443: tlsOK}, result.BrokenNone},
		{"TLS handshake times out after the TCP handshake", result.Address{IP: v6, Ping: answered, TCP443: open443, TLS443: tlsTimeout}, result.BrokenBlackHole},
		{"HTTP response never comes", result.Address{IP: v6, TCP80: open80, HTTP80: &httpprobe.Result{Status: httpprobe.StatusTimeout}}, result.BrokenBlackHole},
		{"path probe suspects it", result.Address{IP: v6, Ping: answered, Path: &path.Result{Reason: path.ReasonBlackHole}}, result.BrokenBlackHole},
		{"nothing answers", result.Address{IP: v6, Ping: lost, TCP443: filtered}, result.BrokenUnreachable},
		{"not probed", result.Address{IP: v6}, result.BrokenNone},
		{"IPv4 is not judged", result.Address{IP: v4, Ping: lost, TCP443: filtered}, result.BrokenNone},
	}
	for _, tt := range tests {
		if got := summary.Broken(&tt.a); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// slowBuilds is a store whose summaries take at least 100 ms to begin; it counts the
// provisional ones.
type slowBuilds struct {
	store.Store
	provisional atomic.Int32
}

func (s *slowBuilds) ClearSummary(ctx context.Context, c store.Claim) error {
	if c.Provisional {
		s.provisional.Add(1)
	}
	time.Sleep(100 * time.Millisecond)
	return s.Store.ClearSummary(ctx, c)
}

// TestKeepCurrentShare: a run in progress whose rebuild takes 100 ms or more is
// rebuilt at most every ten times that, not every interval (10 ms here), so that
// rebuilding a large run does not take the machine that crawls it.
func TestKeepCurrentShare(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id, err := synthrun.Fill(ctx, st, synthrun.Config{Domains: 200, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := st.GetRun(ctx, id)
	r.State = store.RunProbing
	if err := st.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	slow := &slowBuilds{Store: st}
	kctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	summary.KeepCurrent(kctx, slow, 10*time.Millisecond, nil)
	// The first at once, the next one second or more after the first ended.
	if n := slow.provisional.Load(); n < 1 || n > 2 {
		t.Errorf("%d provisional summaries in 1.5 s, want 1 or 2", n)
	}
	if at, _ := st.Summarised(ctx, id); at.IsZero() {
		t.Error("the run in progress was not summarised")
	}
}
