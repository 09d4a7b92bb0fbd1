package resolve

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Each resolver gets a few connected UDP sockets shared by every query: the querying
// goroutine writes its packet, and one reader goroutine per socket takes the answers in
// batches (recvmmsg), unpacks them and hands each to the query waiting for its id. Compared
// with a socket per query in flight, this saves a read that finds nothing, a deadline
// change and a wake-up per query, and a query waits on its context too, so that
// cancelling a crawl ends it at once.
const (
	socketsPerServer = 4
	readBatch        = 16
	// readBufferBytes is asked for each socket (the kernel caps it at net.core.rmem_max):
	// answers queue there while the crawler is busy.
	readBufferBytes = 1 << 20
	maxUDPMessage   = 65535
)

// errClosed is given to queries still waiting when the client closes.
var errClosed = errors.New("resolver client closed")

// udpSocket is one connected socket and the queries waiting for an answer on it.
type udpSocket struct {
	conn  *net.UDPConn
	batch batchConn
	mu    sync.Mutex
	wait  map[uint16]*waiter // by query id
	err   error              // set when the socket is closed: no more queries
}

// batchConn reads several datagrams per system call (recvmmsg).
type batchConn interface {
	ReadBatch([]ipv4.Message, int) (int, error)
}

// waiter is a query waiting for its answer. Waiters are pooled: a waiter leaves the
// map (under the socket's lock) before its reply is sent to out, so a late answer can
// never reach a waiter reused by another query. out is the channel of the batch the
// query belongs to (buffered for every try of the batch: the reader never blocks);
// tag tells the batch which try it answers.
type waiter struct {
	id  uint16
	q   dns.Question
	out chan<- reply
	tag int
}

type reply struct {
	m   *dns.Msg
	err error
	tag int
}

func newWaiter() any { return &waiter{} }

// maxInFlight bounds the queries waiting on one socket, below the 65,536 query ids.
const maxInFlight = 60_000

// udpServer is the sockets of one resolver.
type udpServer struct {
	addr    netip.AddrPort
	sockets []*udpSocket
	next    atomic.Uint32
	readers sync.WaitGroup
	waiters sync.Pool // of *waiter: no allocation per query
}

func newUDPServer(addr netip.AddrPort) (*udpServer, error) {
	s := &udpServer{addr: addr, waiters: sync.Pool{New: newWaiter}}
	for range socketsPerServer {
		conn, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			s.close()
			return nil, fmt.Errorf("dial resolver %v: %w", addr, err)
		}
		conn.SetReadBuffer(readBufferBytes) // best effort: the default queue is small
		u := &udpSocket{conn: conn, wait: map[uint16]*waiter{}}
		if addr.Addr().Is4() || addr.Addr().Is4In6() {
			u.batch = ipv4.NewPacketConn(conn)
		} else {
			u.batch = ipv6.NewPacketConn(conn)
		}
		s.sockets = append(s.sockets, u)
		s.readers.Go(u.read)
	}
	return s, nil
}

// inFlight returns the number of queries waiting for an answer.
func (s *udpServer) inFlight() int {
	n := 0
	for _, u := range s.sockets {
		u.mu.Lock()
		n += len(u.wait)
		u.mu.Unlock()
	}
	return n
}

// close closes the sockets and waits for their readers, which fail the queries still
// waiting.
func (s *udpServer) close() {
	for _, u := range s.sockets {
		u.conn.Close()
	}
	s.readers.Wait()
}

// pending is a try sent and not yet answered.
type pending struct {
	u *udpSocket
	w *waiter
}

// send sends the packed query wire for question q with an id chosen here (written
// into wire) and registers it: its answer, or a socket error, will be sent to out with
// tag. The caller must release the pending try.
func (s *udpServer) send(wire []byte, q dns.Question, out chan<- reply, tag int, sent *atomic.Int64) (pending, error) {
	u := s.sockets[int(s.next.Add(1))%len(s.sockets)]
	w := s.waiters.Get().(*waiter)
	u.mu.Lock()
	if err := u.err; err != nil || len(u.wait) >= maxInFlight {
		u.mu.Unlock()
		s.waiters.Put(w)
		if err == nil {
			err = fmt.Errorf("resolver %v: %d queries in flight on one socket", s.addr, maxInFlight)
		}
		return pending{}, err
	}
	var id uint16
	for {
		id = dns.Id()
		if _, busy := u.wait[id]; !busy {
			break
		}
	}
	w.id, w.q, w.out, w.tag = id, q, out, tag
	u.wait[id] = w
	u.mu.Unlock()
	p := pending{u: u, w: w}

	binary.BigEndian.PutUint16(wire, id)
	sent.Add(1)
	if _, err := u.conn.Write(wire); err != nil {
		s.release(p)
		return pending{}, err
	}
	return p, nil
}

// release takes a try out of its socket's map (when the reader has not already) and
// returns its waiter to the pool. A reply that raced in is in the batch's channel,
// which nobody reads any more: the waiter is free either way.
func (s *udpServer) release(p pending) {
	p.u.forget(p.w.id, p.w)
	p.w.out = nil
	s.waiters.Put(p.w)
}

// forget removes the waiter for id if it is still there and reports whether it was.
func (u *udpSocket) forget(id uint16, w *waiter) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.wait[id] == w {
		delete(u.wait, id)
		return true
	}
	return false
}

// read takes answers off the socket until it is closed. An answer that does not match
// a waiting query (late, forged or damaged) is dropped. ICMP port unreachable shows
// up as a read error on a connected socket: every query waiting on it gets that error,
// as they would have with a socket each (they all went to the same server).
func (u *udpSocket) read() {
	msgs := make([]ipv4.Message, readBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, maxUDPMessage)}
	}
	errs := 0
	for {
		n, err := u.batch.ReadBatch(msgs, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				u.fail(errClosed, true)
				return
			}
			u.fail(err, false)
			if errs++; errs > 1 {
				time.Sleep(time.Millisecond) // a persistent error must not spin
			}
			continue
		}
		errs = 0
		for _, msg := range msgs[:n] {
			u.deliver(msg.Buffers[0][:msg.N])
		}
	}
}

// deliver hands one packet to the query it answers. The check and the removal from the
// map happen under one lock, so the answer cannot reach a waiter reused meanwhile.
func (u *udpSocket) deliver(p []byte) {
	m := new(dns.Msg)
	if m.Unpack(trimPositive(p)) != nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if w := u.wait[m.Id]; w != nil && answers(w.id, w.q, m) {
		delete(u.wait, m.Id)
		w.out <- reply{m: m, tag: w.tag}
	}
}

// fail gives err to every waiting query; closed also refuses queries from now on.
func (u *udpSocket) fail(err error, closed bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if closed {
		u.err = err
	}
	for id, w := range u.wait {
		delete(u.wait, id)
		w.out <- reply{err: err, tag: w.tag}
	}
}

// packQuery returns the wire form of a query for name/qtype with recursion desired and,
// when udpSize is not 0, an EDNS0 OPT record; its id is set per try.
func packQuery(name string, qtype uint16, udpSize uint16) ([]byte, error) {
	b := make([]byte, 12, 12+len(name)+2+4+11)
	binary.BigEndian.PutUint16(b[2:], 0x0100) // RD
	binary.BigEndian.PutUint16(b[4:], 1)      // QDCOUNT
	if udpSize > 0 {
		binary.BigEndian.PutUint16(b[10:], 1) // ARCOUNT
	}
	b = b[:cap(b)]
	off, err := dns.PackDomainName(dns.Fqdn(name), b, 12, nil, false)
	if err != nil {
		return nil, err
	}
	b = append(b[:off], byte(qtype>>8), byte(qtype), 0, 1)
	if udpSize > 0 {
		b = append(b, 0, 0, 41, byte(udpSize>>8), byte(udpSize), 0, 0, 0, 0, 0, 0)
	}
	return b, nil
}

// tcpQuery is the query for q as a message, for the TCP retry of a truncated answer.
func (c *Client) tcpQuery(q dns.Question) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(q.Name, q.Qtype)
	if c.cfg.UDPSize > 0 {
		m.SetEdns0(c.cfg.UDPSize, false)
	}
	return m
}

// trimPositive returns the packet with its authority and additional sections left
// out when the answer section has records and the authority section holds no SOA:
// the crawl reads the answer, and the authority section only for an SOA (a negative
// answer at the end of a CNAME chain); the name server records that come with every
// positive answer from an authoritative server cost most of the unpacking otherwise.
// The packet is changed in place (the reader's buffer).
func trimPositive(p []byte) []byte {
	if len(p) < 12 {
		return p
	}
	qd, an, ns := binary.BigEndian.Uint16(p[4:]), binary.BigEndian.Uint16(p[6:]), binary.BigEndian.Uint16(p[8:])
	if an == 0 {
		return p
	}
	off := 12
	var ok bool
	for range qd {
		if off, ok = SkipName(p, off); !ok {
			return p
		}
		off += 4
	}
	for range an {
		if off, ok = skipRR(p, off); !ok {
			return p
		}
	}
	end := off
	for range ns {
		if off, ok = SkipName(p, off); !ok || off+10 > len(p) {
			return p
		}
		if binary.BigEndian.Uint16(p[off:]) == dns.TypeSOA {
			return p
		}
		off += 10 + int(binary.BigEndian.Uint16(p[off+8:]))
	}
	if end > len(p) {
		return p
	}
	binary.BigEndian.PutUint16(p[8:], 0)
	binary.BigEndian.PutUint16(p[10:], 0)
	return p[:end]
}

// SkipName returns the offset after the (possibly compressed) name at offset off of
// the DNS message p, and false when the name runs past p or has an invalid label
// type. Readers of raw answers use it (trimPositive, the bench's reference).
func SkipName(p []byte, off int) (int, bool) {
	for off < len(p) {
		switch l := p[off]; {
		case l == 0:
			return off + 1, true
		case l&0xc0 == 0xc0:
			return off + 2, off+2 <= len(p)
		case l&0xc0 != 0:
			return off, false
		default:
			off += int(l) + 1
		}
	}
	return off, false
}

// skipRR returns the offset after the resource record at off.
func skipRR(p []byte, off int) (int, bool) {
	off, ok := SkipName(p, off)
	if !ok || off+10 > len(p) {
		return off, false
	}
	off += 10 + int(binary.BigEndian.Uint16(p[off+8:]))
	return off, off <= len(p)
}
