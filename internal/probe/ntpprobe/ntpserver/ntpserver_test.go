package ntpserver

import (
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/probe/ntpprobe"
)

func TestServe(t *testing.T) {
	fixed := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	s, err := Listen("udp", "127.0.0.1:0", Config{Stratum: 1, ReferenceID: [4]byte{'G', 'P', 'S', 0}, Now: func() time.Time { return fixed }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	c, err := net.Dial("udp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	// A non-client packet is ignored; the client query after it is answered.
	sym := ntpprobe.Packet{Version: 4, Mode: 1, Transmit: 7}
	q := ntpprobe.Packet{Version: 3, Mode: ntpprobe.ModeClient, Poll: 6, Transmit: 42}
	for _, p := range []ntpprobe.Packet{sym, q} {
		if _, err := c.Write(p.Marshal()); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var got ntpprobe.Packet
	if err := got.Unmarshal(buf[:n]); err != nil {
		t.Fatal(err)
	}
	ts := ntpprobe.TimestampOf(fixed)
	want := ntpprobe.Packet{Version: 3, Mode: ntpprobe.ModeServer, Stratum: 1, Poll: 6, Precision: -20,
		ReferenceID: [4]byte{'G', 'P', 'S', 0}, Reference: ntpprobe.TimestampOf(fixed.Add(-time.Minute)),
		Origin: 42, Receive: ts, Transmit: ts}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("reply (-want +got):\n%s", diff)
	}
	if s.Served() != 1 {
		t.Errorf("Served = %d, want 1", s.Served())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve after Close = %v", err)
	}
	if _, err := Listen("udp", "127.0.0.1:0", Config{KissCode: "TOOLONG"}); err == nil {
		t.Error("Listen accepted a 7-byte kiss code")
	}
}
