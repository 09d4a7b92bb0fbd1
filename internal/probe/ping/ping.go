// Package ping measures ICMP echo round-trip times and loss to an address, like iputils
// ping: by default 5 echo requests per target, 200 ms apart, summarised as count, min, avg,
// max, population standard deviation (iputils' mdev) and loss.
//
// A Pinger opens one socket per address family when it starts and shares it among every
// concurrent Probe call: a reader goroutine per family matches each echo reply to its
// request by identifier, sequence number and a per-Pinger token in the payload, so that a
// crawl of a million addresses uses two sockets, not a million. Unprivileged ICMP sockets
// ("udp4"/"udp6", allowed by net.ipv4.ping_group_range) are used where the system allows
// them, raw sockets otherwise.
package ping

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/icmp"

	"github.com/v6matrix/v6matrix/internal/probe"
)

// Defaults and limits of Config.
const (
	DefaultCount    = 5
	DefaultInterval = 200 * time.Millisecond
	DefaultTimeout  = time.Second
	// MinInterval is the smallest gap allowed between two echoes to one target: the
	// iputils default for unprivileged users, and the rate no operator calls a flood.
	MinInterval = 200 * time.Millisecond
	// MaxCount bounds the echoes per target.
	MaxCount = 100
)

// SocketKind selects the kind of ICMP socket a Pinger opens.
type SocketKind int

const (
	// SocketAuto tries an unprivileged ping socket and falls back to a raw socket.
	SocketAuto SocketKind = iota
	// SocketUnprivileged uses only unprivileged ping sockets ("udp4", "udp6").
	SocketUnprivileged
	// SocketRaw uses only raw sockets ("ip4:icmp", "ip6:ipv6-icmp"); needs CAP_NET_RAW.
	SocketRaw
)

// Config sets how a Pinger measures. The zero value means the defaults.
type Config struct {
	// Count is the number of echo requests per target (default 5).
	Count int
	// Interval is the gap between two echoes to one target (default and minimum 200 ms).
	Interval time.Duration
	// Timeout is how long to wait for replies after the last echo was sent (default 1 s).
	Timeout time.Duration
	// Socket is the kind of socket to open (default SocketAuto).
	Socket SocketKind
}

// withDefaults fills zero fields and validates the result.
func (c Config) withDefaults() (Config, error) {
	if c.Count == 0 {
		c.Count = DefaultCount
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.Count < 1 || c.Count > MaxCount:
		return c, fmt.Errorf("ping: count %d outside 1..%d", c.Count, MaxCount)
	case c.Interval < MinInterval:
		return c, fmt.Errorf("ping: interval %v below the minimum %v", c.Interval, MinInterval)
	case c.Timeout < 0:
		return c, fmt.Errorf("ping: negative timeout %v", c.Timeout)
	case c.Socket < SocketAuto || c.Socket > SocketRaw:
		return c, fmt.Errorf("ping: unknown socket kind %d", c.Socket)
	}
	return c, nil
}

// Result is the outcome of pinging one address. The RTT fields are nil when no reply came
// (not measured), which is different from a zero round-trip time.
type Result struct {
	// Sent is the number of echo requests sent; Received the number answered.
	Sent, Received int
	// SendErrors counts echoes the kernel refused to send (for example no route): they are
	// counted in Sent and lost, as iputils counts them.
	SendErrors int
	// LossPercent is 100 * (Sent - Received) / Sent.
	LossPercent float64
	// MinMillis, AvgMillis, MaxMillis and StdMillis summarise the round-trip times in
	// milliseconds; StdMillis is the population standard deviation (iputils' mdev).
	MinMillis, AvgMillis, MaxMillis, StdMillis *float64
}

// Pinger sends ICMP echoes over one shared socket per address family. Set the exported
// fields before Start; after Start, Probe may be called from many goroutines.
type Pinger struct {
	// Listen opens an ICMP socket (default icmp.ListenPacket); tests and callers that need
	// a specific network namespace or source address replace it.
	Listen func(network, address string) (*icmp.PacketConn, error)
	// Now is the clock used for round-trip times (default time.Now).
	Now func() time.Time
	// Logger receives socket problems (default slog.Default()).
	Logger *slog.Logger

	cfg   Config
	token [8]byte // identifies our echoes in the payload, also on a raw socket
	id    int     // ICMP identifier sent on raw sockets

	mu      sync.Mutex
	started bool
	fams    [2]*family // [0] IPv4, [1] IPv6
	next    uint64
	pending map[uint64]*echo
	wg      sync.WaitGroup
}

// echo is one request awaiting its reply.
type echo struct {
	dst    netip.Addr
	sentAt time.Time
	reply  chan<- time.Duration
}

// New returns a Pinger with cfg (zero fields take the defaults), or an error when cfg is
// invalid. It opens no socket: call Start.
func New(cfg Config) (*Pinger, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	p := &Pinger{cfg: cfg, pending: make(map[uint64]*echo)}
	if _, err := rand.Read(p.token[:]); err != nil {
		return nil, fmt.Errorf("ping: random token: %w", err)
	}
	p.id = int(binary.BigEndian.Uint16(p.token[:2]))
	p.next = uint64(binary.BigEndian.Uint16(p.token[2:4])) // random first sequence number
	return p, nil
}

// Config returns the configuration in effect (with defaults filled in).
func (p *Pinger) Config() Config { return p.cfg }

// Probe pings addr Count times, Interval apart, and waits up to Timeout after the last echo
// for the replies. Loss, however total, is a result; an error means the measurement could
// not run (no socket for the family, a broken socket, or ctx ending before it finished).
func (p *Pinger) Probe(ctx context.Context, addr netip.Addr) (Result, error) {
	fam, err := p.family(addr)
	if err != nil {
		return Result{}, err
	}
	replies := make(chan time.Duration, p.cfg.Count)
	var keys []uint64
	defer func() { p.forget(keys) }()
	var res Result
	var lastSent time.Time
	tick := time.NewTimer(0)
	defer tick.Stop()
	for i := range p.cfg.Count {
		if i > 0 {
			tick.Reset(p.cfg.Interval)
			select {
			case <-ctx.Done():
				return Result{}, fmt.Errorf("ping %s: %w", addr, ctx.Err())
			case <-tick.C:
			}
		}
		key, seq := p.register(addr, replies)
		keys = append(keys, key)
		if err := fam.send(p, addr, key, seq); err != nil {
			if !isSendRefusal(err) {
				return Result{}, fmt.Errorf("ping %s: %w", addr, err)
			}
			res.SendErrors++
		}
		res.Sent++
		lastSent = p.now()
	}
	var rtts []time.Duration
	wait := time.NewTimer(p.cfg.Timeout - p.now().Sub(lastSent))
	defer wait.Stop()
collect:
	for len(rtts) < res.Sent-res.SendErrors {
		select {
		case <-ctx.Done():
			return Result{}, fmt.Errorf("ping %s: %w", addr, ctx.Err())
		case <-wait.C:
			break collect
		case d := <-replies:
			rtts = append(rtts, d)
		}
	}
	// Replies that raced with the deadline are still counted.
	for len(replies) > 0 {
		rtts = append(rtts, <-replies)
	}
	summarise(&res, rtts)
	return res, nil
}

// summarise fills the statistics of res from the round-trip times.
func summarise(res *Result, rtts []time.Duration) {
	res.Received = len(rtts)
	res.LossPercent = float64(res.Sent-res.Received) * 100 / float64(res.Sent)
	if len(rtts) == 0 {
		return
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	var sum, sum2 float64
	for _, d := range rtts {
		ms := float64(d) / float64(time.Millisecond)
		lo, hi = min(lo, ms), max(hi, ms)
		sum += ms
		sum2 += ms * ms
	}
	n := float64(len(rtts))
	avg := sum / n
	std := math.Sqrt(max(0, sum2/n-avg*avg))
	res.MinMillis, res.AvgMillis, res.MaxMillis, res.StdMillis = &lo, &avg, &hi, &std
}

// register allocates the next echo number for dst.
func (p *Pinger) register(dst netip.Addr, reply chan<- time.Duration) (key uint64, seq int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key = p.next
	p.next++
	p.pending[key] = &echo{dst: dst.WithZone(""), sentAt: p.now(), reply: reply}
	return key, int(uint16(key))
}

// forget drops the echoes of a finished Probe, so late replies find nothing to match.
func (p *Pinger) forget(keys []uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, k := range keys {
		delete(p.pending, k)
	}
}

// deliver hands a reply to the Probe waiting for it; duplicates and strays are dropped.
func (p *Pinger) deliver(key uint64, seq int, from netip.Addr, at time.Time) {
	p.mu.Lock()
	e, ok := p.pending[key]
	if ok && int(uint16(key)) == seq && e.dst == from.WithZone("") {
		delete(p.pending, key)
	} else {
		ok = false
	}
	p.mu.Unlock()
	if ok {
		e.reply <- at.Sub(e.sentAt) // buffered for Count replies: never blocks
	}
}

func (p *Pinger) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func (p *Pinger) logger() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// family returns the started socket for addr's family.
func (p *Pinger) family(addr netip.Addr) (*family, error) {
	if !addr.IsValid() {
		return nil, errors.New("ping: invalid address")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		return nil, errors.New("ping: Pinger not started")
	}
	f := p.fams[probe.Family(addr)/6]
	if f.conn == nil {
		return nil, fmt.Errorf("ping %s: no IPv%d socket: %w", addr, probe.Family(addr), f.err)
	}
	return f, nil
}

// isSendRefusal reports a send error that is an outcome for this target (the echo is lost),
// not a broken socket.
func isSendRefusal(err error) bool {
	for _, e := range []error{syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.EACCES,
		syscall.EPERM, syscall.EHOSTDOWN, syscall.EADDRNOTAVAIL, syscall.ENOBUFS, syscall.EMSGSIZE} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// payload builds the echo data: the Pinger's token and the full echo number, padded to the
// 56 bytes iputils sends by default.
func (p *Pinger) payload(key uint64) []byte {
	b := make([]byte, 56)
	copy(b, p.token[:])
	binary.BigEndian.PutUint64(b[8:], key)
	return b
}

// keyFrom extracts the echo number from a reply payload, if the payload is ours.
func (p *Pinger) keyFrom(data []byte) (uint64, bool) {
	if len(data) < 16 || [8]byte(data[:8]) != p.token {
		return 0, false
	}
	return binary.BigEndian.Uint64(data[8:16]), true
}
