package path

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/v6matrix/v6matrix/internal/netns"
)

// A throwaway topology for the tests, made with internal/netns: client -- r1 -- r2 -- target, documentation addresses only, every
// namespace named v6mpath-<random>-<role> and deleted in t.Cleanup. The r1--r2
// link has MTU 1400, and IPv6 MTU 1280 on it.
//
//	client  c-r1  192.0.2.1/26     2001:db8:a::1/64
//	r1      r1-c  192.0.2.2/26     2001:db8:a::2/64
//	r1      r1-r2 198.51.100.1/24  2001:db8:b::1/64   (MTU 1400 / IPv6 1280)
//	r2      r2-r1 198.51.100.2/24  2001:db8:b::2/64
//	r2      r2-t  203.0.113.1/24   2001:db8:c::1/64
//	target  t-r2  203.0.113.2/24   2001:db8:c::2/64
type topo struct {
	t      testing.TB
	prefix string
	ns     map[string]netns.Handle // by role
}

// Addresses of the topology.
var (
	target4 = "203.0.113.2"
	target6 = "2001:db8:c::2"
	r1Addr  = map[int]string{4: "192.0.2.2", 6: "2001:db8:a::2"}
	r2Addr  = map[int]string{4: "198.51.100.2", 6: "2001:db8:b::2"}
)

// requireLab skips unless the test can build network namespaces.
func requireLab(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("path lab tests need root (network namespaces); run them as root")
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		t.Skipf("path lab tests need network namespaces: %v", err)
	}
}

// inNS runs fn on a thread switched into ns.
func inNS(ns netns.Handle, fn func() error) error { return netns.Do(ns, fn) }

// newNamespaces creates one namespace per role, removed in t.Cleanup, with
// loopback up and ICMP rate limits lifted.
func newNamespaces(t testing.TB, roles ...string) (string, map[string]netns.Handle) {
	t.Helper()
	requireLab(t)
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	prefix := "v6mpath-" + hex.EncodeToString(rnd[:])
	m := map[string]netns.Handle{}
	for _, role := range roles {
		name := prefix + "-" + role
		h, err := netns.Create(name)
		if err != nil {
			t.Skipf("cannot create network namespace: %v", err)
		}
		t.Cleanup(func() {
			h.Close()
			if err := netns.Delete(name); err != nil {
				t.Error(err)
			}
		})
		m[role] = h
		router := boolStr(strings.HasPrefix(role, "r"))
		err = netns.Sysctls(h,
			[2]string{"net.ipv4.icmp_ratelimit", "0"},
			[2]string{"net.ipv4.icmp_msgs_per_sec", "100000"},
			[2]string{"net.ipv4.icmp_msgs_burst", "100000"},
			[2]string{"net.ipv6.icmp.ratelimit", "0"},
			[2]string{"net.ipv6.conf.all.accept_dad", "0"},
			[2]string{"net.ipv6.conf.default.accept_dad", "0"},
			[2]string{"net.ipv6.conf.default.accept_ra", "0"},
			[2]string{"net.ipv4.ip_forward", router},
			[2]string{"net.ipv6.conf.all.forwarding", router},
			[2]string{"net.ipv6.conf.default.forwarding", router},
			[2]string{"net.ipv6.conf.default.disable_ipv6", "0"})
		if err != nil {
			t.Fatalf("namespace %s: %v", name, err)
		}
	}
	return prefix, m
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func nlHandle(t testing.TB, ns netns.Handle) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netlink handle: %v", err)
	}
	t.Cleanup(h.Close)
	return h
}

// newTopo builds client -- r1 -- r2 -- target.
func newTopo(t testing.TB) *topo {
	t.Helper()
	prefix, m := newNamespaces(t, "client", "r1", "r2", "target")
	tp := &topo{t: t, prefix: prefix, ns: m}
	tp.link("client", "c-r1", "r1", "r1-c", 1500,
		[]string{"192.0.2.1/26", "2001:db8:a::1/64"}, []string{"192.0.2.2/26", "2001:db8:a::2/64"})
	tp.link("r1", "r1-r2", "r2", "r2-r1", 1400,
		[]string{"198.51.100.1/24", "2001:db8:b::1/64"}, []string{"198.51.100.2/24", "2001:db8:b::2/64"})
	tp.link("r2", "r2-t", "target", "t-r2", 1500,
		[]string{"203.0.113.1/24", "2001:db8:c::1/64"}, []string{"203.0.113.2/24", "2001:db8:c::2/64"})
	// The IPv6 MTU is set once the links are up: the kernel resets it to the link's
	// MTU when a link becomes ready (carrier).
	tp.waitReady()
	for role, ifname := range map[string]string{"r1": "r1-r2", "r2": "r2-r1"} {
		if err := netns.Sysctls(m[role], [2]string{"net.ipv6.conf." + ifname + ".mtu", "1280"}); err != nil {
			t.Fatal(err)
		}
	}
	tp.routes("client", "192.0.2.2", "2001:db8:a::2", "198.51.100.0/24", "203.0.113.0/24", "2001:db8:b::/64", "2001:db8:c::/64")
	tp.routes("r1", "198.51.100.2", "2001:db8:b::2", "203.0.113.0/24", "2001:db8:c::/64")
	tp.routes("r2", "198.51.100.1", "2001:db8:b::1", "192.0.2.0/26", "2001:db8:a::/64")
	tp.routes("target", "203.0.113.1", "2001:db8:c::1", "192.0.2.0/26", "198.51.100.0/24", "2001:db8:a::/64", "2001:db8:b::/64")
	return tp
}

// waitReady waits until every link is operationally up and no IPv6 address
// is tentative: the kernel reports carrier changes through linkwatch up to a
// second late, and IPv6 on a link only works once that happened.
func (tp *topo) waitReady() {
	t := tp.t
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for role, ns := range tp.ns {
		if err := netns.WaitLinks(nlHandle(t, ns), deadline, true); err != nil {
			t.Fatalf("%s: %v", role, err)
		}
	}
}

// link connects two namespaces with a veth pair of the given MTU.
func (tp *topo) link(roleA, ifA, roleB, ifB string, mtu int, addrsA, addrsB []string) {
	t := tp.t
	t.Helper()
	prefixes := func(ss []string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	if err := netns.Veth(netns.End{NS: tp.ns[roleA], Name: ifA, Addrs: prefixes(addrsA)},
		netns.End{NS: tp.ns[roleB], Name: ifB, Addrs: prefixes(addrsB)}, mtu); err != nil {
		t.Fatal(err)
	}
}

// routes adds routes to dsts via gw4 (IPv4 destinations) or gw6 (IPv6).
func (tp *topo) routes(role, gw4, gw6 string, dsts ...string) {
	t := tp.t
	t.Helper()
	h := nlHandle(t, tp.ns[role])
	for _, d := range dsts {
		dst := netip.MustParsePrefix(d)
		gw := netip.MustParseAddr(gw4)
		if dst.Addr().Is6() {
			gw = netip.MustParseAddr(gw6)
		}
		if err := h.RouteAdd(&netlink.Route{Dst: netns.IPNet(dst), Gw: gw.AsSlice()}); err != nil {
			t.Fatalf("%s: route %s via %s: %v", role, d, gw, err)
		}
	}
}

// nft loads an nftables ruleset into a role's namespace.
func (tp *topo) nft(role, ruleset string) {
	t := tp.t
	t.Helper()
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skipf("this case needs nft (Debian nftables): %v", err)
	}
	out, err := tp.exec(role, strings.NewReader(ruleset), "nft", "-f", "-")
	if err != nil {
		t.Fatalf("nft in %s: %v\n%s", role, err, out)
	}
}

// exec runs a command inside a role's namespace.
func (tp *topo) exec(role string, stdin *strings.Reader, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var in io.Reader
	if stdin != nil {
		in = stdin
	}
	return netns.Output(ctx, tp.ns[role], in, args[0], args[1:]...)
}

// socketIn returns a Config.Socket that opens sockets in a role's namespace.
func (tp *topo) socketIn(role string) func(int) (int, error) {
	return socketInNS(tp.ns[role])
}

func socketInNS(ns netns.Handle) func(int) (int, error) {
	return func(domain int) (int, error) {
		var fd int
		err := inNS(ns, func() error {
			var err error
			fd, err = unix.Socket(domain, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
			return err
		})
		return fd, err
	}
}
