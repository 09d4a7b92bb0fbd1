package measure

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

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
	"github.com/v6matrix/v6matrix/internal/resolve"
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
	ownDNS *resolve.Client // opened for the stage (Config.DNS nil): closed with it
	dns    dns53.Prober
	ntp    ntpprobe.Prober
	path   *path.Tracer
	http   httpprobe.Prober
	hosts  hostLocks // path traces of one host take turns
	geo    *geoip.DB
	// funcs run each kind: the probeKinds entries, or Config.Probes where it has one.
	funcs map[string]ProbeFunc
}

// newProbers opens what the enabled kinds need. A ping socket that cannot be opened
// (no raw socket privilege, and unprivileged ICMP sockets not allowed by
// net.ipv4.ping_group_range) turns ping off with a warning: the other probes go on.
func newProbers(cfg Config, log *slog.Logger) (*probers, error) {
	pr := &probers{cfg: cfg, geo: cfg.GeoIP,
		tcp:  tcpport.Prober{Timeout: cfg.TCPTimeout},
		tls:  tlsprobe.Prober{Roots: cfg.Roots, EHLOName: cfg.EHLOName, Timeout: cfg.TLSTimeout},
		dns:  dns53.Prober{Timeout: cfg.DNSTimeout},
		ntp:  ntpprobe.Prober{Timeout: cfg.NTPTimeout},
		http: httpprobe.Prober{UserAgent: cfg.UserAgent, Timeout: cfg.HTTPTimeout},
	}
	pr.funcs = map[string]ProbeFunc{}
	for _, k := range probeKinds {
		if f := cfg.Probes[k.kind]; f != nil {
			pr.funcs[k.kind] = f
			continue
		}
		run := k.run
		pr.funcs[k.kind] = func(ctx context.Context, t Target) (any, error) { return run(pr, ctx, t) }
	}
	if cfg.Kinds[result.KindPing] && cfg.Probes[result.KindPing] == nil {
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
	if cfg.Kinds[result.KindPath] && cfg.Probes[result.KindPath] == nil {
		t, err := path.New(cfg.Path)
		if err != nil {
			pr.close()
			return nil, err
		}
		pr.path = t
	}
	if cfg.Kinds[result.KindPTR] && cfg.Probes[result.KindPTR] == nil {
		client := cfg.DNS
		if client == nil {
			rc := resolve.DefaultConfig()
			rc.Servers = []netip.AddrPort{cfg.Resolver}
			c, err := resolve.NewClient(rc)
			if err != nil {
				pr.close()
				return nil, fmt.Errorf("measure: PTR queries: %w", err)
			}
			client, pr.ownDNS = c, c
		}
		pr.ptr = ptr.Prober{Client: client}
	}
	return pr, nil
}

func (pr *probers) close() {
	if pr.pinger != nil {
		pr.pinger.Close()
	}
	if pr.ownDNS != nil {
		pr.ownDNS.Close()
	}
}

// task builds the scheduler task of one measurement of one target. Its result is sent
// on results; an error (the probe could not run) is logged and counted, and nothing is
// stored, so a resumed run tries again.
func (pr *probers) task(t *target, kind string, results chan<- store.Measurement, p *Progress, log *slog.Logger) polite.Task {
	spec, _ := specOf(kind)
	task := polite.Task{Addr: t.ip, Proto: spec.proto}
	if spec.port != nil {
		task.Port = spec.port(pr.cfg)
	}
	tgt := Target{IP: t.ip, WWW: t.www, MX: t.mx, NSZone: t.nsZone, Host: t.host}
	measure := func(ctx context.Context) (any, error) {
		probe := pr.funcs[kind]
		if probe == nil {
			return nil, fmt.Errorf("no probe for kind %q", kind)
		}
		if spec.perHost {
			defer pr.hosts.lock(t.host)()
		}
		return probe(ctx, tgt)
	}
	task.Run = func(ctx context.Context) {
		p.InFlight.Add(1)
		v, err := measure(ctx)
		p.InFlight.Add(-1)
		p.Done.Add(1)
		if err != nil {
			if ctx.Err() == nil {
				p.Failed.Add(1)
				p.count(kind, false)
				log.Warn("probe could not run", "kind", kind, "addr", t.ip, "err", err)
			}
			return
		}
		p.count(kind, true)
		m := store.Measurement{IP: t.ip, Kind: kind, Value: v}
		if spec.wants == forNS {
			m.Domain = t.nsZone // a check of one domain at this address
		}
		select {
		case results <- m:
		case <-ctx.Done():
		}
	}
	return task
}
