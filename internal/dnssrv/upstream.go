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
	use, deferred := r.infra.order(glued, r.now())
	if resp, err := r.tryEach(ctx, use, qname, qtype, b, &errs); resp != nil || err != nil {
		return resp, err
	}
	for _, name := range names {
		use, later := r.infra.order(r.addrsOf(ctx, name, b), r.now())
		deferred = append(deferred, later...)
		if resp, err := r.tryEach(ctx, use, qname, qtype, b, &errs); resp != nil || err != nil {
			return resp, err
		}
	}
	if resp, err := r.tryEach(ctx, deferred, qname, qtype, b, &errs); resp != nil || err != nil {
		return resp, err
	}
	return nil, fmt.Errorf("%s %s: %w: %w", qname, dns.TypeToString[qtype], errNoServer, errors.Join(errs...))
}

// tryEach queries addrs in turn and returns the first answer that is not
// SERVFAIL or REFUSED, or nil with the failures added to errs. Its error
// means the query's budget or time is spent.
func (r *Recursor) tryEach(ctx context.Context, addrs []netip.AddrPort, qname string, qtype uint16, b *budget, errs *[]error) (*dns.Msg, error) {
	for _, addr := range addrs {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%s %s: %w: %w", qname, dns.TypeToString[qtype], err, errors.Join(*errs...))
		}
		if b.queries >= maxUpstreamQueries {
			return nil, fmt.Errorf("%s %s: upstream query budget spent: %w", qname, dns.TypeToString[qtype], errors.Join(*errs...))
		}
		b.queries++
		resp, err := r.exchange(ctx, addr, qname, qtype)
		if err != nil {
			*errs = append(*errs, err)
			continue
		}
		if resp.Rcode == dns.RcodeServerFailure || resp.Rcode == dns.RcodeRefused {
			*errs = append(*errs, fmt.Errorf("%s: %s", addr, dns.RcodeToString[resp.Rcode]))
			continue
		}
		return resp, nil
	}
	return nil, nil
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

// exchange sends one non-recursive query over UDP, and over TCP if the
// answer comes back truncated. The UDP outcome feeds the infrastructure
// cache: a reply its RTT, a failure (timeout, unreachable) a timeout, unless
// the client query's own context ended.
func (r *Recursor) exchange(ctx context.Context, addr netip.AddrPort, qname string, qtype uint16) (*dns.Msg, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = time.Second
	}
	m := new(dns.Msg)
	m.SetQuestion(qname, qtype)
	m.RecursionDesired = false
	m.SetEdns0(ednsSize, false)
	c := &dns.Client{Net: "udp", Timeout: timeout, UDPSize: ednsSize}
	resp, rtt, err := c.ExchangeContext(ctx, m, addr.String())
	switch {
	case err == nil:
		r.infra.replied(addr, rtt)
	case ctx.Err() == nil:
		r.infra.timedOut(addr, r.now())
	}
	if err == nil && resp.Truncated {
		c.Net = "tcp"
		resp, _, err = c.ExchangeContext(ctx, m, addr.String())
	}
	if err != nil {
		return nil, fmt.Errorf("query %s %s at %s: %w", qname, dns.TypeToString[qtype], addr, err)
	}
	return resp, nil
}
