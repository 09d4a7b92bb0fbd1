// Package ptr measures reverse DNS: the PTR names of an address (in-addr.arpa for IPv4,
// ip6.arpa for IPv6), asked of the crawl's recursive resolvers through resolve.Client,
// with the DNS outcome (ok, nxdomain, servfail, timeout, refused) kept as data.
package ptr

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/probe"
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

// Querier sends one question, with recursion desired, and returns the answer and the
// time of the exchange that answered (nil, no error: no answer came). It is
// *resolve.Client, which this package cannot name: resolve imports result, which
// imports ptr.
type Querier interface {
	Exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, time.Duration, error)
}

// Prober asks recursive resolvers for PTR records.
type Prober struct {
	// Client sends the queries (required): the run's resolve.Client, so that they go
	// to its resolvers in turn, on its reused sockets, with its retries, counted with
	// the crawl's other queries.
	Client Querier
}

// Probe looks up the PTR records of addr. An error means the lookup could not run (no
// client, ctx ended, a socket error); DNS failures are a Status.
func (p *Prober) Probe(ctx context.Context, addr netip.Addr) (Result, error) {
	if !addr.IsValid() {
		return Result{}, errors.New("ptr: invalid address")
	}
	if p.Client == nil {
		return Result{}, errors.New("ptr: no resolver configured")
	}
	if err := probe.ContextDone(ctx); err != nil {
		return Result{}, err
	}
	name, err := dns.ReverseAddr(addr.WithZone("").String())
	if err != nil {
		return Result{}, fmt.Errorf("ptr %s: %w", addr, err)
	}
	resp, rtt, err := p.Client.Exchange(ctx, name, dns.TypePTR)
	if err != nil {
		return Result{}, fmt.Errorf("ptr %s: %w", addr, err)
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
