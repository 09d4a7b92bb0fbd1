package tcpport

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/probe/netnstest"
)

// listen opens a TCP listener on loopback that accepts and closes connections.
func listen(t testing.TB, network, address string) (netip.AddrPort, func()) {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatalf("listen %s %s: %v", network, address, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	})
	return netip.MustParseAddrPort(ln.Addr().String()), func() { ln.Close(); wg.Wait() }
}

// closedPort returns a loopback port nothing listens on (one just released).
func closedPort(t *testing.T, network, address string) netip.AddrPort {
	t.Helper()
	ap, stop := listen(t, network, address)
	stop()
	return ap
}

// outcome is the comparable part of a Result (RTTs vary).
type outcome struct {
	State  State
	HasRTT bool
	Detail string
}

func outcomeOf(r Result) outcome {
	return outcome{r.State, r.ConnectMillis != nil, r.Detail}
}

func TestLoopback(t *testing.T) {
	open4, stop4 := listen(t, "tcp4", "127.0.0.1:0")
	defer stop4()
	open6, stop6 := listen(t, "tcp6", "[::1]:0")
	defer stop6()
	tests := []struct {
		name string
		ap   netip.AddrPort
		want outcome
	}{
		{"open v4", open4, outcome{StateOpen, true, ""}},
		{"open v6", open6, outcome{StateOpen, true, ""}},
		{"closed v4", closedPort(t, "tcp4", "127.0.0.1:0"), outcome{StateClosed, true, "connection refused"}},
		{"closed v6", closedPort(t, "tcp6", "[::1]:0"), outcome{StateClosed, true, "connection refused"}},
	}
	p := &Prober{Timeout: time.Second}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := p.Probe(t.Context(), tc.ap.Addr(), tc.ap.Port())
			if err != nil {
				t.Fatal(err)
			}
			if r.Port != tc.ap.Port() {
				t.Errorf("Port = %d, want %d", r.Port, tc.ap.Port())
			}
			if diff := cmp.Diff(tc.want, outcomeOf(r)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if r.ConnectMillis != nil && (*r.ConnectMillis < 0 || *r.ConnectMillis > 1000) {
				t.Errorf("ConnectMillis = %v", *r.ConnectMillis)
			}
		})
	}
}

// TestNamespace checks filtered (a router that drops) and unreachable (a router that sends
// ICMP host unreachable or administratively prohibited), and a closed port on a remote host.
func TestNamespace(t *testing.T) {
	n := netnstest.New(t)
	tests := []struct {
		name string
		addr netip.Addr
		want outcome
	}{
		{"router closed v4", netnstest.Router4, outcome{StateClosed, true, "connection refused"}},
		{"router closed v6", netnstest.Router6, outcome{StateClosed, true, "connection refused"}},
		{"dropped v4", netnstest.Drop4, outcome{StateFiltered, false, ""}},
		{"dropped v6", netnstest.Drop6, outcome{StateFiltered, false, ""}},
		{"host unreachable v4", netnstest.Unreachable4, outcome{StateUnreachable, false, "no route to host"}},
		{"no route v6", netnstest.Unreachable6, outcome{StateUnreachable, false, "network is unreachable"}},
		{"prohibited v4", netnstest.Prohibited4, outcome{StateUnreachable, false, "no route to host"}},
		{"prohibited v6", netnstest.Prohibited6, outcome{StateUnreachable, false, "permission denied"}},
	}
	// Linux reports an ICMPv6 error to a connecting socket only when the first SYN
	// retransmission timer (1 s) fires, so the timeout must be longer than that.
	p := &Prober{Timeout: 1500 * time.Millisecond}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var r Result
			var err error
			// The whole connect runs in the namespace: the socket is made by Probe.
			n.InClient(t, func() { r, err = p.Probe(context.Background(), tc.addr, 443) })
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, outcomeOf(r)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	p := &Prober{Timeout: time.Second}
	if _, err := p.Probe(t.Context(), netip.Addr{}, 80); err == nil {
		t.Error("Probe(zero address) succeeded")
	}
	ap := closedPort(t, "tcp4", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if r, err := p.Probe(ctx, ap.Addr(), ap.Port()); err == nil {
		t.Errorf("Probe with cancelled context = %+v, want error", r)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want State
		ok   bool
	}{
		{"deadline", context.DeadlineExceeded, StateFiltered, true},
		{"other", net.UnknownNetworkError("x"), "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := Classify(tc.err)
			if got != tc.want || ok != tc.ok {
				t.Errorf("Classify(%v) = %q, %v; want %q, %v", tc.err, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// BenchmarkLoopbackOpen measures connects per second to an open loopback port.
func BenchmarkLoopbackOpen(b *testing.B) {
	ap, stop := listen(b, "tcp4", "127.0.0.1:0")
	defer stop()
	p := &Prober{Timeout: time.Second}
	for b.Loop() {
		r, err := p.Probe(context.Background(), ap.Addr(), ap.Port())
		if err != nil || r.State != StateOpen {
			b.Fatalf("%+v %v", r, err)
		}
	}
}
