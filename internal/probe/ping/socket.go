package ping

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// family is the shared socket of one address family.
type family struct {
	v6    bool
	conn  *icmp.PacketConn // nil when the family could not be opened
	err   error            // why conn is nil
	raw   bool             // raw socket (the kernel keeps our ICMP identifier)
	kind  string           // network name given to Listen
	proto int              // IANA protocol number for icmp.ParseMessage
}

// Start opens the ICMP socket of each family and starts its reader. A family that cannot
// be opened (no IPv6 on the host, no permission) is recorded: Probe to such an address
// returns an error saying why. Start fails only if neither family can be opened.
func (p *Pinger) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return errors.New("ping: Pinger already started")
	}
	listen := p.Listen
	if listen == nil {
		listen = icmp.ListenPacket
	}
	for i, v6 := range []bool{false, true} {
		f := &family{v6: v6, proto: 1}
		if v6 {
			f.proto = 58
		}
		f.open(listen, p.cfg.Socket)
		p.fams[i] = f
		if f.conn == nil {
			p.logger().Warn("ping: family unavailable", "ipv6", v6, "err", f.err)
			continue
		}
		p.wg.Go(func() { p.read(f) })
	}
	if p.fams[0].conn == nil && p.fams[1].conn == nil {
		return fmt.Errorf("ping: no ICMP socket: %w", errors.Join(p.fams[0].err, p.fams[1].err))
	}
	p.started = true
	return nil
}

// Close closes the sockets and waits for the readers to end.
func (p *Pinger) Close() error {
	p.mu.Lock()
	var errs []error
	for _, f := range p.fams {
		if f != nil && f.conn != nil {
			errs = append(errs, f.conn.Close())
		}
	}
	p.started = false
	p.mu.Unlock()
	p.wg.Wait()
	return errors.Join(errs...)
}

// Socket returns the network name of the socket used for addr's family ("udp4", "ip4:icmp",
// "udp6", "ip6:ipv6-icmp"), or an error saying why the family is unavailable.
func (p *Pinger) Socket(addr netip.Addr) (string, error) {
	f, err := p.family(addr)
	if err != nil {
		return "", err
	}
	return f.kind, nil
}

// open opens the family's socket of the requested kind.
func (f *family) open(listen func(network, address string) (*icmp.PacketConn, error), kind SocketKind) {
	unpriv, raw, wildcard := "udp4", "ip4:icmp", "0.0.0.0"
	if f.v6 {
		unpriv, raw, wildcard = "udp6", "ip6:ipv6-icmp", "::"
	}
	var errs []error
	if kind != SocketRaw {
		c, err := listen(unpriv, wildcard)
		if err == nil {
			f.conn, f.kind = c, unpriv
			return
		}
		errs = append(errs, fmt.Errorf("listen %s: %w", unpriv, err))
	}
	if kind != SocketUnprivileged {
		c, err := listen(raw, wildcard)
		if err == nil {
			f.conn, f.kind, f.raw = c, raw, true
			f.filter()
			return
		}
		errs = append(errs, fmt.Errorf("listen %s: %w", raw, err))
	}
	f.err = errors.Join(errs...)
}

// filter asks the kernel to pass only echo replies to a raw socket, which otherwise
// receives every ICMP message the host gets. Failing is harmless: read filters too.
func (f *family) filter() {
	if f.v6 {
		var flt ipv6.ICMPFilter
		flt.SetAll(true)
		flt.Accept(ipv6.ICMPTypeEchoReply)
		_ = f.conn.IPv6PacketConn().SetICMPFilter(&flt)
		return
	}
	var flt ipv4.ICMPFilter
	flt.SetAll(true)
	flt.Accept(ipv4.ICMPTypeEchoReply)
	_ = f.conn.IPv4PacketConn().SetICMPFilter(&flt)
}

// send writes echo number key to dst.
func (f *family) send(p *Pinger, dst netip.Addr, key uint64, seq int) error {
	var typ icmp.Type = ipv4.ICMPTypeEcho
	if f.v6 {
		typ = ipv6.ICMPTypeEchoRequest
	}
	// On an unprivileged socket the kernel replaces the identifier with the socket's own.
	m := icmp.Message{Type: typ, Body: &icmp.Echo{ID: p.id, Seq: seq, Data: p.payload(key)}}
	b, err := m.Marshal(nil) // the kernel computes the ICMPv6 checksum
	if err != nil {
		return fmt.Errorf("marshal echo: %w", err)
	}
	var to net.Addr = &net.IPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	if !f.raw {
		to = &net.UDPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	}
	p.mu.Lock()
	if e, ok := p.pending[key]; ok {
		e.sentAt = p.now() // as close to the write as the lock allows
	}
	p.mu.Unlock()
	if _, err := f.conn.WriteTo(b, to); err != nil {
		return fmt.Errorf("send echo: %w", err)
	}
	return nil
}

// read receives replies until the socket is closed.
func (p *Pinger) read(f *family) {
	buf := make([]byte, 1500)
	id := p.id
	if !f.raw {
		if ua, ok := f.conn.LocalAddr().(*net.UDPAddr); ok {
			id = ua.Port // the identifier the kernel put in our echoes
		}
	}
	for {
		n, from, err := f.conn.ReadFrom(buf)
		at := p.now()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.logger().Warn("ping: read", "socket", f.kind, "err", err)
			if !isTransient(err) {
				return
			}
			time.Sleep(10 * time.Millisecond) // never spin on a repeating error
			continue
		}
		m, err := icmp.ParseMessage(f.proto, buf[:n])
		if err != nil || (m.Type != ipv4.ICMPTypeEchoReply && m.Type != ipv6.ICMPTypeEchoReply) {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		if !ok || e.ID != id {
			continue
		}
		key, ok := p.keyFrom(e.Data)
		if !ok {
			continue
		}
		p.deliver(key, e.Seq, addrOf(from), at)
	}
}

func isTransient(err error) bool {
	return errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH)
}

// addrOf converts a reply's source address.
func addrOf(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.IPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	return addr
}
