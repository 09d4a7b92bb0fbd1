package resolve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/dnssrv"
	"github.com/v6matrix/v6matrix/internal/result"
)

// newTestClient returns a client of the server at addr.
func newTestClient(t testing.TB, addr netip.AddrPort, timeout time.Duration, retries int) *Client {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Servers, cfg.Timeout, cfg.Retries = []netip.AddrPort{addr}, timeout, retries
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSharedSockets sends many queries at once over the shared sockets and checks
// that each gets the answer to its own question.
func TestSharedSockets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv, err := dnssrv.Listen(ctx, "127.0.0.1:0", dnssrv.NewSyntheticServer("test", 1000))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := newTestClient(t, srv.Addr(), 2*time.Second, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	sem := make(chan struct{}, 64) // the server's single socket drops bursts of thousands
	for n := 1; n <= 1000; n++ {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			h, err := c.Host(ctx, fmt.Sprintf("time.d%d.test", n))
			want := result.StatusNXDomain // ntp and time exist for one domain in 10
			if n%10 == 5 {
				want = result.StatusOK
			}
			switch {
			case err != nil:
				errs <- err
			case h.Status != want || want == result.StatusOK && len(h.V4) != 1:
				errs <- fmt.Errorf("d%d: got %+v, want status %s (and one IPv4 address when ok)", n, h, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := c.Queries(); got < 1000 || got > 1100 {
		t.Errorf("sent %d queries, want 1000 A and 100 AAAA at most", got)
	}
}

// silentServer reads queries and answers none, or answers with the wrong question.
func silentServer(t *testing.T, answer func(q *dns.Msg) *dns.Msg) netip.AddrPort {
	return udpResponder(t, func(q *dns.Msg, send func(*dns.Msg)) {
		if answer != nil {
			send(answer(q))
		}
	})
}

// udpResponder serves UDP on loopback until the test ends: handle gets each query that
// unpacks and a send function it may call, then or later, to answer it.
func udpResponder(t *testing.T, handle func(q *dns.Msg, send func(*dns.Msg))) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			q := new(dns.Msg)
			if q.Unpack(buf[:n]) != nil {
				continue
			}
			handle(q, func(m *dns.Msg) {
				if wire, err := m.Pack(); err == nil {
					pc.WriteToUDPAddrPort(wire, from)
				}
			})
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestOutcomes(t *testing.T) {
	wrongQuestion := func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Question[0].Name = "forged.test."
		return m
	}
	wrongID := func(q *dns.Msg) *dns.Msg {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Id++
		return m
	}
	// A closed port: ICMP port unreachable, seen as a refused socket.
	pc, _ := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	closedPort := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	pc.Close()

	for _, tc := range []struct {
		name    string
		addr    netip.AddrPort
		want    Answer
		maxTime time.Duration
	}{
		{"no answer", silentServer(t, nil), Answer{Status: result.StatusTimeout}, 2 * time.Second},
		{"answer to another question", silentServer(t, wrongQuestion), Answer{Status: result.StatusTimeout}, 2 * time.Second},
		{"answer with another id", silentServer(t, wrongID), Answer{Status: result.StatusTimeout}, 2 * time.Second},
		{"closed port", closedPort, Answer{Status: result.StatusTimeout}, 200 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, tc.addr, 300*time.Millisecond, 1)
			start := time.Now()
			a, err := c.Query(context.Background(), "d1.test", dns.TypeA)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, a); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if took := time.Since(start); took > tc.maxTime {
				t.Errorf("took %v, want at most %v", took, tc.maxTime)
			}
		})
	}
}

// TestCancel checks that a query waiting for a silent server ends as soon as its
// context does, well before the timeout (Ctrl-C stops a crawl at once).
func TestCancel(t *testing.T) {
	c := newTestClient(t, silentServer(t, nil), 5*time.Second, 2)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Query(ctx, "d1.test", dns.TypeA)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("returned after %v, want about 100ms", took)
	}
	// The client stays usable after a cancelled query.
	if n := c.udp[0].inFlight(); n != 0 {
		t.Errorf("%d queries still registered after cancel", n)
	}
}

// BenchmarkHost measures a host lookup (A and AAAA) against the synthetic server,
// with 64 lookups in flight.
func BenchmarkHost(b *testing.B) {
	ctx := context.Background()
	srv, err := dnssrv.Listen(ctx, "127.0.0.1:0", dnssrv.NewSyntheticServer("test", 100_000))
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	c := newTestClient(b, srv.Addr(), 2*time.Second, 0)
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		n := 0
		for pb.Next() {
			n++
			if _, err := c.Host(ctx, fmt.Sprintf("www.d%d.test", n%100_000+1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(c.Queries())/b.Elapsed().Seconds(), "queries/s")
}
