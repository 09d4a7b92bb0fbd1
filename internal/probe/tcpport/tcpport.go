// Package tcpport measures whether a TCP port of an address accepts connections: open (the
// handshake completed), closed (the host answered RST), filtered (no answer before the
// timeout) or unreachable (an ICMP destination-unreachable came back), with the time the
// connect took. An open connection is closed at once; nothing is sent on it.
package tcpport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/v6matrix/v6matrix/internal/probe"
)

// DefaultTimeout is how long a connect may wait for an answer before the port counts as
// filtered: room for an intercontinental round trip and one SYN retransmission (sent
// after 1 s). Linux hands an ICMPv6 unreachable to a connecting socket only when that first
// retransmission timer fires, so a timeout under about 1.2 s turns IPv6 "unreachable" into
// "filtered".
const DefaultTimeout = 3 * time.Second

// State is the outcome of one connect.
type State string

// The states of RECORDS.md (tcp, tcp6 columns).
const (
	StateOpen        State = "open"
	StateClosed      State = "closed"
	StateFiltered    State = "filtered"
	StateUnreachable State = "unreachable"
)

// Result is the outcome of one TCP connect.
type Result struct {
	// Port is the destination port.
	Port uint16
	// State is open, closed, filtered or unreachable.
	State State
	// ConnectMillis is the time from connect() to the SYN-ACK (open) or the RST (closed),
	// a round-trip time; nil for filtered and unreachable.
	ConnectMillis *float64
	// Detail is the error the kernel reported, for closed and unreachable ("connection
	// refused", "no route to host", ...); empty for open and filtered.
	Detail string
}

// Dialer opens connections; *net.Dialer implements it.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Prober connects to TCP ports. The zero value is ready to use.
type Prober struct {
	// Timeout bounds one connect (default DefaultTimeout).
	Timeout time.Duration
	// Dialer opens the connection (default a *net.Dialer).
	Dialer Dialer
	// Now is the clock for ConnectMillis (default time.Now).
	Now func() time.Time
}

// Probe connects to addr:port and classifies the outcome. An error means the measurement
// could not run: ctx ended, no local socket could be made, or the kernel returned an error
// that says nothing about the remote port.
func (p *Prober) Probe(ctx context.Context, addr netip.Addr, port uint16) (Result, error) {
	network, err := probe.Network("tcp", addr)
	if err != nil {
		return Result{}, fmt.Errorf("tcp %d: %w", port, err)
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var d Dialer = &net.Dialer{}
	if p.Dialer != nil {
		d = p.Dialer
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := now()
	conn, err := d.DialContext(dctx, network, probe.HostPort(addr, port))
	rtt := float64(now().Sub(start)) / float64(time.Millisecond)
	res := Result{Port: port}
	if err == nil {
		conn.Close()
		res.State, res.ConnectMillis = StateOpen, &rtt
		return res, nil
	}
	if err := probe.ContextDone(ctx); err != nil {
		return Result{}, fmt.Errorf("tcp %s: %w", probe.HostPort(addr, port), err)
	}
	state, ok := Classify(err)
	if !ok {
		return Result{}, fmt.Errorf("tcp %s: %w", probe.HostPort(addr, port), err)
	}
	res.State = state
	switch state {
	case StateClosed:
		res.ConnectMillis = &rtt
		res.Detail = probe.ErrnoText(err)
	case StateUnreachable:
		res.Detail = probe.ErrnoText(err)
	}
	return res, nil
}

// Classify maps a connect error to a State: ECONNREFUSED (RST) is closed; the errors the
// kernel derives from ICMP destination unreachable (host, network, administratively
// prohibited) are unreachable; timeouts are filtered. It returns false for errors that say
// nothing about the remote port (no buffer space, bad address, ...).
func Classify(err error) (State, bool) {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.ECONNREFUSED:
			return StateClosed, true
		case syscall.ETIMEDOUT:
			return StateFiltered, true
		}
	}
	if probe.IsUnreachable(err) {
		return StateUnreachable, true
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return StateFiltered, true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return StateFiltered, true
	}
	return "", false
}
