package dnssrv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Server is a DNS handler served over UDP and TCP on one address.
type Server struct {
	addr      netip.AddrPort
	udp, tcp  *dns.Server
	closeOnce sync.Once
	closeErr  error
	stop      chan struct{}
}

// listenAttempts bounds the retries when port 0 gives UDP a port TCP cannot have.
const listenAttempts = 20

// Listen serves h over UDP and TCP on addr ("127.0.0.1:0" picks a free port,
// the same for both transports). The server stops when ctx ends or on Close.
func Listen(ctx context.Context, addr string, h dns.Handler) (*Server, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("listen dns %q: %w", addr, err)
	}
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ; attempt++ {
		pc, err = net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err != nil {
			return nil, fmt.Errorf("listen dns udp %s: %w", ap, err)
		}
		bound := pc.LocalAddr().(*net.UDPAddr).AddrPort()
		ln, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr(), bound.Port())))
		if err == nil {
			ap = netip.AddrPortFrom(ap.Addr(), bound.Port())
			break
		}
		pc.Close()
		if ap.Port() != 0 || attempt >= listenAttempts {
			return nil, fmt.Errorf("listen dns tcp %s: %w", bound, err)
		}
	}
	s := &Server{
		addr: ap,
		udp:  &dns.Server{PacketConn: pc, Handler: h, UDPSize: 65535},
		tcp:  &dns.Server{Listener: ln, Handler: h, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second},
		stop: make(chan struct{}),
	}
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		ready := make(chan error, 1)
		srv.NotifyStartedFunc = func() { notify(ready, nil) }
		go func() {
			err := srv.ActivateAndServe()
			notify(ready, fmt.Errorf("serve dns %s: %w", ap, err))
		}()
		select {
		case err := <-ready:
			if err != nil {
				s.Close()
				return nil, err
			}
		case <-time.After(5 * time.Second):
			s.Close()
			return nil, fmt.Errorf("serve dns %s: not started after 5s", ap)
		}
	}
	go func() {
		select {
		case <-ctx.Done():
			s.Close()
		case <-s.stop:
		}
	}()
	return s, nil
}

// notify sends err on ready unless a value is already waiting.
func notify(ready chan<- error, err error) {
	select {
	case ready <- err:
	default:
	}
}

// Addr returns the address the server listens on (UDP and TCP).
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Close stops the server and waits for its sockets to close.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s.closeErr = errors.Join(s.udp.ShutdownContext(ctx), s.tcp.ShutdownContext(ctx))
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("close dns server %s: %w", s.addr, s.closeErr)
		}
	})
	return s.closeErr
}
