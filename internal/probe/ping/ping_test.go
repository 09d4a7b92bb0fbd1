package ping

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/probe/netnstest"
)

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"count too high", Config{Count: 101}, "ping: count 101 outside 1..100"},
		{"negative count", Config{Count: -1}, "ping: count -1 outside 1..100"},
		{"interval too short", Config{Interval: 10 * time.Millisecond}, "ping: interval 10ms below the minimum 200ms"},
		{"negative timeout", Config{Timeout: -time.Second}, "ping: negative timeout -1s"},
		{"socket kind", Config{Socket: 7}, "ping: unknown socket kind 7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil || err.Error() != tc.want {
				t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
			}
		})
	}
	p, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Count: 5, Interval: 200 * time.Millisecond, Timeout: time.Second}
	if diff := cmp.Diff(want, p.Config()); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}

func TestSummarise(t *testing.T) {
	var r Result
	r.Sent = 4
	summarise(&r, []time.Duration{time.Millisecond, 3 * time.Millisecond})
	f := func(v float64) *float64 { return &v }
	want := Result{Sent: 4, Received: 2, LossPercent: 50, MinMillis: f(1), AvgMillis: f(2), MaxMillis: f(3), StdMillis: f(1)}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("summarise (-want +got):\n%s", diff)
	}
	var none Result
	none.Sent = 3
	summarise(&none, nil)
	if diff := cmp.Diff(Result{Sent: 3, LossPercent: 100}, none); diff != "" {
		t.Errorf("summarise(no reply) (-want +got):\n%s", diff)
	}
}

// iputils holds what iputils ping reported.
type iputils struct {
	sent, received int
	loss           float64
	avgMillis      float64
}

var (
	countsRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received.*?([\d.]+)% packet loss`)
	rttRE    = regexp.MustCompile(`= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms`)
)

func runIputils(t *testing.T, addr netip.Addr) iputils {
	t.Helper()
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("iputils ping not installed")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ping", "-c", "3", "-i", "0.2", "-n", "-W", "1", addr.String()).CombinedOutput()
	if err != nil {
		t.Fatalf("ping %s: %v\n%s", addr, err, out)
	}
	m := countsRE.FindSubmatch(out)
	r := rttRE.FindSubmatch(out)
	if m == nil || r == nil {
		t.Fatalf("cannot parse iputils output:\n%s", out)
	}
	var res iputils
	res.sent, _ = strconv.Atoi(string(m[1]))
	res.received, _ = strconv.Atoi(string(m[2]))
	res.loss, _ = strconv.ParseFloat(string(m[3]), 64)
	res.avgMillis, _ = strconv.ParseFloat(string(r[2]), 64)
	return res
}

// TestLoopbackMatchesIputils pings 127.0.0.1 and ::1 and compares with iputils ping.
func TestLoopbackMatchesIputils(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("raw ICMP sockets need root (ping_group_range may not allow ping sockets)")
	}
	p, err := New(Config{Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	for _, target := range []string{"127.0.0.1", "::1"} {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			addr := netip.MustParseAddr(target)
			got, err := p.Probe(t.Context(), addr)
			if err != nil {
				t.Fatal(err)
			}
			ref := runIputils(t, addr)
			if got.Sent != ref.sent || got.Received != ref.received || got.LossPercent != ref.loss {
				t.Errorf("v6matrix sent/received/loss = %d/%d/%g%%, iputils %d/%d/%g%%",
					got.Sent, got.Received, got.LossPercent, ref.sent, ref.received, ref.loss)
			}
			if got.AvgMillis == nil {
				t.Fatalf("no RTT: %+v", got)
			}
			// Loopback RTTs are tens of microseconds. We time in user space (iputils uses
			// kernel timestamps), so goroutine wake-ups on a loaded 2-core machine or under
			// -race add up to a few milliseconds; a unit error would be off by 1000x.
			const tolMillis = 10.0
			if math.Abs(*got.AvgMillis-ref.avgMillis) > tolMillis {
				t.Errorf("avg rtt %.3f ms, iputils %.3f ms (tolerance %.1f ms)", *got.AvgMillis, ref.avgMillis, tolMillis)
			}
			if *got.MinMillis > *got.AvgMillis || *got.AvgMillis > *got.MaxMillis || *got.StdMillis < 0 {
				t.Errorf("inconsistent stats %v/%v/%v/%v", *got.MinMillis, *got.AvgMillis, *got.MaxMillis, *got.StdMillis)
			}
		})
	}
}

// TestConcurrentProbesShareSocket runs many Probe calls at once over the one socket per
// family: every echo must be matched to its own caller.
func TestConcurrentProbesShareSocket(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("raw ICMP sockets need root")
	}
	p, err := New(Config{Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	targets := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "::1"}
	var wg sync.WaitGroup
	for i := range 40 {
		addr := netip.MustParseAddr(targets[i%len(targets)])
		wg.Go(func() {
			r, err := p.Probe(t.Context(), addr)
			if err != nil {
				t.Errorf("Probe(%s): %v", addr, err)
				return
			}
			if r.Sent != 2 || r.Received != 2 {
				t.Errorf("Probe(%s) sent %d received %d, want 2/2", addr, r.Sent, r.Received)
			}
		})
	}
	wg.Wait()
}

// TestNamespace pings, from a test namespace, a live router and a prefix the router drops,
// over both unprivileged and raw sockets.
func TestNamespace(t *testing.T) {
	n := netnstest.New(t)
	// Allow unprivileged ping sockets inside the client namespace only.
	n.Sysctl(t, n.Client, "net.ipv4.ping_group_range", "0 2147483647")
	type want struct {
		Sent, Received int
		LossPercent    float64
		HasRTT         bool
	}
	targets := []struct {
		name string
		addr netip.Addr
		want want
	}{
		{"router v4", netnstest.Router4, want{2, 2, 0, true}},
		{"router v6", netnstest.Router6, want{2, 2, 0, true}},
		{"dropped v4", netnstest.Drop4, want{2, 0, 100, false}},
		{"dropped v6", netnstest.Drop6, want{2, 0, 100, false}},
		{"unreachable v4", netnstest.Unreachable4, want{2, 0, 100, false}},
		{"unreachable v6", netnstest.Unreachable6, want{2, 0, 100, false}},
	}
	for _, kind := range []struct {
		name    string
		kind    SocketKind
		network [2]string
	}{
		{"unprivileged", SocketUnprivileged, [2]string{"udp4", "udp6"}},
		{"raw", SocketRaw, [2]string{"ip4:icmp", "ip6:ipv6-icmp"}},
	} {
		t.Run(kind.name, func(t *testing.T) {
			p, err := New(Config{Count: 2, Timeout: 500 * time.Millisecond, Socket: kind.kind})
			if err != nil {
				t.Fatal(err)
			}
			var startErr error
			n.InClient(t, func() { startErr = p.Start() })
			if startErr != nil {
				t.Fatal(startErr)
			}
			defer p.Close()
			for i, a := range []netip.Addr{netnstest.Router4, netnstest.Router6} {
				if got, err := p.Socket(a); err != nil || got != kind.network[i] {
					t.Errorf("Socket(%s) = %q, %v; want %q", a, got, err, kind.network[i])
				}
			}
			var wg sync.WaitGroup
			for _, tc := range targets {
				wg.Go(func() {
					r, err := p.Probe(t.Context(), tc.addr)
					if err != nil {
						t.Errorf("%s: %v", tc.name, err)
						return
					}
					got := want{r.Sent, r.Received, r.LossPercent, r.AvgMillis != nil}
					if diff := cmp.Diff(tc.want, got); diff != "" {
						t.Errorf("%s (-want +got):\n%s", tc.name, diff)
					}
					if (r.MinMillis != nil) != got.HasRTT || (r.StdMillis != nil) != got.HasRTT {
						t.Errorf("%s: RTT fields half set: %+v", tc.name, r)
					}
				})
			}
			wg.Wait()
		})
	}
}

func TestProbeErrors(t *testing.T) {
	p, err := New(Config{Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Probe(t.Context(), netip.MustParseAddr("127.0.0.1")); err == nil {
		t.Error("Probe before Start succeeded")
	}
	if os.Geteuid() != 0 {
		return
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := p.Probe(ctx, netip.Addr{}); err == nil {
		t.Error("Probe(zero address) succeeded")
	}
	// A cancelled context ends a multi-echo Probe with an error.
	q, err := New(Config{Count: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.Probe(ctx, netip.MustParseAddr("127.0.0.1")); err == nil {
		t.Error("Probe with cancelled context succeeded")
	}
}

// BenchmarkLoopbackEchoes measures echoes per second through the shared sockets, with many
// concurrent single-echo Probes to 127.0.0.1.
func BenchmarkLoopbackEchoes(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("raw ICMP sockets need root")
	}
	p, err := New(Config{Count: 1})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Start(); err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	addr := netip.MustParseAddr("127.0.0.1")
	b.SetParallelism(16)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r, err := p.Probe(context.Background(), addr)
			if err != nil || r.Received != 1 {
				panic(fmt.Sprintf("probe: %+v %v", r, err))
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "echoes/s")
}
