package resolve

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// rawServer answers every UDP and TCP query on one loopback port with the same bytes,
// the query's ID written over their first two: a hostile or broken resolver.
type rawServer struct {
	mu    sync.Mutex
	reply []byte
	addr  netip.AddrPort
}

func (s *rawServer) set(b []byte) {
	s.mu.Lock()
	s.reply = append(s.reply[:0], b...)
	s.mu.Unlock()
}

func (s *rawServer) answer(q []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]byte(nil), s.reply...)
	if len(out) >= 2 && len(q) >= 2 {
		copy(out, q[:2])
	}
	return out
}

func startRawServer(tb testing.TB) *rawServer {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		tb.Fatal(err)
	}
	s := &rawServer{addr: netip.MustParseAddrPort(pc.LocalAddr().String())}
	go func() {
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(s.answer(buf[:n]), from)
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(time.Second))
				var l [2]byte
				if _, err := io.ReadFull(c, l[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(l[:]))
				if _, err := io.ReadFull(c, q); err != nil {
					return
				}
				a := s.answer(q)
				c.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(a))), a...))
			}()
		}
	}()
	tb.Cleanup(func() { pc.Close(); ln.Close() })
	return s
}

// packed returns a reply to name/qtype with the records, packed.
func packed(tb testing.TB, name string, qtype uint16, truncated bool, rrs ...string) []byte {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	m := new(dns.Msg)
	m.SetReply(q)
	m.Truncated = truncated
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			tb.Fatal(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	b, err := m.Pack()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// FuzzHost answers the crawler's host lookups (A and AAAA, following CNAME chains) with
// arbitrary bytes: no panic, no hang, and a host with only well-formed results: a status,
// at most MaxAddrs addresses per family of the right family, a chain of at most MaxCNAME.
func FuzzHost(f *testing.F) {
	f.Add(packed(f, "www.example.com", dns.TypeA, false, "www.example.com. 60 IN A 192.0.2.1"))
	f.Add(packed(f, "www.example.com", dns.TypeAAAA, false, "www.example.com. 60 IN AAAA 2001:db8::1",
		"www.example.com. 60 IN AAAA ::ffff:192.0.2.1"))
	f.Add(packed(f, "www.example.com", dns.TypeA, false, "www.example.com. 60 IN CNAME a.example.net.",
		"a.example.net. 60 IN CNAME www.example.com."))
	f.Add(packed(f, "www.example.com", dns.TypeA, true))
	f.Add(packed(f, "www.example.com", dns.TypeNS, false, "www.example.com. 60 IN NS ns1.example.com."))
	f.Add([]byte{0, 0, 0x81, 0x83})
	srv := startRawServer(f)
	c, err := NewClient(Config{Servers: []netip.AddrPort{srv.addr}, Timeout: 5 * time.Millisecond, UDPSize: 1232})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { c.Close() })
	f.Fuzz(func(t *testing.T, reply []byte) {
		srv.set(reply)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		h, err := c.Host(ctx, "www.example.com")
		if ctx.Err() != nil {
			t.Fatal("the lookup did not end within 5 s")
		}
		if err != nil {
			return // a local socket failure: not the answer's doing
		}
		if h.Status == "" || len(h.V4) > MaxAddrs || len(h.V6) > MaxAddrs || len(h.CNAME) > MaxCNAME {
			t.Fatalf("host %+v", h)
		}
		for _, a := range h.V4 {
			if !a.Is4() {
				t.Fatalf("IPv4 list holds %s", a)
			}
		}
		for _, a := range h.V6 {
			if !a.Is6() {
				t.Fatalf("IPv6 list holds %s", a)
			}
		}
		if _, err := c.Lookup(ctx, "example.com", dns.TypeNS); err != nil && ctx.Err() != nil {
			t.Fatal("the NS lookup did not end within 5 s")
		}
	})
}
