package ntpprobe_test

import (
	"context"
	"math"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/probe/netnstest"
	"github.com/v6matrix/v6matrix/internal/probe/ntpprobe"
	"github.com/v6matrix/v6matrix/internal/probe/ntpprobe/ntpserver"
)

// startNTP runs an ntpserver on host:port and returns its port.
func startNTP(t *testing.T, host string, port uint16, cfg ntpserver.Config) uint16 {
	t.Helper()
	s, err := ntpserver.Listen("udp", netip.AddrPortFrom(netip.MustParseAddr(host), port).String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return uint16(s.Addr().(*net.UDPAddr).Port)
}

// startRaw runs a UDP responder on host:port that answers each datagram with reply(query).
func startRaw(t *testing.T, host string, port uint16, reply func(q []byte) []byte) {
	t.Helper()
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(netip.MustParseAddr(host), port).String())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(reply(buf[:n]), from)
		}
	}()
	t.Cleanup(func() { pc.Close() })
}

// answer returns a server-mode reply to q, altered by edit.
func answer(edit func(*ntpprobe.Packet)) func([]byte) []byte {
	return func(b []byte) []byte {
		var q ntpprobe.Packet
		if err := q.Unmarshal(b); err != nil {
			return nil
		}
		now := ntpprobe.TimestampOf(time.Now())
		r := ntpprobe.Packet{Version: 4, Mode: ntpprobe.ModeServer, Stratum: 3, Origin: q.Transmit, Receive: now, Transmit: now}
		edit(&r)
		return r.Marshal()
	}
}

type outcome struct {
	Status   ntpprobe.Status
	Stratum  *int
	Leap     *int
	KissCode string
	Detail   string
}

func outcomeOf(r ntpprobe.Result) outcome {
	return outcome{r.Status, r.Stratum, r.Leap, r.KissCode, r.Detail}
}

func TestLoopback(t *testing.T) {
	two, one, zero, three := 2, 1, 0, 3
	const skew = 250 * time.Millisecond
	skewed := func() time.Time { return time.Now().Add(skew) }
	port := startNTP(t, "127.0.0.1", 0, ntpserver.Config{Now: skewed})
	startNTP(t, "::1", port, ntpserver.Config{Now: skewed})
	startNTP(t, "127.0.0.2", port, ntpserver.Config{Stratum: 1, Leap: 3, Now: skewed})
	startNTP(t, "127.0.0.3", port, ntpserver.Config{KissCode: "RATE"})
	startRaw(t, "127.0.0.4", port, answer(func(p *ntpprobe.Packet) { p.Mode = 5 }))
	startRaw(t, "127.0.0.5", port, answer(func(p *ntpprobe.Packet) { p.Origin++ }))
	startRaw(t, "127.0.0.6", port, func([]byte) []byte { return []byte("short") })
	silent, err := net.ListenPacket("udp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.7"), port).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })

	tests := []struct {
		name     string
		addr     string
		want     outcome
		checkOff bool
	}{
		{"ok v4", "127.0.0.1", outcome{Status: ntpprobe.StatusOK, Stratum: &two, Leap: &zero}, true},
		{"ok v6", "::1", outcome{Status: ntpprobe.StatusOK, Stratum: &two, Leap: &zero}, true},
		{"stratum 1 unsynchronised", "127.0.0.2", outcome{Status: ntpprobe.StatusOK, Stratum: &one, Leap: &three}, true},
		{"kiss-o'-death", "127.0.0.3", outcome{Status: ntpprobe.StatusInvalid, KissCode: "RATE", Detail: "kiss-o'-death"}, false},
		{"broadcast mode", "127.0.0.4", outcome{Status: ntpprobe.StatusInvalid, Detail: "mode 5, want 4 (server)"}, false},
		{"wrong origin", "127.0.0.5", outcome{Status: ntpprobe.StatusInvalid, Detail: "origin timestamp does not match our transmit timestamp"}, false},
		{"short packet", "127.0.0.6", outcome{Status: ntpprobe.StatusInvalid, Detail: "ntp: packet shorter than 48 bytes"}, false},
		{"timeout", "127.0.0.7", outcome{Status: ntpprobe.StatusTimeout}, false},
		{"port unreachable", "127.0.0.8", outcome{Status: ntpprobe.StatusUnreachable, Detail: "connection refused"}, false},
	}
	p := &ntpprobe.Prober{Port: port, Timeout: 400 * time.Millisecond}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := p.Probe(t.Context(), netip.MustParseAddr(tc.addr))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, outcomeOf(r)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if !tc.checkOff {
				if r.OffsetMillis != nil || r.RTTMillis != nil {
					t.Errorf("offset/RTT set without a valid answer: %+v", r)
				}
				return
			}
			if r.OffsetMillis == nil || r.RTTMillis == nil {
				t.Fatalf("offset or RTT missing: %+v", r)
			}
			if want := float64(skew / time.Millisecond); math.Abs(*r.OffsetMillis-want) > 20 {
				t.Errorf("OffsetMillis = %.3f, want %.0f ± 20", *r.OffsetMillis, want)
			}
			if *r.RTTMillis < 0 || *r.RTTMillis > 50 {
				t.Errorf("RTTMillis = %.3f, want a loopback delay", *r.RTTMillis)
			}
		})
	}
}

func TestNamespace(t *testing.T) {
	n := netnstest.New(t)
	tests := []struct {
		name string
		addr netip.Addr
		want outcome
	}{
		{"dropped v4", netnstest.Drop4, outcome{Status: ntpprobe.StatusTimeout}},
		{"dropped v6", netnstest.Drop6, outcome{Status: ntpprobe.StatusTimeout}},
		{"host unreachable v4", netnstest.Unreachable4, outcome{Status: ntpprobe.StatusUnreachable, Detail: "no route to host"}},
		{"no route v6", netnstest.Unreachable6, outcome{Status: ntpprobe.StatusUnreachable, Detail: "network is unreachable"}},
		{"prohibited v6", netnstest.Prohibited6, outcome{Status: ntpprobe.StatusUnreachable, Detail: "permission denied"}},
	}
	p := &ntpprobe.Prober{Timeout: 300 * time.Millisecond}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var r ntpprobe.Result
			var err error
			n.InClient(t, func() { r, err = p.Probe(context.Background(), tc.addr) })
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
	p := &ntpprobe.Prober{Timeout: 100 * time.Millisecond}
	if r, err := p.Probe(t.Context(), netip.Addr{}); err == nil {
		t.Errorf("Probe(zero address) = %+v, want error", r)
	}
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	p = &ntpprobe.Prober{Port: uint16(silent.LocalAddr().(*net.UDPAddr).Port), Timeout: time.Second}
	if r, err := p.Probe(ctx, netip.MustParseAddr("127.0.0.1")); err == nil {
		t.Errorf("Probe with the caller's deadline = %+v, want error", r)
	}
}

func TestPacketRoundTrip(t *testing.T) {
	in := ntpprobe.Packet{Leap: 1, Version: 4, Mode: 4, Stratum: 2, Poll: 6, Precision: -20,
		RootDelay: 0x10, RootDispersion: 0x20, ReferenceID: [4]byte{'G', 'P', 'S', 0},
		Reference: 1, Origin: 2, Receive: 3, Transmit: 4}
	b := in.Marshal()
	if len(b) != ntpprobe.PacketBytes || b[0] != 0x64 {
		t.Fatalf("Marshal: %d bytes, first byte %#x, want 48, 0x64", len(b), b[0])
	}
	var out ntpprobe.Packet
	if err := out.Unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, out); diff != "" {
		t.Errorf("round trip (-in +out):\n%s", diff)
	}
	now := time.Now()
	if d := ntpprobe.TimestampOf(now).Time().Sub(now); d.Abs() > time.Microsecond {
		t.Errorf("timestamp round trip off by %v", d)
	}
	// 1970-01-01 is 2208988800 s after the NTP epoch.
	if got := ntpprobe.TimestampOf(time.Unix(0, 0)) >> 32; got != 2208988800 {
		t.Errorf("NTP seconds of the Unix epoch = %d", got)
	}
}
