package dnssrv

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"
)

// ask queries the servers of a nameserver set until one gives an answer
// that is not SERVFAIL or REFUSED. The servers with addresses come first,
// in the infrastructure cache's order; nameserver names are resolved when
// reached and their addresses ordered the same way. Servers in back-off
// are skipped, and tried only once every other server has failed, so that
// a set whose servers all timed out recently is still asked.
//
// A server that has not answered after Stall is not given up: the next one is
// asked as well, and whichever usable answer comes first (within Timeout of
// its query) is taken, so a slow server is still heard.
func (r *Recursor) ask(ctx context.Context, servers []candidate, qname string, qtype uint16, b *budget) (*dns.Msg, error) {
	var errs []error
	var glued []netip.AddrPort
	var names []string
	for _, c := range servers {
		if c.name != "" {
			names = append(names, c.name)
		} else {
			glued = append(glued, c.addr)
		}
	}
	rc := &race{ch: make(chan attempt, maxUpstreamQueries)}
	use, deferred := r.infra.order(glued, r.now())
	if resp, err := r.tryEach(ctx, use, qname, qtype, b, &errs, rc); resp != nil || err != nil {
		return resp, err
	}
	for _, name := range names {
		use, later := r.infra.order(r.addrsOf(ctx, name, b), r.now())
		deferred = append(deferred, later...)
		if resp, err := r.tryEach(ctx, use, qname, qtype, b, &errs, rc); resp != nil || err != nil {
			return resp, err
		}
	}
	if resp, err := r.tryEach(ctx, deferred, qname, qtype, b, &errs, rc); resp != nil || err != nil {
		return resp, err
	}
	// Every server was asked: wait for the ones still out.
	for rc.pending > 0 {
		select {
		case a := <-rc.ch:
			if resp := rc.take(r.overTCP(ctx, a, qname, qtype), &errs); resp != nil {
				return resp, nil
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("%s %s: %w: %w", qname, dns.TypeToString[qtype], ctx.Err(), errors.Join(errs...))
		}
	}
	return nil, fmt.Errorf("%s %s: %w: %w", qname, dns.TypeToString[qtype], errNoServer, errors.Join(errs...))
}

// race is the queries of one ask still waiting for their server.
type race struct {
	ch      chan attempt // buffered for the whole budget: senders never block
	pending int
}

// attempt is one server's outcome.
type attempt struct {
	addr netip.AddrPort
	resp *dns.Msg
	err  error
}

// overTCP replaces a truncated answer by the TCP one.
func (r *Recursor) overTCP(ctx context.Context, a attempt, qname string, qtype uint16) attempt {
	if a.err == nil && a.resp.Truncated {
		a.resp, a.err = r.exchangeTCP(ctx, a.addr, qname, qtype)
	}
	return a
}

// take counts a finished attempt and returns its answer when usable.
func (rc *race) take(a attempt, errs *[]error) *dns.Msg {
	rc.pending--
	switch {
	case a.err != nil:
		*errs = append(*errs, a.err)
	case a.resp.Rcode == dns.RcodeServerFailure || a.resp.Rcode == dns.RcodeRefused:
		*errs = append(*errs, fmt.Errorf("%s: %s", a.addr, dns.RcodeToString[a.resp.Rcode]))
	default:
		return a.resp
	}
	return nil
}

// tryEach queries addrs in turn, each after the one before failed or stalled,
// and returns the first answer that is not SERVFAIL or REFUSED, or nil with the
// failures added to errs (queries still out stay in rc). Its error means the
// query's budget or time is spent.
func (r *Recursor) tryEach(ctx context.Context, addrs []netip.AddrPort, qname string, qtype uint16, b *budget, errs *[]error, rc *race) (*dns.Msg, error) {
	for _, addr := range addrs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s %s: %w: %w", qname, dns.TypeToString[qtype], err, errors.Join(*errs...))
		}
		if b.queries >= maxUpstreamQueries {
			return nil, fmt.Errorf("%s %s: upstream query budget spent: %w", qname, dns.TypeToString[qtype], errors.Join(*errs...))
		}
		b.queries++
		conn, err := r.dialUDP(addr)
		if err != nil {
			*errs = append(*errs, err)
			continue
		}
		rc.pending++
		go func() {
			resp, err := r.exchangeUDP(ctx, conn, addr, qname, qtype)
			rc.ch <- attempt{addr, resp, err}
		}()
		// Without Stall, each server's own outcome is awaited (one at a time).
		var stalled <-chan time.Time
		if r.Stall > 0 {
			t := time.NewTimer(r.Stall)
			defer t.Stop()
			stalled = t.C
		}
	wait:
		for {
			select {
			case a := <-rc.ch:
				if resp := rc.take(r.overTCP(ctx, a, qname, qtype), errs); resp != nil {
					return resp, nil
				}
				if a.addr == addr {
					break wait // this server failed: the next one now
				}
			case <-stalled:
				r.infra.timedOut(addr, r.now()) // stalled: ordered later from now on
				break wait
			case <-ctx.Done():
				return nil, fmt.Errorf("%s %s: %w: %w", qname, dns.TypeToString[qtype], ctx.Err(), errors.Join(*errs...))
			}
		}
	}
	return nil, nil
}

func (r *Recursor) timeout() time.Duration {
	if r.Timeout <= 0 {
		return time.Second
	}
	return r.Timeout
}

// addrsOf resolves a nameserver's name to addresses, IPv4 first.
func (r *Recursor) addrsOf(ctx context.Context, name string, b *budget) []netip.AddrPort {
	if b.depth >= maxDepth {
		return nil
	}
	b.depth++
	defer func() { b.depth-- }()
	var out []netip.AddrPort
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		for _, rr := range r.resolve(ctx, name, t, b).answer {
			switch rr := rr.(type) {
			case *dns.A:
				if a, ok := netip.AddrFromSlice(rr.A.To4()); ok {
					out = append(out, netip.AddrPortFrom(a, r.port()))
				}
			case *dns.AAAA:
				if a, ok := netip.AddrFromSlice(rr.AAAA); ok {
					out = append(out, netip.AddrPortFrom(a, r.port()))
				}
			}
		}
	}
	return out
}

// upstreamQuery is the non-recursive question sent upstream.
func upstreamQuery(qname string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.RecursionDesired = false
	m.SetEdns0(ednsSize, false)
	return m
}

// dialUDP opens the socket of one upstream query. It runs in the calling goroutine:
// a resolver serving a network namespace (the lab's) opens its sockets on the
// request's thread, which is in that namespace; the exchange can then run anywhere.
func (r *Recursor) dialUDP(addr netip.AddrPort) (*dns.Conn, error) {
	c := &dns.Client{Net: "udp", Timeout: r.timeout(), UDPSize: ednsSize}
	conn, err := c.Dial(addr.String())
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	return conn, nil
}

// exchangeUDP sends one non-recursive query on conn (and closes it). The outcome
// feeds the infrastructure cache: a reply its RTT, a failure (timeout,
// unreachable) a timeout, unless the client query's own context ended.
func (r *Recursor) exchangeUDP(ctx context.Context, conn *dns.Conn, addr netip.AddrPort, qname string, qtype uint16) (*dns.Msg, error) {
	defer conn.Close()
	c := &dns.Client{Net: "udp", Timeout: r.timeout(), UDPSize: ednsSize}
	resp, rtt, err := c.ExchangeWithConnContext(ctx, upstreamQuery(qname, qtype), conn)
	switch {
	case err == nil:
		r.infra.replied(addr, rtt)
	case ctx.Err() == nil:
		r.infra.timedOut(addr, r.now())
	}
	if err != nil {
		return nil, fmt.Errorf("query %s %s at %s: %w", qname, dns.TypeToString[qtype], addr, err)
	}
	return resp, nil
}

// exchangeTCP asks again over TCP (after a truncated UDP answer), in the calling
// goroutine for the same reason as dialUDP.
func (r *Recursor) exchangeTCP(ctx context.Context, addr netip.AddrPort, qname string, qtype uint16) (*dns.Msg, error) {
	c := &dns.Client{Net: "tcp", Timeout: r.timeout()}
	resp, _, err := c.ExchangeContext(ctx, upstreamQuery(qname, qtype), addr.String())
	if err != nil {
		return nil, fmt.Errorf("query %s %s at %s over TCP: %w", qname, dns.TypeToString[qtype], addr, err)
	}
	return resp, nil
}
