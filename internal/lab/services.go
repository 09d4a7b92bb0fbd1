package lab

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/v6matrix/v6matrix/internal/probe/ntpprobe/ntpserver"
)

// defaultPorts are the usual ports of the service kinds.
var defaultPorts = map[string]int{"http": 80, "https": 443, "smtp": 25, "ntp": 123, "tcp": 443}

// startServices starts every non-DNS service on every address of its set.
func (l *Lab) startServices(ctx context.Context, s *servers) error {
	for _, sv := range l.sc.Services {
		port := sv.Port
		if port == 0 {
			port = defaultPorts[sv.Kind]
		}
		set := l.sc.AddrSets[sv.Set]
		for _, a := range set.Addrs {
			ap := netip.AddrPortFrom(a, uint16(port))
			if err := l.startService(ctx, s, sv, set.PTR, ap); err != nil {
				return fmt.Errorf("%s on %s: %w", sv.Kind, ap, err)
			}
			note := sv.Set
			if sv.Cert != "" {
				note += ", cert " + sv.Cert
			}
			s.listeners = append(s.listeners, fmt.Sprintf("%s %s (%s)", sv.Kind, ap, note))
		}
	}
	return nil
}

func (l *Lab) startService(ctx context.Context, s *servers, sv Service, ptr string, ap netip.AddrPort) error {
	if sv.Kind == "ntp" {
		var srv *ntpserver.Server
		err := l.listenIn(ap.Addr(), func() (err error) {
			srv, err = ntpserver.Listen("udp", ap.String(), ntpserver.Config{Logger: l.log})
			return err
		})
		if err != nil {
			return err
		}
		s.closers = append(s.closers, srv.Close)
		go func() {
			if err := srv.Serve(); err != nil {
				l.log.Warn("lab ntp server stopped", "addr", ap, "err", err)
			}
		}()
		return nil
	}
	var ln net.Listener
	err := l.listenIn(ap.Addr(), func() (err error) {
		ln, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
		return err
	})
	if err != nil {
		return err
	}
	mode := sv.Cert
	if mode == "" {
		mode = "valid"
	}
	tlsConf := s.ca.tlsConfig(mode, ptr)
	switch sv.Kind {
	case "http", "https":
		if sv.Kind == "https" {
			ln = tls.NewListener(ln, tlsConf)
		}
		// The TLS handshake is read under ReadHeaderTimeout: it is twice the probe's TLS
		// timeout (tlsprobe.DefaultTimeout) so that a handshake stuck behind the IPv6
		// path-MTU black hole always ends with the crawler's timeout, never with the
		// server closing first (equal, they raced: "EOF" in one crawl, "i/o timeout" in
		// another, and TestLabDistributedKill's exports differed).
		hs := &http.Server{Handler: httpHandler(sv.BodyBytes), ReadHeaderTimeout: 20 * time.Second,
			ErrorLog:    slog.NewLogLogger(l.log.Handler(), slog.LevelDebug),
			ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 30 * time.Second}
		go func() { _ = hs.Serve(ln) }()
		s.closers = append(s.closers, func() error {
			cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := hs.Shutdown(cctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			return nil
		})
	case "smtp":
		greeting := ptr
		if greeting == "" {
			greeting = ap.Addr().String()
		}
		go acceptLoop(ln, func(c net.Conn) { serveSMTP(c, greeting, tlsConf) })
		s.closers = append(s.closers, ln.Close)
	case "tcp":
		go acceptLoop(ln, func(c net.Conn) {
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			_, _ = c.Write([]byte("v6matrix lab: plain TCP here, no TLS\r\n"))
			_ = c.Close()
		})
		s.closers = append(s.closers, ln.Close)
	}
	return nil
}

// acceptLoop serves each connection in its own goroutine until ln is closed.
func acceptLoop(ln net.Listener, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		go serve(c)
	}
}

// httpHandler answers every request with a short text naming the host and local address,
// padded to bodyBytes (a large body exposes a PMTU black hole).
func httpHandler(bodyBytes int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		body := fmt.Sprintf("v6matrix lab: host %s, served on %v\n", r.Host, local)
		if pad := bodyBytes - len(body); pad > 0 {
			body += strings.Repeat("x", pad-1) + "\n"
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Server", "v6matrix-lab")
		_, _ = w.Write([]byte(body))
	})
}
