package measure

import (
	"context"
	"log/slog"

	"github.com/v6matrix/v6matrix/internal/geoip"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/probe/dns53"
	"github.com/v6matrix/v6matrix/internal/probe/httpprobe"
	"github.com/v6matrix/v6matrix/internal/probe/ntpprobe"
	"github.com/v6matrix/v6matrix/internal/probe/path"
	"github.com/v6matrix/v6matrix/internal/probe/ping"
	"github.com/v6matrix/v6matrix/internal/probe/ptr"
	"github.com/v6matrix/v6matrix/internal/probe/tcpport"
	"github.com/v6matrix/v6matrix/internal/probe/tlsprobe"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// probers holds one prober per family of measurement, shared by all addresses.
type probers struct {
	cfg    Config
	pinger *ping.Pinger // nil when ping is off
	tcp    tcpport.Prober
	tls    tlsprobe.Prober
	ptr    ptr.Prober
	dns    dns53.Prober
	ntp    ntpprobe.Prober
	path   *path.Tracer
	http   httpprobe.Prober
	hosts  hostLocks // path traces of one host take turns
	geo    *geoip.DB
}

// newProbers opens what the enabled kinds need. A ping socket that cannot be opened
// (no raw socket privilege, and unprivileged ICMP sockets not allowed by
// net.ipv4.ping_group_range) turns ping off with a warning: the other probes go on.
func newProbers(cfg Config, log *slog.Logger) (*probers, error) {
	pr := &probers{cfg: cfg, geo: cfg.GeoIP,
		tcp:  tcpport.Prober{Timeout: cfg.TCPTimeout},
		tls:  tlsprobe.Prober{Roots: cfg.Roots, EHLOName: cfg.EHLOName, Timeout: cfg.TLSTimeout},
		ptr:  ptr.Prober{Resolver: cfg.Resolver.String()},
		dns:  dns53.Prober{Timeout: cfg.DNSTimeout},
		ntp:  ntpprobe.Prober{Timeout: cfg.NTPTimeout},
		http: httpprobe.Prober{UserAgent: cfg.UserAgent, Timeout: cfg.HTTPTimeout},
	}
	if cfg.Kinds[result.KindPing] {
		p, err := ping.New(cfg.Ping)
		if err != nil {
			return nil, err
		}
		if err := p.Start(); err != nil {
			log.Warn("ping is off for this run: no ICMP socket could be opened (run as root, or allow unprivileged ping with sysctl net.ipv4.ping_group_range)", "err", err)
			delete(pr.cfg.Kinds, result.KindPing)
		} else {
			pr.pinger = p
		}
	}
	if cfg.Kinds[result.KindPath] {
		t, err := path.New(cfg.Path)
		if err != nil {
			return nil, err
		}
		pr.path = t
	}
	return pr, nil
}

func (pr *probers) close() {
	if pr.pinger != nil {
		pr.pinger.Close()
	}
}

// task builds the scheduler task of one measurement of one target. Its result is sent
// on results; an error (the probe could not run) is logged and counted, and nothing is
// stored, so a resumed run tries again.
func (pr *probers) task(t *target, kind string, results chan<- store.Measurement, p *Progress, log *slog.Logger) polite.Task {
	task := polite.Task{Addr: t.ip}
	var measure func(ctx context.Context) (any, error)
	switch kind {
	case result.KindPTR:
		measure = func(ctx context.Context) (any, error) { return value(pr.ptr.Probe(ctx, t.ip)) }
	case result.KindGeo:
		measure = func(context.Context) (any, error) { r := pr.geo.Lookup(t.ip); return &r, nil }
	case result.KindPing:
		task.Proto = polite.ProtoICMP
		measure = func(ctx context.Context) (any, error) { return value(pr.pinger.Probe(ctx, t.ip)) }
	case result.KindTCP25, result.KindTCP80, result.KindTCP443:
		port := map[string]uint16{result.KindTCP25: 25, result.KindTCP80: 80, result.KindTCP443: 443}[kind]
		task.Proto, task.Port = polite.ProtoTCP, port
		measure = func(ctx context.Context) (any, error) { return value(pr.tcp.Probe(ctx, t.ip, port)) }
	case result.KindTLS443:
		task.Proto, task.Port = polite.ProtoTCP, 443
		measure = func(ctx context.Context) (any, error) { return value(pr.tls.ProbeTLS(ctx, t.ip, 443, t.www)) }
	case result.KindSTARTTLS:
		task.Proto, task.Port = polite.ProtoTCP, 25
		measure = func(ctx context.Context) (any, error) { return value(pr.tls.ProbeSTARTTLS(ctx, t.ip, 25, t.mx)) }
	case result.KindDNS53:
		task.Proto, task.Port = polite.ProtoUDP, 53
		measure = func(ctx context.Context) (any, error) { return value(pr.dns.Probe(ctx, t.ip, t.nsZone)) }
	case result.KindNTP123:
		task.Proto, task.Port = polite.ProtoUDP, 123
		measure = func(ctx context.Context) (any, error) { return value(pr.ntp.Probe(ctx, t.ip)) }
	case result.KindHTTP80:
		task.Proto, task.Port = polite.ProtoTCP, 80
		measure = func(ctx context.Context) (any, error) { return value(pr.http.Probe(ctx, t.ip, t.www)) }
	case result.KindPath:
		task.Proto, task.Port = polite.ProtoUDP, uint16(pr.cfg.Path.Port)
		measure = func(ctx context.Context) (any, error) {
			defer pr.hosts.lock(t.host)()
			return value(pr.path.Trace(ctx, t.ip))
		}
	}
	task.Run = func(ctx context.Context) {
		v, err := measure(ctx)
		p.Done.Add(1)
		if err != nil {
			if ctx.Err() == nil {
				p.Failed.Add(1)
				log.Warn("probe could not run", "kind", kind, "addr", t.ip, "err", err)
			}
			return
		}
		m := store.Measurement{IP: t.ip, Kind: kind, Value: v}
		if kind == result.KindDNS53 {
			m.Domain = t.nsZone // a check of one domain at this address
		}
		select {
		case results <- m:
		case <-ctx.Done():
		}
	}
	return task
}

// value turns a probe's (Result, error) into a stored value.
func value[R any](r R, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	return &r, nil
}
