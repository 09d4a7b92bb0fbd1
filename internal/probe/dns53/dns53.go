// Package dns53 measures whether a name server address serves a domain: it sends the
// domain's SOA query (recursion not desired) over UDP to port 53 of the address and reports
// authoritative (an answer with the AA bit), answered (an answer without AA: a lame or
// recursive server), refused, servfail, timeout or unreachable (ICMP error).
package dns53

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/probe"
)

// Defaults of Prober.
const (
	DefaultPort     = 53
	DefaultTimeout  = 2 * time.Second
	DefaultAttempts = 2
)

// Status is the outcome of the SOA query (the dns, dns6 columns of RECORDS.md).
type Status string

// The statuses of a SOA query.
const (
	StatusAuthoritative Status = "authoritative"
	StatusAnswered      Status = "answered"
	StatusRefused       Status = "refused"
	StatusServFail      Status = "servfail"
	StatusTimeout       Status = "timeout"
	StatusUnreachable   Status = "unreachable"
)

// Result is the outcome of one SOA query to one address.
type Result struct {
	// Status is the classified outcome.
	Status Status
	// Rcode is the response code name ("NOERROR", "NXDOMAIN", ...); empty without a reply.
	Rcode string
	// Authoritative is the AA bit of the reply; nil without a reply.
	Authoritative *bool
	// SOASerial is the serial of the SOA in the answer section; nil when there is none.
	SOASerial *uint32
	// RTTMillis is the round-trip time of the answered exchange; nil without a reply.
	RTTMillis *float64
	// Detail is the kernel error for unreachable ("connection refused" is ICMP port
	// unreachable).
	Detail string
}

// Prober sends SOA queries to name server addresses. The zero value is ready to use.
type Prober struct {
	// Port is the destination port (default 53; tests use another).
	Port uint16
	// Timeout bounds the first query (default DefaultTimeout); each further one waits
	// twice as long, so a server that answers within 5 s (dig's wait) is heard on the
	// second. Attempts is the number of sends when no reply comes (default
	// DefaultAttempts).
	Timeout  time.Duration
	Attempts int
	// Dialer opens the sockets (default a *net.Dialer).
	Dialer *net.Dialer
}

// Probe asks addr for the SOA of domain. Rcode REFUSED and SERVFAIL map to their statuses;
// any other reply is authoritative when AA is set with NOERROR, else answered. An error
// means the query could not run (bad input, ctx ended, a local socket error).
func (p *Prober) Probe(ctx context.Context, addr netip.Addr, domain string) (Result, error) {
	network, err := probe.Network("udp", addr)
	if err != nil {
		return Result{}, fmt.Errorf("dns53: %w", err)
	}
	if _, ok := dns.IsDomainName(domain); !ok || domain == "" {
		return Result{}, fmt.Errorf("dns53: invalid domain %q", domain)
	}
	port, timeout, attempts := p.Port, p.Timeout, p.Attempts
	if port == 0 {
		port = DefaultPort
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(domain), dns.TypeSOA)
	q.RecursionDesired = false
	q.SetEdns0(1232, false)
	c := &dns.Client{Net: network, Timeout: timeout, Dialer: probe.RecvErrDialer(p.Dialer)}
	server := probe.HostPort(addr, port)
	for i := range attempts {
		c.Timeout = timeout << i
		resp, rtt, err := probe.Exchange(ctx, c, q, server)
		if err := probe.ContextDone(ctx); err != nil {
			return Result{}, fmt.Errorf("dns53 %s: %w", server, err)
		}
		if probe.IsTimeout(err) {
			continue
		}
		if err != nil {
			if probe.IsUnreachable(err) {
				return Result{Status: StatusUnreachable, Detail: probe.ErrnoText(err)}, nil
			}
			return Result{}, fmt.Errorf("dns53 %s: %w", server, err)
		}
		return classify(resp, rtt), nil
	}
	return Result{Status: StatusTimeout}, nil
}

// classify turns a reply into a Result.
func classify(resp *dns.Msg, rtt time.Duration) Result {
	ms := float64(rtt) / float64(time.Millisecond)
	aa := resp.Authoritative
	res := Result{Rcode: dns.RcodeToString[resp.Rcode], Authoritative: &aa, RTTMillis: &ms}
	switch {
	case resp.Rcode == dns.RcodeRefused:
		res.Status = StatusRefused
	case resp.Rcode == dns.RcodeServerFailure:
		res.Status = StatusServFail
	case resp.Rcode == dns.RcodeSuccess && aa:
		res.Status = StatusAuthoritative
	default:
		res.Status = StatusAnswered
	}
	for _, rr := range resp.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			serial := soa.Serial
			res.SOASerial = &serial
			break
		}
	}
	return res
}
