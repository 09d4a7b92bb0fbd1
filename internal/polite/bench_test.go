package polite_test

import (
	"context"
	"encoding/binary"
	"math"
	"net/netip"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/polite"
)

// benchAddr returns the i-th of a scattered set of addresses, half IPv4 and
// half IPv6, most in networks of their own as in a real crawl.
func benchAddr(i int) netip.Addr {
	h := uint64(i+1) * 0x9e3779b97f4a7c15
	if i%2 == 0 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(h>>32))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:], 0x2000_0000_0000_0000|h>>3)
	binary.BigEndian.PutUint64(b[8:], h)
	return netip.AddrFrom16(b)
}

// liftedBench is a config with every politeness limit lifted, so the
// benchmark measures the scheduler's own cost per task.
func liftedBench() polite.Config {
	c := polite.DefaultConfig()
	c.AddrGap, c.NetGap, c.PortWindow, c.Rate = 0, 0, 0, math.Inf(1)
	c.Workers = 64
	return c
}

// BenchmarkThroughputLifted queues b.N no-op tasks (five per address, the
// ports of v6matrix) and runs them: the scheduler's tasks per second.
func BenchmarkThroughputLifted(b *testing.B) {
	ports := []struct {
		proto polite.Proto
		port  uint16
	}{{polite.ProtoICMP, 0}, {polite.ProtoTCP, 25}, {polite.ProtoTCP, 80}, {polite.ProtoTCP, 443}, {polite.ProtoUDP, 33434}}
	s, err := polite.New(liftedBench(), nil)
	if err != nil {
		b.Fatal(err)
	}
	var ran atomic.Int64
	cpu0 := cpuTime()
	run := func(context.Context) { ran.Add(1) }
	b.ReportAllocs()
	for i := range b.N {
		p := ports[i%len(ports)]
		if err := s.Add(polite.Task{Addr: benchAddr(i / len(ports)), Proto: p.proto, Port: p.port, Run: run}); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Run(b.Context()); err != nil {
		b.Fatal(err)
	}
	if int(ran.Load()) != b.N {
		b.Fatalf("%d tasks ran, want %d", ran.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/task")
}

// BenchmarkQueue1M queues 1,000,000 addresses (one ICMP task each) and runs
// them with the limits lifted. It reports the heap held per queued address
// before Run, and the time per address of queueing and of running, with
// forced collections kept out of the timings.
func BenchmarkQueue1M(b *testing.B) {
	const n = 1_000_000
	addrs := make([]netip.Addr, n)
	for i := range addrs {
		addrs[i] = benchAddr(i)
	}
	run := func(context.Context) {}
	b.ReportAllocs()
	var perAddr float64
	var add, exec time.Duration
	cpu0 := cpuTime()
	for b.Loop() {
		b.StopTimer()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()
		t0 := time.Now()
		s, err := polite.New(liftedBench(), nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, a := range addrs {
			if err := s.Add(polite.Task{Addr: a, Run: run}); err != nil {
				b.Fatal(err)
			}
		}
		add += time.Since(t0)
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		perAddr = float64(after.HeapAlloc-before.HeapAlloc) / n
		b.StartTimer()
		t0 = time.Now()
		if err := s.Run(b.Context()); err != nil {
			b.Fatal(err)
		}
		exec += time.Since(t0)
		if p := s.Progress(); p.Done != n {
			b.Fatalf("Progress = %+v, want %d done", p, n)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N)/n, "cpu-ns/addr")
	b.ReportMetric(perAddr, "heap-B/queued-addr")
	b.ReportMetric(float64(add.Nanoseconds())/float64(b.N)/n, "add-ns/addr")
	b.ReportMetric(float64(exec.Nanoseconds())/float64(b.N)/n, "run-ns/task")
}

// cpuTime is the process's user and system CPU time, which on a shared
// machine measures the scheduler's cost better than the wall clock. It
// includes the collector's forced runs, which the wall timings leave out.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
