package measure

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// TestProbeKindsTable checks the table against the kinds the store knows and the ports
// docs/POLITENESS.md allows: 25, 53, 80, 123, 443 and the one path port.
func TestProbeKindsTable(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path.Port = 40000
	pr := &probers{cfg: cfg}
	allowed := map[uint16]bool{25: true, 53: true, 80: true, 123: true, 443: true, 40000: true}
	seen := map[string]bool{}
	for _, k := range probeKinds {
		if seen[k.kind] {
			t.Errorf("kind %s listed twice", k.kind)
		}
		seen[k.kind] = true
		if !slices.Contains(result.Kinds, k.kind) {
			t.Errorf("kind %s is not a result kind", k.kind)
		}
		task := pr.task(&target{ip: hostIP}, k.kind, nil, &Progress{}, slog.New(slog.DiscardHandler))
		switch {
		case k.local:
			if k.kind != result.KindPTR && k.kind != result.KindGeo {
				t.Errorf("kind %s local: Run plans only ptr and geo as local", k.kind)
			}
		case task.Proto == polite.ProtoICMP:
			if task.Port != 0 {
				t.Errorf("kind %s: ICMP with port %d", k.kind, task.Port)
			}
		case !allowed[task.Port]:
			t.Errorf("kind %s: %s port %d is not one of POLITENESS.md's", k.kind, task.Proto, task.Port)
		}
	}
	for _, k := range result.Kinds {
		if !seen[k] && k != result.KindSkipped {
			t.Errorf("result kind %s has no entry in probeKinds", k)
		}
	}
	want := map[string]string{result.KindPath: "udp/40000", result.KindNTP123: "udp/123", result.KindDNS53: "udp/53",
		result.KindSTARTTLS: "tcp/25", result.KindTLS443: "tcp/443", result.KindHTTP80: "tcp/80", result.KindPing: "icmp/0"}
	for kind, dest := range want {
		task := pr.task(&target{ip: hostIP}, kind, nil, &Progress{}, slog.New(slog.DiscardHandler))
		if got := fmt.Sprintf("%s/%d", task.Proto, task.Port); got != dest {
			t.Errorf("kind %s goes to %s, want %s", kind, got, dest)
		}
	}
}

// fakeProbes records every call of every kind, and the probes in flight per address.
type fakeProbes struct {
	delay time.Duration

	mu      sync.Mutex
	calls   map[netip.Addr][]string // kinds, in call order
	targets map[string]Target       // by "addr kind"
	flying  map[netip.Addr]int      // remote probes in flight
	maxFly  int
}

func newFakeProbes(delay time.Duration) *fakeProbes {
	return &fakeProbes{delay: delay, calls: map[netip.Addr][]string{}, targets: map[string]Target{},
		flying: map[netip.Addr]int{}}
}

func (f *fakeProbes) funcs() map[string]ProbeFunc {
	out := map[string]ProbeFunc{}
	for _, k := range probeKinds {
		out[k.kind] = func(ctx context.Context, t Target) (any, error) {
			f.mu.Lock()
			f.calls[t.IP] = append(f.calls[t.IP], k.kind)
			f.targets[t.IP.String()+" "+k.kind] = t
			if !k.local {
				f.flying[t.IP]++
				f.maxFly = max(f.maxFly, f.flying[t.IP])
			}
			f.mu.Unlock()
			select {
			case <-time.After(f.delay):
			case <-ctx.Done():
			}
			if !k.local {
				f.mu.Lock()
				f.flying[t.IP]--
				f.mu.Unlock()
			}
			return map[string]string{"fake": k.kind}, nil
		}
	}
	return out
}

// TestRunFakeProbes runs the stage over a small store with fake probes (no root, no
// packet): each (address, kind) is measured once, the roles choose the kinds, the
// gate's refused address gets GeoIP only, and the scheduler's limits hold.
func TestRunFakeProbes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "f.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run, _ := st.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "f", State: store.RunCrawling})
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	var (
		web     = a("127.3.0.1") // www of both domains and mx of d1
		mail    = a("127.3.0.2")
		ntp     = a("127.3.0.3")
		ns      = a("127.3.0.4")
		web6    = a("2001:db8:3::5") // www of d2 only
		refused = a("127.4.0.1")     // outside the allowed range
	)
	b := store.Batch{
		Domains: []result.Domain{
			{Name: "d1.test", Rank: 1, TLD: "test", Status: result.StatusOK, Hosts: []result.HostRef{
				{Role: result.RoleWWW, Name: "www.d1.test"}, {Role: result.RoleMX, Name: "mail.d1.test", Rank: 10},
				{Role: result.RoleNTP, Name: "ntp.d1.test"}, {Role: result.RoleNS, Name: "ns.d1.test", Rank: 1}}},
			{Name: "d2.test", Rank: 2, TLD: "test", Status: result.StatusOK, Hosts: []result.HostRef{
				{Role: result.RoleWWW, Name: "www.d2.test"}, {Role: result.RoleNS, Name: "ns.d1.test", Rank: 1}}},
		},
		Hosts: []result.Host{
			{Name: "www.d1.test", Status: result.StatusOK, V4: []netip.Addr{web}},
			{Name: "mail.d1.test", Status: result.StatusOK, V4: []netip.Addr{mail, web}},
			{Name: "ntp.d1.test", Status: result.StatusOK, V4: []netip.Addr{ntp}},
			{Name: "ns.d1.test", Status: result.StatusOK, V4: []netip.Addr{ns}},
			{Name: "www.d2.test", Status: result.StatusOK, V4: []netip.Addr{web, refused}, V6: []netip.Addr{web6}},
		},
		Addresses: []result.Address{{IP: web}, {IP: mail}, {IP: ntp}, {IP: ns}, {IP: web6}, {IP: refused}},
	}
	if _, err := st.AddDomains(ctx, run, []domains.Entry{{Rank: 1, Name: "d1.test", TLD: "test"}, {Rank: 2, Name: "d2.test", TLD: "test"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(ctx, run, b); err != nil {
		t.Fatal(err)
	}

	fake := newFakeProbes(3 * time.Millisecond)
	cfg := DefaultConfig()
	cfg.Probes = fake.funcs()
	cfg.Gate, err = polite.NewGate([]netip.Prefix{netip.MustParsePrefix("127.3.0.0/16"), netip.MustParsePrefix("2001:db8:3::/48")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.EHLOName, cfg.UserAgent = "crawler.test", "v6matrix/test (+https://crawler.test/)"
	// No gaps: the scheduler's workers would start an address's probes together if
	// it did not hold the address busy while one runs.
	cfg.Polite.AddrGap, cfg.Polite.NetGap, cfg.Polite.PortWindow, cfg.Polite.Rate = 0, 0, 0, math.Inf(1)
	cfg.NSCheck.AddrGap = 0
	var p Progress
	if err := Run(ctx, cfg, st, run, &p); err != nil {
		t.Fatal(err)
	}

	base := []string{result.KindPTR, result.KindGeo, result.KindPing, result.KindTCP25, result.KindTCP80, result.KindTCP443, result.KindPath}
	with := func(extra ...string) []string { return append(slices.Clone(base), extra...) }
	want := map[netip.Addr][]string{
		web:     with(result.KindTLS443, result.KindSTARTTLS, result.KindHTTP80),
		mail:    with(result.KindSTARTTLS),
		ntp:     with(result.KindNTP123),
		ns:      with(result.KindDNS53, result.KindDNS53), // one check per domain served
		web6:    with(result.KindTLS443, result.KindHTTP80),
		refused: {result.KindGeo},
	}
	got := map[netip.Addr][]string{}
	fake.mu.Lock()
	for ip, kinds := range fake.calls {
		got[ip] = slices.Sorted(slices.Values(kinds))
	}
	for ip, kinds := range want {
		want[ip] = slices.Sorted(slices.Values(kinds))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("kinds called per address (-want +got):\n%s", diff)
	}
	// The names come from the best-ranked domain using the address in each role.
	names := map[string]Target{
		web.String() + " " + result.KindTLS443:    {IP: web, WWW: "www.d1.test", MX: "mail.d1.test", Host: "www.d1.test"},
		web.String() + " " + result.KindSTARTTLS:  {IP: web, WWW: "www.d1.test", MX: "mail.d1.test", Host: "www.d1.test"},
		web6.String() + " " + result.KindHTTP80:   {IP: web6, WWW: "www.d2.test", Host: "www.d2.test"},
		mail.String() + " " + result.KindSTARTTLS: {IP: mail, MX: "mail.d1.test", Host: "mail.d1.test"},
	}
	for key, w := range names {
		if diff := cmp.Diff(w, fake.targets[key], cmpopts.EquateComparable(netip.Addr{})); diff != "" {
			t.Errorf("target of %s (-want +got):\n%s", key, diff)
		}
	}
	if fake.maxFly != 1 {
		t.Errorf("at most %d probes in flight to one address, want 1", fake.maxFly)
	}
	fake.mu.Unlock()
	total := int64(0)
	for _, kinds := range want {
		total += int64(len(kinds))
	}
	if p.Total.Load() != total || p.Done.Load() != total || p.Failed.Load() != 0 || p.Skipped.Load() != 1 {
		t.Errorf("progress: total %d done %d failed %d skipped %d, want %d, %d, 0, 1",
			p.Total.Load(), p.Done.Load(), p.Failed.Load(), p.Skipped.Load(), total, total)
	}

	// Everything was saved: a second run of the stage calls no probe.
	again := newFakeProbes(0)
	cfg.Probes = again.funcs()
	var p2 Progress
	if err := Run(ctx, cfg, st, run, &p2); err != nil {
		t.Fatal(err)
	}
	if p2.Total.Load() != 0 || len(again.calls) != 0 {
		t.Errorf("resumed stage: total %d, calls %v; want none", p2.Total.Load(), again.calls)
	}
}
