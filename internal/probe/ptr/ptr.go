// Package ptr measures reverse DNS: the PTR names of an address (in-addr.arpa for IPv4,
// ip6.arpa for IPv6), asked of one configured recursive resolver, with the DNS outcome
// (ok, nxdomain, servfail, timeout, refused) kept as data.
package ptr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/probe"
)

// DefaultTimeout bounds one query; DefaultAttempts is how many times a query that timed
// out is sent.
const (
	DefaultTimeout  = 2 * time.Second
	DefaultAttempts = 2
)

// Status is the DNS outcome of a reverse lookup.
type Status string

// The statuses of a reverse lookup.
const (
	// StatusOK: NOERROR; Names may still be empty (no PTR record).
	StatusOK       Status = "ok"
	StatusNXDomain Status = "nxdomain"
	StatusServFail Status = "servfail"
	StatusTimeout  Status = "timeout"
	StatusRefused  Status = "refused"
	// StatusError: any other RCODE (FORMERR, NOTIMP, ...); Rcode says which.
	StatusError Status = "error"
)

// Result is the outcome of one reverse lookup.
type Result struct {
	// Names are the PTR targets, without the trailing dot, sorted; nil when there are none.
	Names []string
	// Status is the DNS outcome.
	Status Status
	// Rcode is the response code name ("NOERROR", "NXDOMAIN", ...); empty on timeout.
	Rcode string
	// RTTMillis is the time of the exchange that answered; nil on timeout.
	RTTMillis *float64
}

// Prober asks a recursive resolver for PTR records.
type Prober struct {
	// Resolver is the resolver's address, "ip:port" (required).
	Resolver string
	// Timeout bounds one query (default DefaultTimeout); Attempts is the number of sends
	// when the resolver does not answer (default DefaultAttempts).
	Timeout  time.Duration
	Attempts int
	// Dialer opens the sockets (default a *net.Dialer); set it to choose a source address.
	Dialer *net.Dialer
}

// Probe looks up the PTR records of addr. An error means the lookup could not run (no
// resolver configured, ctx ended, a socket error); DNS failures are a Status.
func (p *Prober) Probe(ctx context.Context, addr netip.Addr) (Result, error) {
	if !addr.IsValid() {
		return Result{}, errors.New("ptr: invalid address")
	}
	if p.Resolver == "" {
		return Result{}, errors.New("ptr: no resolver configured")
	}
	name, err := dns.ReverseAddr(addr.WithZone("").String())
	if err != nil {
		return Result{}, fmt.Errorf("ptr %s: %w", addr, err)
	}
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypePTR)
	q.RecursionDesired = true
	q.SetEdns0(1232, false)
	resp, rtt, err := p.exchange(ctx, q)
	if err != nil {
		return Result{}, fmt.Errorf("ptr %s via %s: %w", addr, p.Resolver, err)
	}
	if resp == nil {
		return Result{Status: StatusTimeout}, nil
	}
	ms := float64(rtt) / float64(time.Millisecond)
	res := Result{Rcode: dns.RcodeToString[resp.Rcode], RTTMillis: &ms}
	switch resp.Rcode {
	case dns.RcodeSuccess:
		res.Status = StatusOK
	case dns.RcodeNameError:
		res.Status = StatusNXDomain
	case dns.RcodeServerFailure:
		res.Status = StatusServFail
	case dns.RcodeRefused:
		res.Status = StatusRefused
	default:
		res.Status = StatusError
	}
	for _, rr := range resp.Answer {
		// Classless delegations (RFC 2317) put a CNAME before the PTR; take every PTR.
		if ptr, ok := rr.(*dns.PTR); ok {
			res.Names = append(res.Names, strings.TrimSuffix(ptr.Ptr, "."))
		}
	}
	slices.Sort(res.Names)
	res.Names = slices.Compact(res.Names)
	return res, nil
}

// exchange sends q over UDP, retrying on timeout and repeating over TCP when the answer is
// truncated. A nil message with a nil error means every attempt timed out.
func (p *Prober) exchange(ctx context.Context, q *dns.Msg) (*dns.Msg, time.Duration, error) {
	timeout, attempts := p.Timeout, p.Attempts
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	c := &dns.Client{Net: "udp", Timeout: timeout, Dialer: p.Dialer}
	for range attempts {
		resp, rtt, err := probe.Exchange(ctx, c, q, p.Resolver)
		if err := probe.ContextDone(ctx); err != nil {
			return nil, 0, err
		}
		if isTimeout(err) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		if resp.Truncated {
			tc := &dns.Client{Net: "tcp", Timeout: timeout, Dialer: p.Dialer}
			resp, rtt, err = probe.Exchange(ctx, tc, q, p.Resolver)
			if isTimeout(err) {
				return nil, 0, nil
			}
			if err != nil {
				return nil, 0, err
			}
		}
		return resp, rtt, nil
	}
	return nil, 0, nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
