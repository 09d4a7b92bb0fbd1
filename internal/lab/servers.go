package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/v6matrix/v6matrix/internal/dnssrv"
	"github.com/v6matrix/v6matrix/internal/netns"
)

// servers are the lab's running servers.
type servers struct {
	cancel    context.CancelFunc
	closers   []func() error
	listeners []string
	ca        *labCA
}

func (s *servers) close() error {
	s.cancel()
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	return errors.Join(errs...)
}

// StartServers starts every server of the scenario in this process: authoritative DNS, the
// resolver, HTTP, HTTPS, SMTP, NTP and plain TCP. It writes the lab CA (ca.pem) and the
// listener list to the state directory. The servers run until Down (or StopServers).
func (l *Lab) StartServers(ctx context.Context) error {
	if l.srv != nil {
		return errors.New("lab servers already started")
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s := &servers{cancel: cancel}
	l.srv = s
	err := l.startAll(sctx, s)
	if err == nil {
		err = l.writeState(s)
	}
	if err != nil {
		l.srv = nil
		return errors.Join(fmt.Errorf("start lab servers: %w", err), s.close())
	}
	l.log.Info("lab servers started", "listeners", len(s.listeners))
	return nil
}

// StopServers stops the servers started by StartServers.
func (l *Lab) StopServers() error {
	if l.srv == nil {
		return nil
	}
	err := l.srv.close()
	l.srv = nil
	return err
}

// Listeners returns one line per listening server: "kind address (detail)".
func (l *Lab) Listeners() []string {
	if l.srv == nil {
		return nil
	}
	return slices.Clone(l.srv.listeners)
}

func (l *Lab) startAll(ctx context.Context, s *servers) error {
	ca, err := newLabCA()
	if err != nil {
		return err
	}
	s.ca = ca
	if err := l.startDNS(ctx, s); err != nil {
		return err
	}
	return l.startServices(ctx, s)
}

// writeState records the CA and the listeners in the state directory.
func (l *Lab) writeState(s *servers) error {
	if err := os.MkdirAll(l.cfg.StateDir, 0o755); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(l.cfg.StateDir, "ca.pem"), s.ca.certPEM, 0o644); err != nil {
		return fmt.Errorf("write CA: %w", err)
	}
	text := strings.Join(s.listeners, "\n") + "\n"
	if err := os.WriteFile(filepath.Join(l.cfg.StateDir, listenersFile), []byte(text), 0o644); err != nil {
		return fmt.Errorf("write listeners: %w", err)
	}
	return nil
}

// NodeOf returns the node holding addr on one of its interfaces or its loopback, or "".
func (s *Scenario) NodeOf(addr netip.Addr) string {
	for _, l := range s.Links {
		for _, e := range l.Ends {
			for _, p := range e.Addrs {
				if p.Addr() == addr {
					return e.Node
				}
			}
		}
	}
	for _, n := range s.Nodes {
		for _, p := range n.Loopback {
			if p.Addr() == addr {
				return n.Name
			}
		}
	}
	return ""
}

// listenIn runs open inside the namespace of the node holding addr.
func (l *Lab) listenIn(addr netip.Addr, open func() error) error {
	node := l.sc.NodeOf(addr)
	if node == "" {
		return fmt.Errorf("address %s is on no node", addr)
	}
	return l.RunIn(node, open)
}

// startDNS starts the authoritative servers and the vantage's recursive resolver.
func (l *Lab) startDNS(ctx context.Context, s *servers) error {
	zones, err := l.sc.Zones()
	if err != nil {
		return err
	}
	parsed := map[string]*dnssrv.Zone{}
	for _, z := range zones {
		pz, err := dnssrv.ParseZoneString(z.Origin, z.Text)
		if err != nil {
			return fmt.Errorf("zone %s: %w", z.Origin, err)
		}
		parsed[z.Origin] = pz
	}
	for _, ns := range l.sc.Nameservers {
		var mine []*dnssrv.Zone
		var names []string
		for _, z := range zones {
			if slices.Contains(z.NS, fqdn(ns.Name)) && !slices.Contains(z.Lame, fqdn(ns.Name)) {
				mine = append(mine, parsed[z.Origin])
				names = append(names, z.Origin)
			}
		}
		var h dns.Handler = dnssrv.NewAuth(mine...)
		switch ns.Fault {
		case "drop":
			h = dns.HandlerFunc(func(dns.ResponseWriter, *dns.Msg) {})
		case "servfail":
			h = dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
				m := new(dns.Msg)
				m.SetRcode(r, dns.RcodeServerFailure)
				_ = w.WriteMsg(m)
			})
		}
		if d := ns.Delay; d > 0 {
			inner := h
			h = dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
				time.Sleep(d)
				inner.ServeDNS(w, r)
			})
		}
		for _, a := range l.sc.Set(ns.Set) {
			if ns.Fault == "v4only" && !a.Is4() {
				continue
			}
			ap := netip.AddrPortFrom(a, 53)
			if err := l.serveDNS(ctx, s, ap, h); err != nil {
				return fmt.Errorf("nameserver %s: %w", ns.Name, err)
			}
			s.listeners = append(s.listeners, fmt.Sprintf("dns %s (%s %s%s%s)", ap, ns.Name,
				strings.Join(names, " "), faultNote(ns.Fault), delayNote(ns.Delay)))
		}
	}
	var roots []netip.AddrPort
	for _, root := range l.sc.Root {
		for _, ns := range l.sc.Nameservers {
			if ns.Name == root {
				for _, a := range l.sc.Set(ns.Set) {
					roots = append(roots, netip.AddrPortFrom(a, 53))
				}
			}
		}
	}
	// Like the resolvers of the Internet, it hears a slow server (the scenario's answers
	// after 3.5 s): a server is waited for 4 s, but the next one is asked after 1 s.
	rec := &dnssrv.Recursor{Roots: roots, Logger: l.log, Timeout: 4 * time.Second, Stall: time.Second}
	vantage := l.ns[l.sc.Vantage]
	// The resolver's upstream queries open sockets on the thread that serves the request, so
	// each request runs on a thread inside the vantage: its queries come from the lab, never
	// from the host's own namespace.
	inVantage := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if err := netns.Do(vantage, func() error { rec.ServeDNS(w, r); return nil }); err != nil {
			l.log.Error("resolver: cannot enter the vantage namespace", "err", err)
		}
	})
	if err := l.RunIn(l.sc.Vantage, func() error {
		srv, err := dnssrv.Listen(ctx, l.sc.Resolver.String(), inVantage)
		if err == nil {
			s.closers = append(s.closers, srv.Close)
		}
		return err
	}); err != nil {
		return fmt.Errorf("resolver: %w", err)
	}
	s.listeners = append(s.listeners, fmt.Sprintf("resolver %s (recursive, in %s)", l.sc.Resolver, l.VantageNS()))
	return nil
}

func faultNote(f string) string {
	if f == "" {
		return ""
	}
	return ", fault " + f
}

func delayNote(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return ", answers after " + d.String()
}

func (l *Lab) serveDNS(ctx context.Context, s *servers, ap netip.AddrPort, h dns.Handler) error {
	return l.listenIn(ap.Addr(), func() error {
		srv, err := dnssrv.Listen(ctx, ap.String(), h)
		if err == nil {
			s.closers = append(s.closers, srv.Close)
		}
		return err
	})
}
