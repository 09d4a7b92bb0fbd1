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
	if m.Unpack(p) != nil {
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
