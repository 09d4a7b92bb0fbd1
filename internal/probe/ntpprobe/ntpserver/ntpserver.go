// Package ntpserver is a minimal RFC 5905 server-mode responder for tests and the lab: it
// answers each client-mode (3) query with a server-mode (4) packet carrying the query's
// transmit timestamp as origin and its own receive and transmit timestamps. It keeps no
// clock discipline: its time is Config.Now, so a test can give it any offset, stratum or
// kiss-o'-death it needs.
package ntpserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/v6matrix/v6matrix/internal/probe/ntpprobe"
)

// Config describes the server's answers. The zero value is a stratum-2 server with the
// system clock.
type Config struct {
	// Stratum is the stratum to announce (default 2). 0 with KissCode sends kiss-o'-death.
	Stratum uint8
	// KissCode, when set, makes every answer a kiss-o'-death (stratum 0) with this code
	// ("RATE", "DENY", ...) as reference ID.
	KissCode string
	// ReferenceID is the reference ID of a normal answer (default "LOCL").
	ReferenceID [4]byte
	// Leap is the leap indicator (3 = unsynchronised).
	Leap uint8
	// Now is the server's clock (default time.Now); add an offset to simulate a wrong clock.
	Now func() time.Time
	// Logger receives malformed-packet notes (default slog.Default()).
	Logger *slog.Logger
}

// Server answers NTP client queries on one UDP socket.
type Server struct {
	cfg  Config
	conn net.PacketConn

	mu     sync.Mutex
	closed bool
	served int
}

// Listen opens the UDP socket (network "udp", "udp4" or "udp6"; address e.g.
// "127.0.0.1:0") for a server with cfg. Call Serve to answer queries.
func Listen(network, address string, cfg Config) (*Server, error) {
	if len(cfg.KissCode) > 4 {
		return nil, fmt.Errorf("ntpserver: kiss code %q longer than 4 bytes", cfg.KissCode)
	}
	if cfg.Stratum == 0 && cfg.KissCode == "" {
		cfg.Stratum = 2
	}
	if cfg.ReferenceID == ([4]byte{}) {
		cfg.ReferenceID = [4]byte{'L', 'O', 'C', 'L'}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	conn, err := net.ListenPacket(network, address)
	if err != nil {
		return nil, fmt.Errorf("ntpserver: %w", err)
	}
	return &Server{cfg: cfg, conn: conn}, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.conn.LocalAddr() }

func (s *Server) addServed(n int) {
	s.mu.Lock()
	s.served += n
	s.mu.Unlock()
}

// Served is the number of queries answered so far.
func (s *Server) Served() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served
}

// Serve answers queries until Close; it then returns nil. Other read errors are returned.
func (s *Server) Serve() error {
	buf := make([]byte, 1024)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		t2 := s.cfg.Now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("ntpserver: read: %w", err)
		}
		var q ntpprobe.Packet
		if err := q.Unmarshal(buf[:n]); err != nil || q.Mode != ntpprobe.ModeClient {
			s.cfg.Logger.Debug("ntpserver: ignored packet", "from", from, "bytes", n)
			continue
		}
		reply := s.answer(&q, t2)
		// Counted before the reply leaves, so that a client that has its answer never
		// sees it uncounted; a reply that could not be sent is taken back.
		s.addServed(1)
		if _, err := s.conn.WriteTo(reply.Marshal(), from); err != nil {
			s.addServed(-1)
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.cfg.Logger.Warn("ntpserver: write", "to", from, "err", err)
		}
	}
}

// answer builds the server-mode reply to q received at t2.
func (s *Server) answer(q *ntpprobe.Packet, t2 time.Time) *ntpprobe.Packet {
	r := &ntpprobe.Packet{
		Leap:      s.cfg.Leap,
		Version:   q.Version,
		Mode:      ntpprobe.ModeServer,
		Stratum:   s.cfg.Stratum,
		Poll:      q.Poll,
		Precision: -20, // about a microsecond
		Origin:    q.Transmit,
		Receive:   ntpprobe.TimestampOf(t2),
	}
	if s.cfg.KissCode != "" {
		r.Stratum = 0
		copy(r.ReferenceID[:], s.cfg.KissCode)
	} else {
		r.ReferenceID = s.cfg.ReferenceID
		r.Reference = ntpprobe.TimestampOf(t2.Add(-time.Minute))
	}
	r.Transmit = ntpprobe.TimestampOf(s.cfg.Now())
	return r
}

// Close stops the server; Serve returns.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.conn.Close()
}
