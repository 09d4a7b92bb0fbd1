package polite

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net/netip"
	"time"
)

// Config holds every politeness limit. Each field is a command-line flag (see
// AddFlags); DefaultConfig holds the defaults and docs/POLITENESS.md explains
// why they are what they are.
type Config struct {
	// AddrGap is the minimum time between the starts of two probes to one
	// address (flag --addr-gap). At most one probe is in flight per address
	// in any case.
	AddrGap time.Duration
	// NetGap is the minimum time between the starts of two probes to one
	// network (flag --net-gap), so that a gateway in front of many of our
	// targets sees a trickle, not a sweep.
	NetGap time.Duration
	// V4Bits and V6Bits are the prefix lengths that define a network for
	// NetGap (flags --net-bits-v4, --net-bits-v6): /24 and /48, the longest
	// prefixes routed between networks.
	V4Bits, V6Bits int
	// Rate caps probe starts per second over the whole run (flag --rate).
	// Starts are spaced at least 1/Rate apart; +Inf lifts the cap.
	Rate float64
	// PortWindow and MaxPortsPerWindow bound how many distinct destination
	// ports one address sees: no window of PortWindow contains activity on
	// more than MaxPortsPerWindow distinct (protocol, port) pairs (flags
	// --port-window, --max-ports). ICMP (port 0) is not a port. A
	// PortWindow of 0 turns the rule off.
	PortWindow        time.Duration
	MaxPortsPerWindow int
	// Workers is the number of probes in flight at most (flag --workers).
	Workers int
	// Seed fixes the random order in which addresses are taken (flag
	// --seed); one seed always gives one order.
	Seed int64
}

// DefaultConfig returns the defaults documented in docs/POLITENESS.md.
func DefaultConfig() Config {
	return Config{
		AddrGap:           time.Second,
		NetGap:            200 * time.Millisecond,
		V4Bits:            24,
		V6Bits:            48,
		Rate:              50,
		PortWindow:        10 * time.Second,
		MaxPortsPerWindow: 2,
		Workers:           256,
		Seed:              1,
	}
}

// Validate reports every invalid field, joined into one error.
func (c Config) Validate() error {
	var errs []error
	if c.AddrGap < 0 {
		errs = append(errs, fmt.Errorf("polite: AddrGap must not be negative, got %v", c.AddrGap))
	}
	if c.NetGap < 0 {
		errs = append(errs, fmt.Errorf("polite: NetGap must not be negative, got %v", c.NetGap))
	}
	if c.V4Bits < 0 || c.V4Bits > 32 {
		errs = append(errs, fmt.Errorf("polite: V4Bits must be between 0 and 32, got %d", c.V4Bits))
	}
	if c.V6Bits < 0 || c.V6Bits > 128 {
		errs = append(errs, fmt.Errorf("polite: V6Bits must be between 0 and 128, got %d", c.V6Bits))
	}
	if !(c.Rate > 0) { // also refuses NaN
		errs = append(errs, fmt.Errorf("polite: Rate must be positive (+Inf lifts the cap), got %v", c.Rate))
	}
	if c.PortWindow < 0 {
		errs = append(errs, fmt.Errorf("polite: PortWindow must not be negative, got %v", c.PortWindow))
	}
	if c.MaxPortsPerWindow < 1 {
		errs = append(errs, fmt.Errorf("polite: MaxPortsPerWindow must be at least 1, got %d", c.MaxPortsPerWindow))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("polite: Workers must be at least 1, got %d", c.Workers))
	}
	return errors.Join(errs...)
}

// AddFlags registers one flag per field on fs, with c's values as defaults.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.AddrGap, "addr-gap", c.AddrGap, "minimum time between probe starts to one address")
	fs.DurationVar(&c.NetGap, "net-gap", c.NetGap, "minimum time between probe starts to one network (see --net-bits-v4/-v6)")
	fs.IntVar(&c.V4Bits, "net-bits-v4", c.V4Bits, "IPv4 prefix length of a network for --net-gap")
	fs.IntVar(&c.V6Bits, "net-bits-v6", c.V6Bits, "IPv6 prefix length of a network for --net-gap")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "probe starts per second at most over the whole run (inf: no cap)")
	fs.DurationVar(&c.PortWindow, "port-window", c.PortWindow, "window for --max-ports (0: no port rule)")
	fs.IntVar(&c.MaxPortsPerWindow, "max-ports", c.MaxPortsPerWindow, "distinct destination ports one address sees at most in any --port-window")
	fs.IntVar(&c.Workers, "workers", c.Workers, "probes in flight at most")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "seed of the random order of addresses")
}

// quiet is how long after an address's last probe ends its history may still limit
// what starts next: its gap from that probe's start, its ports' window, its network's
// gap from the network's last start (all at or before that end).
func (c Config) quiet() time.Duration { return max(c.AddrGap, c.PortWindow, c.NetGap) }

// nat64 is the NAT64 well-known prefix (RFC 6052): a crawler behind a NAT64 reaches
// the IPv4 address in its last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Dest returns the destination whose limits a probe of a counts against: the IPv4
// address, when a reaches it (an IPv4-mapped address, or one of the NAT64 well-known
// prefix), else a. The probe itself goes to a; only the limits are shared.
func Dest(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if nat64.Contains(a) {
		b := a.As16()
		return netip.AddrFrom4([4]byte(b[12:16]))
	}
	return a
}

// Network returns the network of a for NetGap: its /V4Bits or /V6Bits prefix (of the
// destination it reaches, Dest).
func (c Config) Network(a netip.Addr) netip.Prefix {
	a = Dest(a)
	bits := c.V6Bits
	if a.Is4() {
		bits = c.V4Bits
	}
	p, _ := a.Prefix(bits)
	return p
}

// spacing is the minimum time between two starts allowed by Rate, rounded up
// so that the cap is never exceeded.
func (c Config) spacing() time.Duration {
	if math.IsInf(c.Rate, 1) {
		return 0
	}
	return time.Duration(math.Ceil(float64(time.Second) / c.Rate))
}
