// Package netnstest builds a throwaway two-namespace network for probe tests that need a
// router: a client namespace, where the test opens its sockets, joined by a veth pair to a
// router namespace that silently drops one documentation prefix (so probes see "filtered",
// a timeout) and answers another with ICMP unreachable (so probes see "unreachable").
//
// Only documentation addresses are used (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
// 2001:db8::/32) and neither namespace has a route off the machine: nothing a test sends can
// leave it. The host's own namespace is never modified. Namespaces are named "v6mp-<random>"
// and removed with t.Cleanup. Tests that use it are skipped unless running as root. The
// namespaces are made with internal/netns.
package netnstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/v6matrix/v6matrix/internal/netns"
)

// Addresses of the test network. The router answers pings and TCP (with RST: nothing
// listens) on its link addresses; the Drop prefixes vanish without an answer; the
// Unreachable prefixes are answered by the router with ICMP destination unreachable.
var (
	// Client4 and Client6 are the client namespace's link addresses.
	Client4 = netip.MustParseAddr("192.0.2.1")
	Client6 = netip.MustParseAddr("2001:db8:1::1")
	// Router4 and Router6 are the router's link addresses: a live host.
	Router4 = netip.MustParseAddr("192.0.2.2")
	Router6 = netip.MustParseAddr("2001:db8:1::2")
	// Drop4 and Drop6 are routed to the router, which discards them silently.
	Drop4 = netip.MustParseAddr("198.51.100.7")
	Drop6 = netip.MustParseAddr("2001:db8:100::7")
	// Unreachable4 and Unreachable6 are routed to the router, which answers ICMP
	// host unreachable (IPv4) / no route (IPv6).
	Unreachable4 = netip.MustParseAddr("203.0.113.7")
	Unreachable6 = netip.MustParseAddr("2001:db8:203::7")
	// Prohibited4 and Prohibited6 are answered with ICMP administratively prohibited.
	Prohibited4 = netip.MustParseAddr("203.0.113.200")
	Prohibited6 = netip.MustParseAddr("2001:db8:204::7")
)

// Net is a created test network.
type Net struct {
	// Client and Router are the namespace names (as in `ip netns list`).
	Client, Router string
	ns             map[string]netns.Handle
}

// New creates the test network, or skips the test when it cannot (not root). The
// namespaces are deleted when the test ends.
func New(t testing.TB) *Net {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netnstest: needs root to create network namespaces")
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("netnstest: %v", err)
	}
	id := hex.EncodeToString(b[:])
	n := &Net{Client: "v6mp-" + id + "-c", Router: "v6mp-" + id + "-r", ns: map[string]netns.Handle{}}
	for _, name := range []string{n.Client, n.Router} {
		h, err := netns.Create(name)
		if err != nil {
			t.Fatalf("netnstest: %v", err)
		}
		n.ns[name] = h
		t.Cleanup(func() {
			h.Close()
			if err := netns.Delete(name); err != nil {
				t.Errorf("netnstest: %v", err)
			}
		})
	}
	c, r := n.ns[n.Client], n.ns[n.Router]
	// The router forwards, so that its routes (not the local-delivery check) decide the fate
	// of transit packets, and it answers ICMP errors without the default rate limit getting
	// in the way of a few test probes.
	for _, kv := range [][2]string{{"net.ipv4.ip_forward", "1"}, {"net.ipv6.conf.all.forwarding", "1"},
		{"net.ipv4.icmp_ratelimit", "0"}, {"net.ipv6.icmp.ratelimit", "0"}} {
		n.Sysctl(t, n.Router, kv[0], kv[1])
	}
	pfx := netip.MustParsePrefix
	if err := netns.Veth(netns.End{NS: c, Name: "v6mp0", Addrs: []netip.Prefix{pfx("192.0.2.1/24"), pfx("2001:db8:1::1/64")}},
		netns.End{NS: r, Name: "v6mp1", Addrs: []netip.Prefix{pfx("192.0.2.2/24"), pfx("2001:db8:1::2/64")}}, 0); err != nil {
		t.Fatalf("netnstest: %v", err)
	}
	hc, hr := handle(t, c), handle(t, r)
	via := func(dst string, gw netip.Addr) *netlink.Route {
		return &netlink.Route{Dst: netns.IPNet(pfx(dst)), Gw: gw.AsSlice()}
	}
	typed := func(dst string, typ int) *netlink.Route {
		rt := &netlink.Route{Dst: netns.IPNet(pfx(dst)), Type: typ}
		if pfx(dst).Addr().Is6() {
			rt.Family = netlink.FAMILY_V6
		}
		return rt
	}
	routes := []struct {
		h  *netlink.Handle
		rt *netlink.Route
	}{
		{hc, via("198.51.100.0/24", Router4)},
		{hc, via("203.0.113.0/24", Router4)},
		{hc, via("2001:db8:100::/48", Router6)},
		{hc, via("2001:db8:203::/48", Router6)},
		{hc, via("2001:db8:204::/48", Router6)},
		{hr, typed("198.51.100.0/24", unix.RTN_BLACKHOLE)},
		{hr, typed("2001:db8:100::/48", unix.RTN_BLACKHOLE)},
		{hr, typed("203.0.113.0/25", unix.RTN_UNREACHABLE)},
		{hr, typed("203.0.113.128/25", unix.RTN_PROHIBIT)},
		{hr, typed("2001:db8:203::/48", unix.RTN_UNREACHABLE)},
		{hr, typed("2001:db8:204::/48", unix.RTN_PROHIBIT)},
	}
	for _, x := range routes {
		if err := x.h.RouteAdd(x.rt); err != nil {
			t.Fatalf("netnstest: route %s (type %d): %v", x.rt.Dst, x.rt.Type, err)
		}
	}
	n.waitReady(t)
	return n
}

// handle returns a netlink handle in ns, closed when the test ends.
func handle(t testing.TB, ns netns.Handle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netnstest: netlink: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// waitReady waits until the router answers on both families: a fresh veth link drops the
// first packets while the link comes up and neighbour discovery runs.
func (n *Net) waitReady(t testing.TB) {
	t.Helper()
	for _, name := range []string{n.Client, n.Router} {
		if err := netns.WaitLinks(handle(t, n.ns[name]), time.Now().Add(10*time.Second), true); err != nil {
			t.Fatalf("netnstest: %s: %v", name, err)
		}
	}
	for _, a := range []netip.Addr{Router4, Router6} {
		var out []byte
		var err error
		for range 20 {
			out, err = n.Exec(t, "ping", "-n", "-q", "-c", "1", "-W", "1", "-i", "0.2", a.String())
			if err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("netnstest: router %s does not answer: %v\n%s", a, err, out)
		}
	}
}

// Sysctl sets a sysctl (dotted name) inside namespace ns (Client or Router).
func (n *Net) Sysctl(t testing.TB, ns, name, value string) {
	t.Helper()
	if err := netns.Sysctls(n.ns[ns], [2]string{name, value}); err != nil {
		t.Fatalf("netnstest: in %s: %v", ns, err)
	}
}

// InClient runs fn on an OS thread that has entered the client namespace, and waits for
// it. Sockets fn opens belong to the client namespace and keep working from any goroutine
// afterwards (netns.Do).
func (n *Net) InClient(t testing.TB, fn func()) {
	t.Helper()
	if err := netns.Do(n.ns[n.Client], func() error { fn(); return nil }); err != nil {
		t.Fatalf("netnstest: %v", err)
	}
}

// Exec runs a command inside the client namespace and returns its combined output.
func (n *Net) Exec(t testing.TB, name string, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return netns.Output(ctx, n.ns[n.Client], nil, name, args...)
}
