// Package path measures the path to an address the way iputils tracepath does:
// UDP probes with a rising TTL / hop limit, sent with DF in path-MTU probe
// mode, whose ICMP answers are read from the socket error queue. It reports the
// path MTU, the hop count to the target, the return hop count estimated from
// the TTL of the target's answer ("back"), and the hop addresses.
//
// Unlike tracepath, which sends each probe to a new destination port (a port
// sweep that port-scan detectors count), every probe of a Tracer goes to one
// fixed destination port, and probes to a target are sent one at a time so an
// answer still identifies its probe (a sequence number in the payload, quoted
// back by the ICMP error, confirms it when the router quotes enough).
package path

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"
)

// Reasons a trace ended, as stored in Result.Reason. Unreachable reasons carry
// the ICMP detail in parentheses, e.g. "unreachable (host, icmp type 3 code 1)".
const (
	// ReasonReached: the target answered (ICMP port unreachable, or a UDP reply).
	ReasonReached = "reached"
	// ReasonMaxHops: MaxHops was probed without reaching the target.
	ReasonMaxHops = "max hops"
	// ReasonGapLimit: GapLimit hops in a row did not answer, so the trace
	// stopped there without reaching the target.
	ReasonGapLimit = "gap limit"
	// ReasonBlackHole: not reached, but a minimum-size probe crossed the hop
	// where the full-size probes vanished: a PMTU black hole (Packet Too Big /
	// Fragmentation Needed dropped on the way back).
	ReasonBlackHole = "black hole suspected"
	// ReasonSendFailed: the kernel refused every send for a hop (tracepath's
	// "send failed").
	ReasonSendFailed = "send failed"
	// ReasonNoRoute: the vantage point has no route to the target.
	ReasonNoRoute = "no route"
)

// DefaultPort is the one destination port all probes go to unless configured.
const DefaultPort = 33434

// Config holds the tracer's settings. Start from DefaultConfig.
type Config struct {
	// MaxHops is the highest TTL / hop limit probed (tracepath -m), 1..255.
	MaxHops int
	// ProbesPerHop is how many probes a silent hop gets before it is marked
	// "*" (tracepath: 3), 1..10.
	ProbesPerHop int
	// GapLimit stops a trace after this many silent hops in a row (0: never,
	// like tracepath, which goes on to MaxHops). Measurement tracers stop early
	// (CAIDA's scamper: gap limit 5): past a run of silent hops the answers
	// rarely resume, and each silent hop costs ProbesPerHop waits and probes
	// into a network that is not answering.
	GapLimit int
	// WaitPerProbe bounds the wait for an answer to one probe (tracepath: 1s).
	WaitPerProbe time.Duration
	// Port is the single UDP destination port of every probe, 1..65535.
	Port int
	// Socket opens an unconnected, non-blocking UDP socket of the given domain
	// (unix.AF_INET or unix.AF_INET6) and returns its descriptor, which the
	// tracer then owns. Nil means a socket in the caller's network namespace;
	// tests open sockets inside a network namespace with it.
	Socket func(domain int) (fd int, err error)
	// Logger receives debug events; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns tracepath's defaults with the fixed destination port.
func DefaultConfig() Config {
	return Config{
		MaxHops:      30,
		ProbesPerHop: 3,
		GapLimit:     5,
		WaitPerProbe: time.Second,
		Port:         DefaultPort,
	}
}

// Validate reports the first invalid setting.
func (c Config) Validate() error {
	switch {
	case c.MaxHops < 1 || c.MaxHops > 255:
		return fmt.Errorf("path: max hops %d out of range 1..255", c.MaxHops)
	case c.GapLimit < 0 || c.GapLimit > 255:
		return fmt.Errorf("path: gap limit %d out of range 0..255", c.GapLimit)
	case c.ProbesPerHop < 1 || c.ProbesPerHop > 10:
		return fmt.Errorf("path: probes per hop %d out of range 1..10", c.ProbesPerHop)
	case c.WaitPerProbe < 10*time.Millisecond || c.WaitPerProbe > time.Minute:
		return fmt.Errorf("path: wait per probe %v out of range 10ms..1m", c.WaitPerProbe)
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("path: port %d out of range 1..65535", c.Port)
	}
	return nil
}

// Result is the outcome of one trace to one address.
type Result struct {
	// Family is 4 or 6.
	Family int
	// PMTUBytes is the path MTU as tracepath's "Resume: pmtu" reports it: the
	// local interface MTU lowered by every Packet Too Big / Fragmentation
	// Needed answer. It is meaningful even when the target was not reached.
	PMTUBytes int
	// Hops is the hop count to the target (tracepath's "hops"); 0 when the
	// target was not reached (not measured).
	Hops int
	// Back is the return hop count estimated from the TTL of the target's
	// answer (tracepath's "back"); 0 when not measured.
	Back int
	// HopList holds one entry per TTL probed, in order: the address that
	// answered it, or "*" when none did. When reached, the last entry is the
	// target's answer and len(HopList) == Hops.
	HopList []string
	// Reached reports whether the target answered.
	Reached bool
	// Reason says why the trace ended: one of the Reason constants, or
	// "unreachable (...)" with the ICMP detail.
	Reason string
}

// Tracer traces paths. It is safe for concurrent use: each Trace opens its own
// socket.
type Tracer struct {
	cfg Config
	log *slog.Logger
}

// New returns a Tracer for a validated configuration.
func New(cfg Config) (*Tracer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Tracer{cfg: cfg, log: log}, nil
}

// Trace traces the path to addr over the address's family. Outcomes (reached,
// unreachable, silent) are in the Result; an error means the trace could not
// run (socket failure, invalid address) or ctx ended it, in which case the
// Result holds what was learned so far.
func (t *Tracer) Trace(ctx context.Context, addr netip.Addr) (Result, error) {
	if !addr.IsValid() {
		return Result{}, errors.New("path: invalid address")
	}
	addr = addr.Unmap()
	if addr.Zone() != "" {
		return Result{}, fmt.Errorf("path %s: scoped addresses are not traced", addr)
	}
	return t.trace(ctx, addr)
}
