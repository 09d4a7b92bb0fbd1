// Package lab builds and runs the v6matrix lab: a small dual-stack Internet in Linux network
// namespaces (a vantage, routers with links of MTU 1500/1480/1280, a PMTU black hole, server
// hosts) with DNS, HTTP(S), SMTP and NTP servers and designed faults, described by a YAML
// scenario. Tests and the demo crawl it; nothing in it has a route off the machine.
//
// Every namespace is named <prefix><node>, so Down(prefix) finds and removes a lab left by a
// crash. Servers run in the process that calls StartServers: sockets are opened by a thread
// switched into the node's namespace and stay there.
package lab

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/v6matrix/v6matrix/internal/netns"
)

// DefaultPrefix starts the name of every namespace of the lab run by `v6matrix lab up`.
const DefaultPrefix = "v6m-"

// Config says which lab to build and where its state lives.
type Config struct {
	// Prefix starts every namespace name (default DefaultPrefix). Tests use their own.
	Prefix string
	// Scenario describes the lab (nil: DefaultScenario()).
	Scenario *Scenario
	// StateDir holds the daemon's pid file, log, listener list and the lab CA
	// (default /run/<prefix>lab).
	StateDir string
	// Logger receives progress and server logs (nil: discarded).
	Logger *slog.Logger
}

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,10}-$`)

// withDefaults validates cfg and fills in its defaults.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !prefixRE.MatchString(cfg.Prefix) {
		return cfg, fmt.Errorf("lab prefix %q: want a lower-case letter, up to 10 letters or digits, then '-'", cfg.Prefix)
	}
	if cfg.Scenario == nil {
		cfg.Scenario = DefaultScenario()
	}
	if cfg.StateDir == "" {
		cfg.StateDir = StateDir(cfg.Prefix)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, nil
}

// StateDir returns the default state directory of the lab with this prefix.
func StateDir(prefix string) string { return filepath.Join("/run", prefix+"lab") }

// Lab is a built lab: its namespaces and, once started, its servers.
type Lab struct {
	cfg     Config
	sc      *Scenario
	log     *slog.Logger
	ns      map[string]netns.Handle
	handles map[string]*netlink.Handle
	srv     *servers
}

// Up builds the lab's network and starts its servers in this process.
func Up(ctx context.Context, cfg Config) (*Lab, error) {
	l, err := Build(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := l.StartServers(ctx); err != nil {
		return nil, errors.Join(err, l.Down(context.Background()))
	}
	return l, nil
}

// Build creates the namespaces, links, addresses, routes and filters, without servers. It
// fails if namespaces with the prefix exist already; on failure it removes what it made.
func Build(ctx context.Context, cfg Config) (*Lab, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	if os.Geteuid() != 0 {
		return nil, errors.New("build lab: needs root (network namespaces)")
	}
	existing, err := netns.List(cfg.Prefix)
	if err != nil {
		return nil, err
	}
	if len(existing) > 0 {
		return nil, fmt.Errorf("build lab: namespaces %q exist already (run `v6matrix lab down --prefix %s`)", existing, cfg.Prefix)
	}
	l := newLab(cfg)
	steps := []struct {
		name string
		run  func() error
	}{
		{"namespaces", l.createNamespaces},
		{"handles", l.openHandles},
		{"links", l.createLinks},
		{"links up", l.waitOperUp},
		{"routes", l.installRoutes},
		{"filters", func() error { return l.installFilters(ctx) }},
		{"resolv.conf", l.writeResolvConf},
		{"state dir", func() error { return os.MkdirAll(cfg.StateDir, 0o755) }},
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			err = fmt.Errorf("build lab %s: %s: %w", cfg.Prefix, s.name, err)
			return nil, errors.Join(err, l.Down(context.Background()))
		}
	}
	l.log.Info("lab network built", "prefix", cfg.Prefix, "namespaces", len(l.ns),
		"links", len(l.sc.Links), "duration", time.Since(start).Round(time.Millisecond))
	return l, nil
}

// Attach opens an existing lab (built by another process) by its prefix.
func Attach(cfg Config) (*Lab, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l := newLab(cfg)
	for _, n := range l.sc.Nodes {
		h, err := netns.Open(l.nsName(n.Name))
		if err != nil {
			l.close()
			return nil, fmt.Errorf("attach lab %s: %w (is the lab up?)", cfg.Prefix, err)
		}
		l.ns[n.Name] = h
	}
	if err := l.openHandles(); err != nil {
		l.close()
		return nil, fmt.Errorf("attach lab %s: %w", cfg.Prefix, err)
	}
	return l, nil
}

func newLab(cfg Config) *Lab {
	return &Lab{cfg: cfg, sc: cfg.Scenario, log: cfg.Logger,
		ns: map[string]netns.Handle{}, handles: map[string]*netlink.Handle{}}
}

func (l *Lab) openHandles() error {
	for name, ns := range l.ns {
		h, err := netlink.NewHandleAt(ns)
		if err != nil {
			return fmt.Errorf("netlink handle for %s: %w", name, err)
		}
		l.handles[name] = h
	}
	return nil
}

// close releases namespace handles and netlink sockets (the namespaces stay).
func (l *Lab) close() {
	for name, h := range l.handles {
		h.Close()
		delete(l.handles, name)
	}
	for name, ns := range l.ns {
		ns.Close()
		delete(l.ns, name)
	}
}

// nsName is the namespace name of a node.
func (l *Lab) nsName(node string) string { return l.cfg.Prefix + node }

// Prefix returns the lab's name prefix.
func (l *Lab) Prefix() string { return l.cfg.Prefix }

// Scenario returns the scenario the lab was built from.
func (l *Lab) Scenario() *Scenario { return l.sc }

// StateDir returns the lab's state directory.
func (l *Lab) StateDir() string { return l.cfg.StateDir }

// VantageNS returns the name of the vantage's namespace (as `ip netns` shows it).
func (l *Lab) VantageNS() string { return l.nsName(l.sc.Vantage) }

// NodeNS returns the name of a node's namespace.
func (l *Lab) NodeNS(node string) string { return l.nsName(node) }

// ResolverAddr returns the address of the lab's recursive resolver, reachable from the
// vantage namespace.
func (l *Lab) ResolverAddr() netip.AddrPort { return l.sc.Resolver }

// RunInVantage runs f on an OS thread inside the vantage namespace: sockets f opens are in
// the lab. Goroutines f starts do not inherit the namespace (they run on other threads).
func (l *Lab) RunInVantage(f func() error) error { return l.RunIn(l.sc.Vantage, f) }

// RunIn runs f on an OS thread inside the namespace of node.
func (l *Lab) RunIn(node string, f func() error) error {
	ns, ok := l.ns[node]
	if !ok {
		return fmt.Errorf("lab %s: no node %q", l.cfg.Prefix, node)
	}
	return netns.Do(ns, f)
}

// Down stops the lab's servers and removes the whole lab (see the package function Down).
func (l *Lab) Down(ctx context.Context) error {
	var errs []error
	if l.srv != nil {
		errs = append(errs, l.srv.close())
		l.srv = nil
	}
	l.close()
	errs = append(errs, Down(ctx, l.cfg.Prefix, l.cfg.StateDir))
	runtime.GC() // let finalizers close any stray namespace fds
	return errors.Join(errs...)
}
