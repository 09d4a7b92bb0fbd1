package path

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dropAll is an nftables ruleset that drops every incoming packet but IPv6
// neighbor discovery (without which the previous hop answers "unreachable").
const dropAll = `table inet v6mpath {
	chain in { type filter hook input priority 0; policy drop;
		icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept
	}
}`

// benchNS returns a Config.Socket for a fresh namespace with loopback and a
// link to a "sink" namespace (192.0.2.2, 2001:db8:e::2) that drops
// everything, so traces to the sink stay silent.
func benchNS(b *testing.B) func(int) (int, error) {
	b.Helper()
	prefix, m := newNamespaces(b, "bench", "sink")
	tp := &topo{t: b, prefix: prefix, ns: m}
	tp.link("bench", "b-s", "sink", "s-b", 1500,
		[]string{"192.0.2.1/24", "2001:db8:e::1/64"}, []string{"192.0.2.2/24", "2001:db8:e::2/64"})
	tp.waitReady()
	tp.nft("sink", dropAll)
	return tp.socketIn("bench")
}

// runConcurrent traces targets round-robin, b.N traces in all, with inflight
// traces at a time, and reports traces/s.
func runConcurrent(b *testing.B, tr *Tracer, targets []netip.Addr, inflight int, wantReached bool) {
	b.Helper()
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range inflight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				res, err := tr.Trace(ctx, targets[int(i)%len(targets)])
				cancel()
				if err != nil || res.Reached != wantReached {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d traces failed or had the wrong outcome", n, b.N)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "traces/s")
}

// BenchmarkTrace measures throughput with many traces in flight: to loopback
// (one hop) and through the three-hop topology (a PMTU change on the way).
func BenchmarkTrace(b *testing.B) {
	requireLab(b)
	b.Run("loopback", func(b *testing.B) {
		sock := benchNS(b)
		cfg := DefaultConfig()
		cfg.Socket = sock
		tr, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		targets := []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")}
		for _, n := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("inflight=%d", n), func(b *testing.B) { runConcurrent(b, tr, targets, n, true) })
		}
	})
	b.Run("3hops", func(b *testing.B) {
		tp := newTopo(b)
		cfg := DefaultConfig()
		cfg.Socket = tp.socketIn("client")
		tr, err := New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		targets := []netip.Addr{netip.MustParseAddr(target4), netip.MustParseAddr(target6)}
		for _, n := range []int{1, 16, 256} {
			b.Run(fmt.Sprintf("inflight=%d", n), func(b *testing.B) { runConcurrent(b, tr, targets, n, true) })
		}
	})
}

// BenchmarkInFlightMemory measures the heap and stack held per trace while
// it waits for an answer: each iteration starts inflight silent traces,
// samples memory while they all wait, then lets them finish.
func BenchmarkInFlightMemory(b *testing.B) {
	requireLab(b)
	sock := benchNS(b)
	cfg := DefaultConfig()
	cfg.Socket = sock
	cfg.MaxHops = 1
	cfg.ProbesPerHop = 1
	cfg.WaitPerProbe = 400 * time.Millisecond
	tr, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	targets := []netip.Addr{netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8:e::2")}
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("inflight=%d", n), func(b *testing.B) {
			var perTrace float64
			for range b.N {
				runtime.GC()
				var before, during runtime.MemStats
				runtime.ReadMemStats(&before)
				var wg sync.WaitGroup
				var failed atomic.Int64
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						res, err := tr.Trace(context.Background(), targets[i%2])
						if err != nil || res.Reached || len(res.HopList) != 1 {
							failed.Add(1)
						}
					}()
				}
				time.Sleep(200 * time.Millisecond) // all sent, all waiting
				runtime.ReadMemStats(&during)
				wg.Wait()
				if f := failed.Load(); f > 0 {
					b.Fatalf("%d silent traces failed", f)
				}
				inUse := func(m runtime.MemStats) float64 { return float64(m.HeapInuse + m.StackInuse) }
				perTrace += (inUse(during) - inUse(before)) / float64(n)
			}
			b.ReportMetric(perTrace/float64(b.N), "bytes/trace-in-flight")
		})
	}
}
