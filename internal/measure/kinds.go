package measure

import (
	"context"
	"net/netip"

	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/result"
)

// Target is what a probe function is given: one address and the names its roles call
// for.
type Target struct {
	IP netip.Addr
	// WWW is the host name for TLS SNI and the HTTP Host ("" unless a www host uses
	// the address); MX the name of an mx host using it (STARTTLS).
	WWW, MX string
	// NSZone is the domain whose SOA a name server check asks (dns53 only).
	NSZone string
	// Host is the first host found with the address.
	Host string
}

// ProbeFunc measures one kind at one target. Its value is stored as the measurement
// (a pointer to the probe's typed result); an error means the probe could not run.
type ProbeFunc func(ctx context.Context, t Target) (any, error)

// want says which addresses a kind is for, by the roles of the hosts using them.
type want uint8

const (
	forAll want = iota
	forWWW
	forMX
	forNTP
	// forNS kinds are measured per (domain, name server address): see nsPlans.
	forNS
)

// kindSpec is one kind of measurement: where its packets go (for the polite
// scheduler), which addresses want it, and how it runs.
type kindSpec struct {
	kind  string // result.Kind*
	proto polite.Proto
	// port is the destination port (0 for ICMP and local kinds).
	port  func(Config) uint16
	wants want
	// local kinds send nothing to the address (PTR asks our resolver, GeoIP reads a
	// file): they run beside the scheduler, and not at all for skipped addresses
	// except GeoIP.
	local bool
	// perHost kinds take turns between the addresses of one host (hostLocks).
	perHost bool
	run     func(pr *probers, ctx context.Context, t Target) (any, error)
}

// probeKinds is every kind of measurement the probe stage runs, in the order an
// address's probes are queued. Adding a probe is adding an entry.
var probeKinds = []kindSpec{
	{kind: result.KindPTR, local: true, run: func(pr *probers, ctx context.Context, t Target) (any, error) {
		return value(pr.ptr.Probe(ctx, t.IP))
	}},
	{kind: result.KindGeo, local: true, run: func(pr *probers, _ context.Context, t Target) (any, error) {
		r := pr.geo.Lookup(t.IP)
		return &r, nil
	}},
	{kind: result.KindPing, proto: polite.ProtoICMP, run: func(pr *probers, ctx context.Context, t Target) (any, error) {
		return value(pr.pinger.Probe(ctx, t.IP))
	}},
	tcpKind(result.KindTCP25, 25),
	tcpKind(result.KindTCP80, 80),
	tcpKind(result.KindTCP443, 443),
	{kind: result.KindTLS443, proto: polite.ProtoTCP, port: port(443), wants: forWWW, run: func(pr *probers, ctx context.Context, t Target) (any, error) {
		return value(pr.tls.ProbeTLS(ctx, t.IP, 443, t.WWW))
	}},
	{kind: result.KindSTARTTLS, proto: polite.ProtoTCP, port: port(25), wants: forMX, run: func(pr *probers, ctx context.Context, t Target) (any, error) {
		return value(pr.tls.ProbeSTARTTLS(ctx, t.IP, 25, t.MX))
	}},
	{kind: result.KindDNS53, proto: polite.ProtoUDP, port: port(53), wants: forNS, run: func(pr *probers, ctx context.Context, t Target) (any, error) {
		return value(pr.dns.Probe(ctx, t.IP, t.NSZone))
	}},
	{kind: result.KindNTP123, proto: polite.ProtoUDP, port: port(123), wants: forNTP, run: func(pr *probers, ctx context.Context, t Target) (any, error) {
		return value(pr.ntp.Probe(ctx, t.IP))
	}},
	{kind: result.KindPath, proto: polite.ProtoUDP, port: func(c Config) uint16 { return uint16(c.Path.Port) }, perHost: true,
		run: func(pr *probers, ctx context.Context, t Target) (any, error) { return value(pr.path.Trace(ctx, t.IP)) }},
	{kind: result.KindHTTP80, proto: polite.ProtoTCP, port: port(80), wants: forWWW, run: func(pr *probers, ctx context.Context, t Target) (any, error) {
		return value(pr.http.Probe(ctx, t.IP, t.WWW))
	}},
}

func tcpKind(kind string, p uint16) kindSpec {
	return kindSpec{kind: kind, proto: polite.ProtoTCP, port: port(p), run: func(pr *probers, ctx context.Context, t Target) (any, error) {
		return value(pr.tcp.Probe(ctx, t.IP, p))
	}}
}

func port(p uint16) func(Config) uint16 { return func(Config) uint16 { return p } }

// specOf returns the entry of a kind; ok is false for a kind the stage does not run.
func specOf(kind string) (kindSpec, bool) {
	for _, s := range probeKinds {
		if s.kind == kind {
			return s, true
		}
	}
	return kindSpec{}, false
}

// value turns a probe's (Result, error) into a stored value.
func value[R any](r R, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return &r, nil
}
