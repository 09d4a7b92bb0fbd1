// Package dnsblast is the DNS crawl's reference: what massdns does for its users, in
// Go, so that `v6matrix bench --reference` can compare the crawler with it against the
// same server in the same invocation (massdns itself is not packaged here).
//
// Like massdns it sends queries built by hand from a few non-blocking UDP sockets,
// keeps a fixed window of queries in flight (tuned: see DefaultConfig), matches answers to queries by id in a
// table, retries a query after a fixed interval, and reads answers only as far as
// needed to find the next names; it stores nothing. The query mix is the crawler's:
// per domain NS, SOA, MX, A and AAAA of www, A of ntp and time (their AAAA when the
// name exists), then A and AAAA of every NS and MX host once per run, and the target
// of a CNAME the server did not resolve.
package dnsblast

import (
	"context"
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

// Config sets up a run.
type Config struct {
	Server   netip.AddrPort
	Sockets  int           // UDP sockets, each with a reader
	Window   int           // queries in flight at most (massdns -s)
	Interval time.Duration // wait before a query is sent again (massdns -i)
	Tries    int           // sends of one query at most (massdns -c)
	UDPSize  uint16        // EDNS0 buffer size advertised, as the crawler (0: none)
}

// DefaultConfig returns massdns's defaults (500 ms, 50 tries) but a window of 1,000
// queries in flight, not massdns's 10,000, with the crawler's socket count and EDNS0
// size: against NSD on loopback 10,000 overflow the socket buffers and the resends
// halve the rate (100,000 domains: 8,955 domains/s with 1,000, 5,462 with 3,000, 4,806
// with 10,000), and a massdns user tunes -s to the server.
func DefaultConfig(server netip.AddrPort) Config {
	return Config{Server: server, Sockets: 4, Window: 1_000, Interval: 500 * time.Millisecond, Tries: 50, UDPSize: 1232}
}

// Report is the outcome of a run.
type Report struct {
	Domains  int
	Queries  int64 // sent, retries included
	Answers  int64 // queries answered
	Timeouts int64 // queries given up after Tries sends
	Hosts    int   // distinct NS and MX hosts looked up
	Elapsed  time.Duration
}

// query kinds: what an answer leads to.
const (
	kindPlain  = iota // nothing follows (SOA, www, shared hosts' addresses, CNAME targets)
	kindNS            // NS and MX: their hosts' A and AAAA, once per run
	kindExists        // A of ntp/time: AAAA when the name exists
)

type query struct {
	name  string
	qtype uint16
	kind  uint8
}

// slot is a query in flight, at the index of its id.
type slot struct {
	q     query
	wire  []byte
	sent  time.Time
	tries int
	gen   uint32 // sends of this slot: an entry of the send order is stale when it differs
	used  bool
}

// sentID is a send, in the order of sends.
type sentID struct {
	id  uint16
	gen uint32
}

type engine struct {
	cfg   Config
	socks []*net.UDPConn

	mu       sync.Mutex
	table    []slot // by id
	free     []uint16
	queue    []query // follow-ups, sent before new domains
	seen     map[string]bool
	inflight int
	rep      Report
	wake     chan struct{}
	sent     atomic.Int64
}

// Run resolves the domains with the crawler's query mix and returns the report.
func Run(ctx context.Context, cfg Config, domains []string) (Report, error) {
	switch {
	case !cfg.Server.IsValid():
		return Report{}, errors.New("dnsblast: no server")
	case cfg.Sockets < 1 || cfg.Window < 1 || cfg.Window > 60_000 || cfg.Tries < 1 || cfg.Interval <= 0:
		return Report{}, fmt.Errorf("dnsblast: invalid config %+v", cfg)
	}
	e := &engine{cfg: cfg, table: make([]slot, 1<<16), seen: map[string]bool{}, wake: make(chan struct{}, 1)}
	for id := range 1 << 16 {
		e.free = append(e.free, uint16(id))
	}
	// Ids are taken in a scrambled order, as a resolver would.
	for i := len(e.free) - 1; i > 0; i-- {
		j := int(dns.Id()) % (i + 1)
		e.free[i], e.free[j] = e.free[j], e.free[i]
	}
	var readers sync.WaitGroup
	defer func() {
		for _, s := range e.socks {
			s.Close()
		}
		readers.Wait()
	}()
	for range cfg.Sockets {
		s, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(cfg.Server))
		if err != nil {
			return Report{}, fmt.Errorf("dnsblast: %w", err)
		}
		s.SetReadBuffer(1 << 20)
		e.socks = append(e.socks, s)
		readers.Go(func() { e.read(s) })
	}
	start := time.Now()
	err := e.send(ctx, domains)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rep.Domains, e.rep.Hosts, e.rep.Queries = len(domains), len(e.seen), e.sent.Load()
	e.rep.Elapsed = time.Since(start)
	return e.rep, err
}

// send is the sending loop: it fills the window from the follow-ups, then from the
// domains, sends again what timed out, and ends when nothing is left.
func (e *engine) send(ctx context.Context, domains []string) error {
	next := 0     // next domain
	var out []int // ids to send, in order
	var pending []query
	buf := make([]byte, 0, 512)
	tick := time.NewTicker(e.cfg.Interval / 5)
	defer tick.Stop()
	var order []sentID // sends in order, for timeouts
	for {
		e.mu.Lock()
		for e.inflight < e.cfg.Window {
			if len(e.queue) == 0 {
				if next == len(domains) {
					break
				}
				d := domains[next]
				next++
				pending = append(pending[:0],
					query{d, dns.TypeNS, kindNS}, query{d, dns.TypeSOA, kindPlain}, query{d, dns.TypeMX, kindNS},
					query{"www." + d, dns.TypeA, kindPlain}, query{"www." + d, dns.TypeAAAA, kindPlain},
					query{"ntp." + d, dns.TypeA, kindExists}, query{"time." + d, dns.TypeA, kindExists})
				e.queue = append(e.queue, pending...)
			}
			q := e.queue[0]
			e.queue = e.queue[1:]
			id := e.free[len(e.free)-1]
			e.free = e.free[:len(e.free)-1]
			var err error
			if buf, err = appendQuery(buf[:0], q.name, q.qtype, e.cfg.UDPSize); err != nil {
				e.free = append(e.free, id)
				continue // a name the wire cannot hold: skipped, as massdns does
			}
			s := &e.table[id]
			s.q, s.wire, s.tries, s.used = q, append(s.wire[:0], buf...), 0, true
			e.inflight++
			out = append(out, int(id))
		}
		done := e.inflight == 0 && len(e.queue) == 0 && next == len(domains)
		e.mu.Unlock()
		if done {
			return nil
		}
		now := time.Now()
		for _, id := range out {
			gen, err := e.write(uint16(id), now)
			if err != nil {
				return err
			}
			order = append(order, sentID{uint16(id), gen})
		}
		out = out[:0]
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-e.wake:
		case <-tick.C:
			var err error
			if order, err = e.retry(order); err != nil {
				return err
			}
		}
	}
}

// write sends the query in slot id and returns the send's generation.
func (e *engine) write(id uint16, now time.Time) (uint32, error) {
	e.mu.Lock()
	s := &e.table[id]
	if !s.used {
		e.mu.Unlock()
		return 0, nil
	}
	s.wire[0], s.wire[1] = byte(id>>8), byte(id)
	s.tries++
	s.gen++
	s.sent = now
	wire, gen := s.wire, s.gen
	e.mu.Unlock()
	e.sent.Add(1)
	// The wire is not changed while the slot is in use, and a slot is only reused by
	// this goroutine: the write needs no lock.
	_, err := e.socks[int(id)%len(e.socks)].Write(wire)
	if err != nil && !isNetError(err) {
		return gen, fmt.Errorf("dnsblast: send: %w", err)
	}
	return gen, nil
}

// retry sends again the queries whose interval ended and gives up on those sent Tries
// times; order is the sends in order (stale ones are skipped).
func (e *engine) retry(order []sentID) ([]sentID, error) {
	now := time.Now()
	var again []uint16
	e.mu.Lock()
	i := 0
	for ; i < len(order); i++ {
		s := &e.table[order[i].id]
		if !s.used || s.gen != order[i].gen {
			continue
		}
		if now.Sub(s.sent) < e.cfg.Interval {
			break
		}
		if s.tries >= e.cfg.Tries {
			e.release(order[i].id)
			e.rep.Timeouts++
			continue
		}
		again = append(again, order[i].id)
	}
	e.mu.Unlock()
	order = order[i:]
	for _, id := range again {
		gen, err := e.write(id, now)
		if err != nil {
			return order, err
		}
		order = append(order, sentID{id, gen})
	}
	return order, nil
}

// release frees a slot; e.mu is held.
func (e *engine) release(id uint16) {
	e.table[id].used = false
	e.free = append(e.free, id)
	e.inflight--
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// read takes answers off one socket until it is closed.
func (e *engine) read(s *net.UDPConn) {
	var pc interface {
		ReadBatch([]ipv4.Message, int) (int, error)
	}
	if e.cfg.Server.Addr().Is4() {
		pc = ipv4.NewPacketConn(s)
	} else {
		pc = ipv6.NewPacketConn(s)
	}
	msgs := make([]ipv4.Message, 16)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 65535)}
	}
	for {
		n, err := pc.ReadBatch(msgs, 0)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // ICMP unreachable: the queries time out
		}
		for _, m := range msgs[:n] {
			e.deliver(m.Buffers[0][:m.N])
		}
	}
}

// deliver matches one packet to its query and queues what follows from it.
func (e *engine) deliver(p []byte) {
	if len(p) < 2 {
		return
	}
	id := uint16(p[0])<<8 | uint16(p[1])
	e.mu.Lock()
	defer e.mu.Unlock()
	s := &e.table[id]
	if !s.used {
		return
	}
	a, ok := parse(p, s.wire, s.q.qtype)
	if !ok {
		return
	}
	q := s.q
	e.release(id)
	e.rep.Answers++
	switch {
	case q.kind == kindNS:
		for _, n := range a.names {
			if !e.seen[n] {
				e.seen[n] = true
				e.queue = append(e.queue, query{n, dns.TypeA, kindPlain}, query{n, dns.TypeAAAA, kindPlain})
			}
		}
	case a.cname && !a.hasSOA:
		e.queue = append(e.queue, query{a.names[0], q.qtype, q.kind})
	case q.kind == kindExists && a.rcode != dns.RcodeNameError:
		e.queue = append(e.queue, query{q.name, dns.TypeAAAA, kindPlain})
	}
}

// isNetError reports a socket error (ICMP unreachable): the query then times out.
func isNetError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}
