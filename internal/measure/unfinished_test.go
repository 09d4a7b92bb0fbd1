package measure

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// TestUnfinished: while one address's probe and one domain's name server check hang,
// Progress.Unfinished names exactly that address and that domain (once the others'
// results are saved; a refused address counts as done once its skip is recorded), its
// Later defers exactly the domains that use them, and nothing is left at the end (a
// name server the gate refuses leaves its pair unchecked, not its domain unfinished).
func TestUnfinished(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "u.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run, _ := st.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "u", State: store.RunCrawling})
	const n = 8
	var es []domains.Entry
	for i := range n {
		es = append(es, domains.Entry{Rank: i + 1, Name: fmt.Sprintf("d%d.test", i), TLD: "test"})
	}
	if _, err := st.AddDomains(ctx, run, es); err != nil {
		t.Fatal(err)
	}
	// Each domain has its own name server: a check that hangs holds up no other. d7's
	// is refused by the gate: its pair is never checked, and its domain is final.
	ns := func(i int) netip.Addr {
		if i == 7 {
			return netip.MustParseAddr("127.3.2.7")
		}
		return netip.AddrFrom4([4]byte{127, 3, 0, byte(10 + i)})
	}
	www := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 3, 1, byte(i)}) }
	hung := www(2) // its TCP 80 probe waits for release; www(4) to www(7) are refused
	const hungCheck = "d5.test"
	release := make(chan struct{})

	fake := newFakeProbes(0)
	cfg := DefaultConfig()
	cfg.Probes = fake.funcs()
	wait := func(inner ProbeFunc, hangs func(Target) bool) ProbeFunc {
		return func(ctx context.Context, tg Target) (any, error) {
			if hangs(tg) {
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			return inner(ctx, tg)
		}
	}
	cfg.Probes[result.KindTCP80] = wait(cfg.Probes[result.KindTCP80], func(tg Target) bool { return tg.IP == hung })
	cfg.Probes[result.KindDNS53] = wait(cfg.Probes[result.KindDNS53], func(tg Target) bool { return tg.NSZone == hungCheck })
	cfg.Gate, err = polite.NewGate([]netip.Prefix{netip.MustParsePrefix("127.3.0.0/24"), netip.MustParsePrefix("127.3.1.0/30")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.EHLOName, cfg.UserAgent = "crawler.test", "v6matrix/test (+https://crawler.test/)"
	cfg.Polite.AddrGap, cfg.Polite.NetGap, cfg.Polite.PortWindow, cfg.Polite.Rate = 0, 0, 0, math.Inf(1)
	cfg.NSCheck.AddrGap, cfg.NSCheck.Rate = 0, math.Inf(1)

	var p Progress
	s, err := Start(ctx, cfg, st, run, &p)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	var b store.Batch
	for i := range n {
		d := result.Domain{Name: fmt.Sprintf("d%d.test", i), Rank: i + 1, TLD: "test", Status: result.StatusOK,
			Hosts: []result.HostRef{{Role: result.RoleNS, Name: fmt.Sprintf("ns.d%d.test", i), Rank: 1}, {Role: result.RoleWWW, Name: fmt.Sprintf("www.d%d.test", i)}}}
		nsHost := result.Host{Name: fmt.Sprintf("ns.d%d.test", i), Status: result.StatusOK, V4: []netip.Addr{ns(i)}}
		h := result.Host{Name: fmt.Sprintf("www.d%d.test", i), Status: result.StatusOK, V4: []netip.Addr{www(i)}}
		ts, nts := store.TargetsOf(d, []result.Host{nsHost, h})
		b.Domains, b.Hosts = append(b.Domains, d), append(b.Hosts, nsHost, h)
		b.Addresses = append(b.Addresses, result.Address{IP: ns(i)}, result.Address{IP: www(i)})
		b.Targets, b.NSTargets = append(b.Targets, ts...), append(b.NSTargets, nts...)
	}
	if err := st.Save(ctx, run, b); err != nil {
		t.Fatal(err)
	}
	s.Add(ctx, b.Targets)
	s.AddNS(ctx, b.NSTargets)
	s.Close(ctx)

	// The hung check's name server may have probes left too: one probe or check is in
	// flight to an address at a time.
	want := fmt.Sprint(map[netip.Addr]bool{hung: true}, map[string]bool{hungCheck: true})
	var got string
	var u *Unfinished
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if u, err = p.Unfinished(ctx); err != nil {
			t.Fatal(err)
		}
		delete(u.Addrs, ns(5))
		if got = fmt.Sprint(u.Addrs, u.Domains); got == want {
			break
		}
	}
	if got != want {
		t.Fatalf("unfinished %s, want %s", got, want)
	}
	var later []string
	if err := st.Details(ctx, run, "", func(d store.Detail) error {
		if u.Later(&d) {
			later = append(later, d.Name)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(later) != "[d2.test d5.test]" {
		t.Errorf("domains deferred %v, want [d2.test d5.test]", later)
	}

	close(release)
	if err := s.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if u, err = p.Unfinished(ctx); err != nil {
		t.Fatal(err)
	}
	if len(u.Addrs)+len(u.Domains) != 0 {
		t.Errorf("unfinished after the stage %v %v, want nothing", u.Addrs, u.Domains)
	}
}
