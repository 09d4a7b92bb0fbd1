package path

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// headerLen is the probe payload header: the probe's TTL and its sequence
// number, both big-endian uint32. ICMP errors quote it back (Linux routers
// quote far more than the 8 bytes RFC 792 requires), which ties an answer to
// its probe even though every probe has the same 5-tuple.
const headerLen = 8

// zeroPayload pads probes to the size under test. It is never written, so all
// traces share it instead of holding a 64-128 KiB buffer each.
var zeroPayload [128000]byte

// errNoRoute marks a connect that failed because the vantage point has no
// route: an outcome, not a failure of the measurement.
var errNoRoute = errors.New("no route")

// event is one thing read back from the socket: an error-queue entry or a UDP
// reply from the target.
type event struct {
	reply    bool       // a UDP datagram from the target, not an error
	errno    unix.Errno // sock_extended_err.ee_errno
	origin   uint8      // SO_EE_ORIGIN_*
	icmpType uint8      // ee_type
	icmpCode uint8      // ee_code
	info     uint32     // ee_info: the MTU for EMSGSIZE
	offender netip.Addr // who sent the ICMP; invalid for local errors
	recvTTL  int        // TTL / hop limit of the ICMP or reply; -1 if absent
	probeTTL int        // TTL from the quoted payload; -1 if not quoted
	probeSeq uint32     // sequence number from the quoted payload
	quoted   bool       // the payload header came back
}

// sock is one trace's connected UDP socket, registered with Go's poller so a
// wait parks a goroutine, not a thread.
type sock struct {
	f      *os.File
	rc     syscall.RawConn
	family int // 4 or 6
	buf    [64]byte
	oob    [512]byte
}

// openSocket opens, configures and connects the probe socket.
func openSocket(cfg Config, addr netip.Addr) (*sock, error) {
	family, domain := 4, unix.AF_INET
	if addr.Is6() {
		family, domain = 6, unix.AF_INET6
	}
	open := cfg.Socket
	if open == nil {
		open = func(domain int) (int, error) {
			return unix.Socket(domain, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
		}
	}
	fd, err := open(domain)
	if err != nil {
		return nil, fmt.Errorf("open socket: %w", err)
	}
	if err := configure(fd, family, addr, cfg.Port); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "path-probe")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("raw conn: %w", err)
	}
	return &sock{f: f, rc: rc, family: family}, nil
}

// configure sets tracepath's socket options and connects to addr:port. PMTU
// "probe" mode sets DF but ignores the kernel's cached path MTU, so every
// trace measures afresh and each too-big probe draws its own ICMP answer.
func configure(fd, family int, addr netip.Addr, port int) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		return fmt.Errorf("set non-blocking: %w", err)
	}
	type opt struct {
		level, name, value int
		label              string
	}
	opts := []opt{
		{unix.SOL_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_PROBE, "IP_MTU_DISCOVER"},
		{unix.SOL_IP, unix.IP_RECVERR, 1, "IP_RECVERR"},
		{unix.SOL_IP, unix.IP_RECVTTL, 1, "IP_RECVTTL"},
	}
	var sa unix.Sockaddr
	if family == 4 {
		sa = &unix.SockaddrInet4{Port: port, Addr: addr.As4()}
	} else {
		opts = []opt{
			{unix.SOL_IPV6, unix.IPV6_MTU_DISCOVER, unix.IPV6_PMTUDISC_PROBE, "IPV6_MTU_DISCOVER"},
			{unix.SOL_IPV6, unix.IPV6_RECVERR, 1, "IPV6_RECVERR"},
			{unix.SOL_IPV6, unix.IPV6_RECVHOPLIMIT, 1, "IPV6_RECVHOPLIMIT"},
		}
		sa = &unix.SockaddrInet6{Port: port, Addr: addr.As16()}
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.name, o.value); err != nil {
			return fmt.Errorf("setsockopt %s: %w", o.label, err)
		}
	}
	if err := unix.Connect(fd, sa); err != nil {
		if errors.Is(err, unix.ENETUNREACH) || errors.Is(err, unix.EHOSTUNREACH) {
			return errNoRoute
		}
		return fmt.Errorf("connect: %w", err)
	}
	return nil
}

func (s *sock) close() error { return s.f.Close() }

// cancelOnDone makes a canceled ctx end the current wait at once by moving
// the deadlines into the past. send and wait check ctx after setting their
// deadline, so a cancel is never lost between the two.
func (s *sock) cancelOnDone(ctx context.Context) (stop func() bool) {
	return context.AfterFunc(ctx, func() { s.f.SetDeadline(time.Unix(1, 0)) })
}

// setTTL sets the TTL / hop limit of the following probes.
func (s *sock) setTTL(ttl int) error {
	var serr error
	err := s.rc.Control(func(fd uintptr) {
		if s.family == 6 {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_UNICAST_HOPS, ttl)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_TTL, ttl)
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("set ttl %d: %w", ttl, err)
	}
	return nil
}

// send sends one probe of size payload bytes (header included). A kernel
// refusal (EMSGSIZE above the local MTU, a pending ICMP error) is returned as
// is: the caller reads the error queue, as tracepath does.
func (s *sock) send(ctx context.Context, ttl int, seq uint32, size int, deadline time.Time) error {
	var hdr [headerLen]byte
	binary.BigEndian.PutUint32(hdr[0:4], uint32(ttl))
	binary.BigEndian.PutUint32(hdr[4:8], seq)
	bufs := [][]byte{hdr[:], zeroPayload[:max(size-headerLen, 0)]}
	if err := s.f.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("write deadline: %w", err)
	}
	if err := ctx.Err(); err != nil { // checked after the deadline: see cancelOnDone
		return err
	}
	var serr error
	err := s.rc.Write(func(fd uintptr) bool {
		_, serr = unix.SendmsgBuffers(int(fd), bufs, nil, nil, 0)
		return serr != unix.EAGAIN
	})
	if err != nil {
		return err
	}
	return serr
}

// wait returns what arrives before deadline: at least one event, or none when
// the deadline passes first.
func (s *sock) wait(ctx context.Context, deadline time.Time) ([]event, error) {
	if err := s.f.SetReadDeadline(deadline); err != nil {
		return nil, fmt.Errorf("read deadline: %w", err)
	}
	if err := ctx.Err(); err != nil { // checked after the deadline: see cancelOnDone
		return nil, err
	}
	var evs []event
	var rerr error
	err := s.rc.Read(func(fd uintptr) bool {
		evs, rerr = s.drain(int(fd))
		return len(evs) > 0 || rerr != nil
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil, nil
	}
	if err != nil {
		// The poller reports a bare EPOLLERR as "not pollable"; the error
		// queue is then readable directly.
		evs, rerr = s.drainNow()
		if len(evs) == 0 && rerr == nil {
			return nil, fmt.Errorf("wait: %w", err)
		}
	}
	return evs, rerr
}

// drainNow reads whatever is queued without waiting.
func (s *sock) drainNow() ([]event, error) {
	var evs []event
	var rerr error
	err := s.rc.Control(func(fd uintptr) { evs, rerr = s.drain(int(fd)) })
	if err != nil {
		return nil, fmt.Errorf("drain: %w", err)
	}
	return evs, rerr
}

// drain reads the pending UDP reply, if any, then every error-queue entry.
func (s *sock) drain(fd int) ([]event, error) {
	var evs []event
	n, oobn, _, _, err := unix.Recvmsg(fd, s.buf[:], s.oob[:], unix.MSG_DONTWAIT)
	switch {
	case err == nil:
		ev := s.parse(n, oobn)
		ev.reply = true
		evs = append(evs, ev)
	case err == unix.EAGAIN || errors.Is(err, unix.ECONNREFUSED) || isICMPErrno(err):
		// Nothing to read, or the pending socket error mirroring an
		// error-queue entry (reading it clears it); the queue has the detail.
	default:
		return evs, fmt.Errorf("recvmsg: %w", err)
	}
	for range 64 { // bounded: the queue holds at most a few entries per probe
		n, oobn, _, _, err := unix.Recvmsg(fd, s.buf[:], s.oob[:], unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			return evs, fmt.Errorf("recvmsg errqueue: %w", err)
		}
		ev := s.parse(n, oobn)
		if ev.errno == 0 {
			continue // no sock_extended_err: nothing to learn
		}
		evs = append(evs, ev)
	}
	return evs, nil
}

// isICMPErrno reports errors a connected UDP socket returns from recvmsg when
// an ICMP error is pending.
func isICMPErrno(err error) bool {
	var e unix.Errno
	if !errors.As(err, &e) {
		return false
	}
	switch e {
	case unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EMSGSIZE, unix.EACCES, unix.EPROTO, unix.ETIMEDOUT:
		return true
	}
	return false
}

// parse decodes the payload header and the control messages of one recvmsg.
func (s *sock) parse(n, oobn int) event {
	ev := event{recvTTL: -1, probeTTL: -1}
	if n >= headerLen {
		ttl := binary.BigEndian.Uint32(s.buf[0:4])
		if ttl >= 1 && ttl <= 255 {
			ev.quoted = true
			ev.probeTTL = int(ttl)
			ev.probeSeq = binary.BigEndian.Uint32(s.buf[4:8])
		}
	}
	msgs, err := unix.ParseSocketControlMessage(s.oob[:oobn])
	if err != nil {
		return ev
	}
	for _, m := range msgs {
		switch {
		case (m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_RECVERR) ||
			(m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_RECVERR):
			parseExtendedErr(m.Data, &ev)
		case (m.Header.Level == unix.SOL_IP && m.Header.Type == unix.IP_TTL) ||
			(m.Header.Level == unix.SOL_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT):
			if len(m.Data) >= 4 {
				ev.recvTTL = int(int32(binary.NativeEndian.Uint32(m.Data)))
			}
		}
	}
	return ev
}

// parseExtendedErr decodes struct sock_extended_err and the offender address
// (SO_EE_OFFENDER) that follows it.
func parseExtendedErr(b []byte, ev *event) {
	const size = 16 // sizeof(struct sock_extended_err)
	if len(b) < size {
		return
	}
	ev.errno = unix.Errno(binary.NativeEndian.Uint32(b[0:4]))
	ev.origin = b[4]
	ev.icmpType = b[5]
	ev.icmpCode = b[6]
	ev.info = binary.NativeEndian.Uint32(b[8:12])
	sa := b[size:]
	if len(sa) < 2 {
		return
	}
	switch binary.NativeEndian.Uint16(sa[0:2]) {
	case unix.AF_INET:
		if len(sa) >= 8 {
			ev.offender = netip.AddrFrom4([4]byte(sa[4:8]))
		}
	case unix.AF_INET6:
		if len(sa) >= 24 {
			ev.offender = netip.AddrFrom16([16]byte(sa[8:24])).Unmap()
		}
	}
}
