package measure

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/dnssrv"
	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// BenchmarkProbeStage measures addresses probed per second with the politeness limits
// lifted: N loopback addresses (127.1.x.y, nothing listening, so TCP is closed, UDP
// unreachable, ping and path answered by the kernel), every probe kind, a PTR resolver
// that refuses. It reports addresses/s and probes/s; b.N is the number of addresses.
func BenchmarkProbeStage(b *testing.B) {
	ctx := context.Background()
	z, err := dnssrv.ParseZoneString("bench.test.", "@ 300 IN SOA ns hostmaster 1 1 1 1 1\n@ IN NS ns\n")
	if err != nil {
		b.Fatal(err)
	}
	res, err := dnssrv.Listen(ctx, "127.0.0.1:0", dnssrv.NewAuth(z))
	if err != nil {
		b.Fatal(err)
	}
	defer res.Close()
	st, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	run, _ := st.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "bench", State: store.RunCrawling})

	n := b.N
	var batch store.Batch
	var es []domains.Entry
	for i := range n {
		ip := netip.AddrFrom4([4]byte{127, 1, byte(i >> 8), byte(i)})
		name := fmt.Sprintf("d%d.test", i)
		es = append(es, domains.Entry{Rank: i + 1, Name: name, TLD: "test", Suffix: "test"})
		host := "www." + name
		batch.Domains = append(batch.Domains, result.Domain{Name: name, Rank: i + 1, TLD: "test", Suffix: "test",
			Status: result.StatusOK, Hosts: []result.HostRef{{Role: result.RoleWWW, Name: host}, {Role: result.RoleMX, Name: host},
				{Role: result.RoleNS, Name: host}, {Role: result.RoleNTP, Name: host}}})
		batch.Hosts = append(batch.Hosts, result.Host{Name: host, Status: result.StatusOK, V4: []netip.Addr{ip}})
		batch.Addresses = append(batch.Addresses, result.Address{IP: ip})
	}
	if _, err := st.AddDomains(ctx, run, es); err != nil {
		b.Fatal(err)
	}
	if err := st.Save(ctx, run, batch); err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Gate, _ = polite.NewGate([]netip.Prefix{netip.MustParsePrefix("127.1.0.0/16")}, nil)
	cfg.Resolver, cfg.EHLOName, cfg.UserAgent = res.Addr(), "bench.test", "v6matrix/bench (+https://bench.test/)"
	cfg.Polite.AddrGap, cfg.Polite.NetGap, cfg.Polite.PortWindow, cfg.Polite.Rate = 0, 0, 0, math.Inf(1)
	cfg.Polite.Workers = 256
	cfg.Ping.Count = 1
	cfg.Ping.Timeout = 200 * time.Millisecond
	cfg.Path.WaitPerProbe = 200 * time.Millisecond
	cfg.TCPTimeout, cfg.TLSTimeout, cfg.DNSTimeout, cfg.NTPTimeout = time.Second, time.Second, 200*time.Millisecond, 200*time.Millisecond

	var p Progress
	b.ResetTimer()
	start := time.Now()
	if err := Run(ctx, cfg, st, run, &p); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if p.Failed.Load() > 0 {
		b.Errorf("%d probes could not run", p.Failed.Load())
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "addrs/s")
	b.ReportMetric(float64(p.Done.Load())/elapsed.Seconds(), "probes/s")
}
