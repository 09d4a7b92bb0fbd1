// Package synthnet is the full-pipeline benchmark's synthetic Internet: tens of thousands
// of addresses in network namespaces (a vantage, a router, a "world" answering on whole
// benchmarking and documentation ranges through AnyIP local routes), NSD serving
// 100,000 zones, TCP 25/80/443 and NTP servers, and the runs measured on it: `v6matrix
// crawl` and a plain reference crawler, each in the vantage, with wall time, CPU, peak
// RSS and a per-second count of packets sent (docs/PERFORMANCE.md, issue 8).
package synthnet

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/miekg/dns"
	"github.com/v6matrix/v6matrix/internal/dnssrv"
	"github.com/v6matrix/v6matrix/internal/lab"
	"github.com/v6matrix/v6matrix/internal/probe/ntpprobe/ntpserver"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// nsdPath is where Debian's nsd package installs the server.
const nsdPath = "/usr/sbin/nsd"

// Node and link names (the namespaces are <prefix><node>).
const (
	nodeVantage = "vantage"
	nodeRouter  = "router"
	nodeWorld   = "world"
	// VantageLink is the vantage's only interface: its packet counters are the timeline.
	VantageLink = "snv"
)

// scenario is the lab description of the synthetic Internet: vantage - router - world,
// two hops, no route off the machine.
func scenario() *lab.Scenario {
	p := netip.MustParsePrefix
	return &lab.Scenario{
		Name:        "synthnet",
		Description: "full-pipeline benchmark: a world answering on 198.18.0.0/15 and 2001:db8::/33",
		AllowRanges: AllowRanges,
		Vantage:     nodeVantage,
		Resolver:    ResolverAddr,
		Nodes: []lab.Node{{Name: nodeVantage, Role: "vantage"}, {Name: nodeRouter, Role: "router"},
			{Name: nodeWorld, Role: "host", Loopback: append(append([]netip.Prefix(nil), worldV4...), worldV6...)}},
		Links: []lab.Link{
			{Name: VantageLink, MTU: 1500, Ends: []lab.End{
				{Node: nodeVantage, Addrs: []netip.Prefix{p("198.19.255.1/30"), p("2001:db8:ffff:1::1/64")}},
				{Node: nodeRouter, Addrs: []netip.Prefix{p("198.19.255.2/30"), p("2001:db8:ffff:1::2/64")}}}},
			{Name: "snw", MTU: 1500, Ends: []lab.End{
				{Node: nodeRouter, Addrs: []netip.Prefix{p("198.19.255.5/30"), p("2001:db8:ffff:2::1/64")}},
				{Node: nodeWorld, Addrs: []netip.Prefix{p("198.19.255.6/30"), p("2001:db8:ffff:2::2/64")}}}},
		},
	}
}

// World is a built synthetic Internet with its servers running.
type World struct {
	Lab     *lab.Lab
	log     *slog.Logger
	closers []func() error
	nsd     *exec.Cmd
	nsdDone chan error
	nsdOut  bytes.Buffer
}

// Build creates the namespaces (prefix: see lab.Config), the world's AnyIP routes and
// servers, and NSD serving data's zones from dir. On error everything made is removed.
func Build(ctx context.Context, prefix, dir string, data Data, log *slog.Logger) (*World, error) {
	if _, err := os.Stat(nsdPath); err != nil {
		return nil, fmt.Errorf("synthetic Internet: %w (apt-get install nsd)", err)
	}
	l, err := lab.Build(ctx, lab.Config{Prefix: prefix, Scenario: scenario(), Logger: log,
		StateDir: filepath.Join(dir, "lab")})
	if err != nil {
		return nil, err
	}
	w := &World{Lab: l, log: log}
	if err := w.start(ctx, dir, data); err != nil {
		return nil, errors.Join(err, w.Close())
	}
	return w, nil
}

func (w *World) start(ctx context.Context, dir string, data Data) error {
	if err := w.Lab.RunIn(nodeWorld, anyIP); err != nil {
		return fmt.Errorf("world routes: %w", err)
	}
	if err := w.startServers(); err != nil {
		return err
	}
	start := time.Now()
	nsdDir := filepath.Join(dir, "nsd")
	listen := []netip.AddrPort{ResolverAddr}
	for _, a := range NSAddrs() {
		listen = append(listen, netip.AddrPortFrom(a, 53))
	}
	note := fmt.Sprintf("synthnet: %d domains under %s", data.Domains, data.tld())
	if err := dnssrv.WriteNSDZones(nsdDir, note, listen, data.Zones()); err != nil {
		return err
	}
	w.log.Info("zones written", "domains", data.Domains, "duration", time.Since(start).Round(time.Millisecond))
	w.nsd = exec.Command(nsdPath, "-d", "-c", filepath.Join(nsdDir, "nsd.conf"))
	w.nsd.Stdout, w.nsd.Stderr = &w.nsdOut, &w.nsdOut
	// NSD must not outlive a bench killed with SIGKILL (lab.Down also stops it).
	w.nsd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	w.nsdDone = make(chan error, 1)
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the thread that started NSD ends, and the runtime ends a
		// thread left locked by a goroutine (as lab.Exec does): NSD gets a thread of its
		// own, locked until NSD has exited.
		runtime.LockOSThread()
		err := w.Lab.RunIn(nodeWorld, w.nsd.Start)
		started <- err
		if err == nil {
			w.nsdDone <- w.nsd.Wait()
		}
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("start nsd: %w", err)
	}
	wait := 30*time.Second + time.Duration(data.Domains)*500*time.Microsecond
	if err := w.waitNSD(ctx, data.tld(), wait); err != nil {
		return err
	}
	w.log.Info("nsd ready", "listen", len(listen), "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// anyIP runs in the world: IPv6 answers on the whole world prefix (IPv4 does already, its
// loopback addresses being prefixes on lo), and servers may bind addresses of it.
func anyIP() error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return err
	}
	for _, p := range worldV6 {
		p = p.Masked()
		r := &netlink.Route{LinkIndex: lo.Attrs().Index, Type: unix.RTN_LOCAL, Table: unix.RT_TABLE_LOCAL,
			Scope: netlink.SCOPE_HOST, Dst: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}}
		if err := netlink.RouteAdd(r); err != nil {
			return fmt.Errorf("local route %s: %w", p, err)
		}
	}
	for _, k := range []string{"net/ipv4/ip_nonlocal_bind", "net/ipv6/ip_nonlocal_bind"} {
		if err := os.WriteFile("/proc/sys/"+k, []byte("1"), 0o644); err != nil {
			return fmt.Errorf("sysctl %s: %w", k, err)
		}
	}
	return nil
}

// startServers opens, in the world, one wildcard listener each for HTTP (80), HTTPS
// (443) and SMTP with STARTTLS (25), and an NTP server on each NTP address.
func (w *World) startServers() error {
	conf, _, err := lab.ServerTLS("synthnet.invalid")
	if err != nil {
		return err
	}
	var lns [3]net.Listener
	err = w.Lab.RunIn(nodeWorld, func() error {
		for i, port := range []string{"[::]:25", "[::]:80", "[::]:443"} {
			ln, err := net.Listen("tcp", port)
			if err != nil {
				return err
			}
			lns[i] = ln
			w.closers = append(w.closers, ln.Close)
		}
		for _, a := range NTPAddrs() {
			srv, err := ntpserver.Listen("udp", netip.AddrPortFrom(a, 123).String(), ntpserver.Config{})
			if err != nil {
				return fmt.Errorf("ntp on %s: %w", a, err)
			}
			w.closers = append(w.closers, srv.Close)
			go srv.Serve()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("world servers: %w", err)
	}
	go lab.ServeSMTP(lns[0], "mail.synthnet.invalid", conf)
	for _, ln := range []net.Listener{lns[1], tls.NewListener(lns[2], conf)} {
		hs := &http.Server{Handler: lab.HTTPHandler(), ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(w.log.Handler(), slog.LevelDebug), IdleTimeout: 5 * time.Second}
		go hs.Serve(ln)
		w.closers = append(w.closers, hs.Close)
	}
	return nil
}

// waitNSD asks NSD the TLD's SOA from the vantage until it answers.
func (w *World) waitNSD(ctx context.Context, tld string, wait time.Duration) error {
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	err := dnssrv.WaitReady(ctx, tld, wait, w.nsdDone, func(ctx context.Context, m *dns.Msg) (r *dns.Msg, err error) {
		if lerr := w.Lab.RunInVantage(func() error {
			r, _, err = c.ExchangeContext(ctx, m, ResolverAddr.String())
			return nil
		}); lerr != nil {
			return nil, lerr
		}
		return r, err
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("nsd on %s: %w: %s", ResolverAddr, err, strings.TrimSpace(w.nsdOut.String()))
	}
	return err
}

// Close stops the servers and NSD and removes the namespaces.
func (w *World) Close() error {
	var errs []error
	if w.nsd != nil && w.nsd.Process != nil {
		w.nsd.Process.Signal(syscall.SIGTERM)
		select {
		case <-w.nsdDone:
		case <-time.After(10 * time.Second):
			w.nsd.Process.Kill()
			<-w.nsdDone
		}
	}
	for i := len(w.closers) - 1; i >= 0; i-- {
		if err := w.closers[i](); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, w.Lab.Down(context.Background()))
	return errors.Join(errs...)
}
