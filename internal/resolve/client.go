// Package resolve sends the crawl's DNS queries to recursive resolvers with
// github.com/miekg/dns: connected UDP sockets reused across queries, retries on timeout
// with the next resolver, TCP when an answer is truncated, CNAME chains followed with a
// bound and loop detection, and a run-wide host cache so that a host shared by many
// domains is looked up once.
package resolve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"sync/atomic"
	"time"

	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/result"
)

// Config sets how queries are sent.
type Config struct {
	Servers []netip.AddrPort // recursive resolvers, used in turn
	// Timeout is the wait before the first retry; each further try waits twice as long
	// as the one before, and an answer to any earlier try is still taken (see QueryAll).
	Timeout time.Duration
	Retries int    // further tries after a timeout, each to the next server
	UDPSize uint16 // EDNS0 buffer size advertised (0 = no EDNS0)
	// MaxInFlight bounds the tries waiting for an answer within their own wait across
	// the client (0: no bound): batches send several queries at once, and a resolver
	// that drops bursts must not see more than a sequential crawl of the same
	// concurrency would send. A try whose wait ended hands its slot to its retry (its
	// answer is still taken if it comes).
	MaxInFlight int
}

// DefaultConfig returns the defaults: resolvers must still be filled in. The schedule
// (tries at 0, 2 and 6 s, answers taken until 14 s, about dig's 3 tries of 5 s) was
// chosen on the lab's 3.5 s server: docs/PERFORMANCE.md ("Slow name servers").
func DefaultConfig() Config {
	return Config{Timeout: 2 * time.Second, Retries: 2, UDPSize: 1232, MaxInFlight: 256}
}

// Wait returns how long a query waits for an answer in all, its tries included.
func (c Config) Wait() time.Duration {
	return c.Timeout * time.Duration(1<<(c.Retries+1)-1)
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case len(c.Servers) == 0:
		return errors.New("no resolver: give --resolver host:port or a nameserver in /etc/resolv.conf")
	case c.Timeout <= 0:
		return fmt.Errorf("timeout %v: must be positive", c.Timeout)
	case c.Retries < 0 || c.Retries > 10:
		return fmt.Errorf("retries %d: must be between 0 and 10", c.Retries)
	case c.MaxInFlight < 0:
		return fmt.Errorf("max in flight %d: must be 0 (no bound) or positive", c.MaxInFlight)
	case c.UDPSize != 0 && c.UDPSize < 512:
		return fmt.Errorf("EDNS0 UDP size %d: must be 0 (off) or at least 512", c.UDPSize)
	}
	for _, s := range c.Servers {
		if !s.IsValid() || s.Port() == 0 {
			return fmt.Errorf("resolver %v: want address:port", s)
		}
	}
	return nil
}

// SystemServers returns the nameservers of a resolv.conf file with their port.
func SystemServers(path string) ([]netip.AddrPort, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("read resolvers: %w", err)
	}
	var out []netip.AddrPort
	for _, s := range cc.Servers {
		ap, err := netip.ParseAddrPort(net.JoinHostPort(s, cc.Port))
		if err != nil {
			return nil, fmt.Errorf("%s: nameserver %q: %w", path, s, err)
		}
		out = append(out, ap)
	}
	return out, nil
}

// ParseServer parses a --resolver value: host:port, or an address alone for port 53.
func ParseServer(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return netip.AddrPortFrom(a, 53), nil
	}
	return netip.AddrPort{}, fmt.Errorf("invalid resolver %q: want address:port, e.g. 127.0.0.1:53 or [::1]:53", s)
}

// Answer is the outcome of one query.
type Answer struct {
	Status result.Status
	Msg    *dns.Msg // nil unless a response arrived
	// RTT is the time of the exchange that answered: from the send of the try whose
	// answer was taken (or of the TCP query after a truncated one) to its answer.
	RTT time.Duration
}

// Client sends queries. It is safe for concurrent use.
type Client struct {
	cfg     Config
	udp     []*udpServer // one per resolver
	next    atomic.Uint32
	queries atomic.Int64 // sent, UDP and TCP, retries included
	// slots holds a token per UDP try waiting for an answer (MaxInFlight; nil: no
	// bound). A batch that finds it full waits on it, not on a timer.
	slots chan struct{}
	// timedOut counts batches that waited out a whole schedule (a question timed out).
	timedOut atomic.Int64
	tcp      dns.Client
}

// NewClient returns a Client for a validated Config. It opens the UDP sockets (no
// packet is sent); Close releases them.
func NewClient(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, tcp: dns.Client{Net: "tcp", Timeout: cfg.Timeout}}
	if cfg.MaxInFlight > 0 {
		c.slots = make(chan struct{}, cfg.MaxInFlight)
	}
	for _, s := range cfg.Servers {
		u, err := newUDPServer(s)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.udp = append(c.udp, u)
	}
	return c, nil
}

// Queries returns the number of queries sent so far.
func (c *Client) Queries() int64 { return c.queries.Load() }

// TimedOutBatches returns how many batches (QueryAll calls) waited out the whole
// schedule because a question got no answer: for one domain, how many schedules it
// waited in sequence.
func (c *Client) TimedOutBatches() int64 { return c.timedOut.Load() }

// Close closes the sockets; queries still waiting end with an error.
func (c *Client) Close() error {
	for _, u := range c.udp {
		u.close()
	}
	return nil
}

// Query asks for name/qtype with recursion desired; see QueryAll.
func (c *Client) Query(ctx context.Context, name string, qtype uint16) (Answer, error) {
	as, err := c.QueryAll(ctx, []Question{{Name: name, Type: qtype}})
	if err != nil {
		return Answer{}, err
	}
	return as[0], nil
}

// Exchange asks one question (see QueryAll) and returns the raw answer and the time of
// the exchange that answered it; a nil message with a nil error means no answer came
// before the last try's wait ended. Probes that classify answers themselves (ptr) use
// it.
func (c *Client) Exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, time.Duration, error) {
	a, err := c.Query(ctx, name, qtype)
	if err != nil {
		return nil, 0, err
	}
	return a.Msg, a.RTT, nil
}

func (c *Client) exchangeTCP(ctx context.Context, i int, q *dns.Msg) (*dns.Msg, error) {
	c.queries.Add(1)
	m, _, err := c.tcp.ExchangeContext(ctx, q, c.cfg.Servers[i].String())
	if err != nil {
		return nil, err
	}
	if !matches(q, m) {
		return nil, errors.New("TCP answer does not match the question")
	}
	return m, nil
}

// matches checks that m answers q: same id, a response, the same question.
func matches(q, m *dns.Msg) bool {
	return answers(q.Id, q.Question[0], m)
}

// answers checks that m answers the query with this id and question.
func answers(id uint16, q dns.Question, m *dns.Msg) bool {
	if m.Id != id || !m.Response || len(m.Question) != 1 {
		return false
	}
	a := m.Question[0]
	return a.Qtype == q.Qtype && a.Qclass == q.Qclass && strings.EqualFold(a.Name, q.Name)
}

func rcodeStatus(m *dns.Msg) result.Status {
	switch m.Rcode {
	case dns.RcodeSuccess:
		return result.StatusOK
	case dns.RcodeNameError:
		return result.StatusNXDomain
	case dns.RcodeServerFailure:
		return result.StatusServFail
	case dns.RcodeRefused:
		return result.StatusRefused
	default:
		return result.StatusError
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// isNetError reports errors that mean "no answer from that server" (ICMP port
// unreachable shows up as ECONNREFUSED on a connected UDP socket): such tries count as
// timeouts rather than as failures of the crawler.
func isNetError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe)
}
