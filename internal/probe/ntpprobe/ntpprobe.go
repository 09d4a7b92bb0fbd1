// Package ntpprobe measures an NTP server: it sends one RFC 5905 client-mode query (a
// 48-byte version 4 header, mode 3, with a transmit timestamp) to UDP port 123 and reports
// the server's stratum and the clock offset ((t2-t1)+(t3-t4))/2 and round-trip delay
// (t4-t1)-(t3-t2), or the outcome: timeout, unreachable (ICMP error) or invalid (a reply that
// is not a valid server answer to our query, including a kiss-o'-death).
package ntpprobe

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/v6matrix/v6matrix/internal/probe"
)

// Defaults of Prober.
const (
	DefaultPort    = 123
	DefaultTimeout = 2 * time.Second
)

// Status is the outcome of an NTP query (the ntp, ntp6 columns of RECORDS.md hold the
// stratum when Status is ok).
type Status string

// The statuses of an NTP query.
const (
	StatusOK          Status = "ok"
	StatusTimeout     Status = "timeout"
	StatusUnreachable Status = "unreachable"
	StatusInvalid     Status = "invalid"
)

// Result is the outcome of one NTP query. Stratum, OffsetMillis and RTTMillis are nil unless
// Status is ok.
type Result struct {
	Status Status
	// Stratum is the server's stratum (1 = primary; 16 = unsynchronised).
	Stratum *int
	// OffsetMillis is the server clock minus ours, in milliseconds.
	OffsetMillis *float64
	// RTTMillis is the round-trip delay, excluding the server's processing time.
	RTTMillis *float64
	// Leap is the leap indicator of a valid reply (3 = clock unsynchronised).
	Leap *int
	// KissCode is the kiss-o'-death code ("RATE", "DENY", ...) of a stratum-0 reply.
	KissCode string
	// Detail says why a reply was invalid, or the kernel error for unreachable.
	Detail string
}

// Prober sends NTP client queries. The zero value is ready to use.
type Prober struct {
	// Port is the destination port (default 123; tests use another).
	Port uint16
	// Timeout bounds the wait for the reply (default DefaultTimeout).
	Timeout time.Duration
	// Dialer opens the UDP socket (default a *net.Dialer).
	Dialer *net.Dialer
	// Now is our clock, t1 and t4 (default time.Now).
	Now func() time.Time
}

// Probe sends one client query to addr and validates the answer. An error means the query
// could not run (invalid address, ctx ended, a local socket error).
func (p *Prober) Probe(ctx context.Context, addr netip.Addr) (Result, error) {
	network, err := probe.Network("udp", addr)
	if err != nil {
		return Result{}, fmt.Errorf("ntp: %w", err)
	}
	port, timeout, now := p.Port, p.Timeout, p.Now
	if port == 0 {
		port = DefaultPort
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if now == nil {
		now = time.Now
	}
	server := probe.HostPort(addr, port)
	parent := ctx
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	conn, err := probe.RecvErrDialer(p.Dialer).DialContext(ctx, network, server)
	if err != nil {
		return Result{}, fmt.Errorf("ntp %s: %w", server, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return Result{}, fmt.Errorf("ntp %s: %w", server, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	t1 := now()
	// The transmit timestamp doubles as a nonce (RFC 5905 §9.1): its low bits, below the
	// clock's precision, are random, so a blind spoofer cannot guess the origin to echo.
	var nonce [4]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return Result{}, fmt.Errorf("ntp: nonce: %w", err)
	}
	xmt := TimestampOf(t1)&^0xfff | Timestamp(binary.BigEndian.Uint32(nonce[:])&0xfff)
	q := Packet{Version: 4, Mode: ModeClient, Transmit: xmt}
	if _, err := conn.Write(q.Marshal()); err != nil {
		if probe.IsUnreachable(err) {
			return Result{Status: StatusUnreachable, Detail: probe.ErrnoText(err)}, nil
		}
		return Result{}, fmt.Errorf("ntp %s: send: %w", server, err)
	}
	buf := make([]byte, 1024)
	var invalid *Result
	for {
		n, err := conn.Read(buf)
		t4 := now()
		if err != nil {
			switch {
			case probe.ContextDone(parent) != nil:
				return Result{}, fmt.Errorf("ntp %s: %w", server, probe.ContextDone(parent))
			case probe.IsTimeout(err) || ctx.Err() != nil:
				if invalid != nil {
					return *invalid, nil
				}
				return Result{Status: StatusTimeout}, nil
			case probe.IsUnreachable(err):
				return Result{Status: StatusUnreachable, Detail: probe.ErrnoText(err)}, nil
			}
			return Result{}, fmt.Errorf("ntp %s: read: %w", server, err)
		}
		r, matched := evaluate(buf[:n], xmt, t1, t4)
		if matched {
			return r, nil
		}
		// Not an answer to our query (a stale or spoofed packet): keep listening, but
		// report it if nothing better comes.
		invalid = &r
	}
}

// evaluate validates a reply to the query with transmit timestamp xmt sent at t1 and
// received at t4. matched is false when the reply does not answer our query (origin
// mismatch), so that the caller can wait for the real answer.
func evaluate(b []byte, xmt Timestamp, t1, t4 time.Time) (r Result, matched bool) {
	var p Packet
	if err := p.Unmarshal(b); err != nil {
		return Result{Status: StatusInvalid, Detail: err.Error()}, false
	}
	if p.Origin != xmt {
		return Result{Status: StatusInvalid, Detail: "origin timestamp does not match our transmit timestamp"}, false
	}
	switch {
	case p.Mode != ModeServer:
		return Result{Status: StatusInvalid, Detail: fmt.Sprintf("mode %d, want 4 (server)", p.Mode)}, true
	case p.Version < 1 || p.Version > 4:
		return Result{Status: StatusInvalid, Detail: fmt.Sprintf("version %d", p.Version)}, true
	case p.Stratum == 0:
		return Result{Status: StatusInvalid, KissCode: kissCode(p.ReferenceID), Detail: "kiss-o'-death"}, true
	case p.Transmit == 0:
		return Result{Status: StatusInvalid, Detail: "zero transmit timestamp"}, true
	}
	t2, t3 := p.Receive.Time(), p.Transmit.Time()
	offset := (t2.Sub(t1) + t3.Sub(t4)) / 2
	delay := t4.Sub(t1) - t3.Sub(t2)
	ms := func(d time.Duration) *float64 { v := float64(d) / float64(time.Millisecond); return &v }
	stratum, leap := int(p.Stratum), int(p.Leap)
	return Result{Status: StatusOK, Stratum: &stratum, Leap: &leap,
		OffsetMillis: ms(offset), RTTMillis: ms(max(delay, 0))}, true
}

// kissCode returns the ASCII kiss code of a stratum-0 reply's reference ID.
func kissCode(id [4]byte) string {
	n := 0
	for n < 4 && id[n] >= 0x20 && id[n] < 0x7f {
		n++
	}
	return string(id[:n])
}
