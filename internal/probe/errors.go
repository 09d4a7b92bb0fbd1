package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// IsUnreachable reports the socket errors the kernel derives from ICMP destination
// unreachable: port unreachable (ECONNREFUSED, for UDP), host and network unreachable,
// administratively prohibited (EACCES, EHOSTUNREACH), protocol unreachable (ENOPROTOOPT), and
// a local firewall reject (EPERM). For TCP, ECONNREFUSED is an RST, not ICMP: tcpport
// checks it first.
func IsUnreachable(err error) bool {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case syscall.ECONNREFUSED, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EACCES,
		syscall.EPERM, syscall.EHOSTDOWN, syscall.ENONET, syscall.EPROTO, syscall.ENOPROTOOPT:
		return true
	}
	return false
}

// IsTimeout reports a network timeout.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// ErrnoText is the kernel's message for err ("no route to host"), without the address
// decoration of net.OpError; err.Error() when err carries no errno.
func ErrnoText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// RecvErrDialer returns a copy of d (a new Dialer when d is nil) whose UDP sockets have
// IP_RECVERR / IPV6_RECVERR set. Without it Linux reports only "hard" ICMP errors (port
// unreachable, prohibited) to a connected UDP socket and drops host and network unreachable,
// which a probe would then mistake for a timeout.
func RecvErrDialer(d *net.Dialer) *net.Dialer {
	var nd net.Dialer
	if d != nil {
		nd = *d
	}
	prev := nd.Control
	nd.Control = func(network, address string, c syscall.RawConn) error {
		if prev != nil {
			if err := prev(network, address, c); err != nil {
				return err
			}
		}
		var serr error
		err := c.Control(func(fd uintptr) {
			switch network {
			case "udp6":
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_RECVERR, 1)
			case "udp4":
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_RECVERR, 1)
			}
		})
		if err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("set RECVERR on %s socket: %w", network, serr)
		}
		return nil
	}
	return &nd
}

// ContextDone returns ctx's error, also when its deadline has passed but its timer has not
// fired yet. A probe calls it after an operation timed out to decide whether the timeout
// was its own (an outcome: filtered, timeout) or the caller's (an error: not measured).
func ContextDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}
