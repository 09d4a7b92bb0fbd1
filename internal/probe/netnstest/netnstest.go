// Package netnstest builds a throwaway two-namespace network for probe tests that need a
// router: a client namespace, where the test opens its sockets, joined by a veth pair to a
// router namespace that silently drops one documentation prefix (so probes see "filtered",
// a timeout) and answers another with ICMP unreachable (so probes see "unreachable").
//
// Only documentation addresses are used (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,
// 2001:db8::/32) and neither namespace has a route off the machine: nothing a test sends can
// leave it. The host's own namespace is never modified. Namespaces are named "v6mp-<random>"
// and removed with t.Cleanup. Tests that use it are skipped unless running as root with
// iproute2 installed.
package netnstest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
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
}

// New creates the test network, or skips the test when it cannot (not root, no iproute2).
// The namespaces are deleted when the test ends.
func New(t testing.TB) *Net {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netnstest: needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("netnstest: needs iproute2 (ip)")
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("netnstest: %v", err)
	}
	id := hex.EncodeToString(b[:])
	n := &Net{Client: "v6mp-" + id + "-c", Router: "v6mp-" + id + "-r"}
	for _, name := range []string{n.Client, n.Router} {
		run(t, "netns", "add", name)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
				t.Errorf("netnstest: ip netns del %s: %v: %s", name, err, out)
			}
		})
	}
	c, r := n.Client, n.Router
	script := [][]string{
		{"-n", c, "link", "set", "lo", "up"},
		{"-n", r, "link", "set", "lo", "up"},
		{"-n", c, "link", "add", "v6mp0", "type", "veth", "peer", "name", "v6mp1", "netns", r},
		{"-n", c, "addr", "add", "192.0.2.1/24", "dev", "v6mp0"},
		{"-n", c, "addr", "add", "2001:db8:1::1/64", "dev", "v6mp0", "nodad"},
		{"-n", r, "addr", "add", "192.0.2.2/24", "dev", "v6mp1"},
		{"-n", r, "addr", "add", "2001:db8:1::2/64", "dev", "v6mp1", "nodad"},
		{"-n", c, "link", "set", "v6mp0", "up"},
		{"-n", r, "link", "set", "v6mp1", "up"},
		{"-n", c, "route", "add", "198.51.100.0/24", "via", "192.0.2.2"},
		{"-n", c, "route", "add", "203.0.113.0/24", "via", "192.0.2.2"},
		{"-n", c, "-6", "route", "add", "2001:db8:100::/48", "via", "2001:db8:1::2"},
		{"-n", c, "-6", "route", "add", "2001:db8:203::/48", "via", "2001:db8:1::2"},
		{"-n", c, "-6", "route", "add", "2001:db8:204::/48", "via", "2001:db8:1::2"},
		{"-n", r, "route", "add", "blackhole", "198.51.100.0/24"},
		{"-n", r, "-6", "route", "add", "blackhole", "2001:db8:100::/48"},
		{"-n", r, "route", "add", "unreachable", "203.0.113.0/25"},
		{"-n", r, "route", "add", "prohibit", "203.0.113.128/25"},
		{"-n", r, "-6", "route", "add", "unreachable", "2001:db8:203::/48"},
		{"-n", r, "-6", "route", "add", "prohibit", "2001:db8:204::/48"},
	}
	for _, args := range script {
		run(t, args...)
	}
	// The router forwards, so that its routes (not the local-delivery check) decide the fate
	// of transit packets, and it answers ICMP errors without the default rate limit getting
	// in the way of a few test probes.
	n.Sysctl(t, r, "net.ipv4.ip_forward", "1")
	n.Sysctl(t, r, "net.ipv6.conf.all.forwarding", "1")
	n.Sysctl(t, r, "net.ipv4.icmp_ratelimit", "0")
	n.Sysctl(t, r, "net.ipv6.icmp.ratelimit", "0")
	n.waitReady(t)
	return n
}

// waitReady waits until the router answers on both families: a fresh veth link drops the
// first packets while the link comes up and neighbour discovery runs.
func (n *Net) waitReady(t testing.TB) {
	t.Helper()
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

// Sysctl sets a sysctl (dotted name) inside namespace ns.
func (n *Net) Sysctl(t testing.TB, ns, name, value string) {
	t.Helper()
	path := "/proc/sys/" + strings.ReplaceAll(name, ".", "/")
	cmd := exec.Command("ip", "netns", "exec", ns, "sh", "-c", `printf '%s' "$1" > "$2"`, "sh", value, path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("netnstest: sysctl %s=%s in %s: %v: %s", name, value, ns, err, out)
	}
}

// InClient runs fn on an OS thread that has entered the client namespace, and waits for it.
// Sockets fn opens belong to the client namespace and keep working from any goroutine
// afterwards. fn runs on another goroutine, so it must not call t.Fatal. The thread is discarded when fn returns, so no other goroutine ever runs in
// the namespace by accident.
func (n *Net) InClient(t testing.TB, fn func()) {
	t.Helper()
	n.in(t, n.Client, fn)
}

func (n *Net) in(t testing.TB, name string, fn func()) {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		// No UnlockOSThread: the runtime ends the thread when this goroutine exits.
		runtime.LockOSThread()
		h, err := netns.GetFromName(name)
		if err != nil {
			done <- fmt.Errorf("open namespace %s: %w", name, err)
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			done <- fmt.Errorf("enter namespace %s: %w", name, err)
			return
		}
		fn()
		done <- nil
	}()
	if err := <-done; err != nil {
		t.Fatalf("netnstest: %v", err)
	}
}

// Exec runs a command inside the client namespace and returns its combined output.
func (n *Net) Exec(t testing.TB, name string, args ...string) ([]byte, error) {
	t.Helper()
	return exec.Command("ip", append([]string{"netns", "exec", n.Client, name}, args...)...).CombinedOutput()
}

func run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("netnstest: ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}
