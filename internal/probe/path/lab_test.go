package path

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// A throwaway topology for the tests (the lab package will offer the full
// one): client -- r1 -- r2 -- target, documentation addresses only, every
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
	ns     map[string]netns.NsHandle // by role
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
	for _, tool := range []string{"ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("path lab tests need %s (Debian iproute2): %v", tool, err)
		}
	}
}

// inNS runs fn on a thread switched into ns. The thread is never switched
// back: it stays locked and exits with the goroutine.
func inNS(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// newNamedNS creates a named namespace without moving the caller's thread.
func newNamedNS(name string) (netns.NsHandle, error) {
	type res struct {
		h   netns.NsHandle
		err error
	}
	c := make(chan res, 1)
	go func() {
		runtime.LockOSThread() // the thread ends up inside the new namespace: let it die
		h, err := netns.NewNamed(name)
		c <- res{h, err}
	}()
	r := <-c
	return r.h, r.err
}

// newNamespaces creates one namespace per role, removed in t.Cleanup, with
// loopback up and ICMP rate limits lifted.
func newNamespaces(t testing.TB, roles ...string) (string, map[string]netns.NsHandle) {
	t.Helper()
	requireLab(t)
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	prefix := "v6mpath-" + hex.EncodeToString(rnd[:])
	m := map[string]netns.NsHandle{}
	for _, role := range roles {
		name := prefix + "-" + role
		h, err := newNamedNS(name)
		if err != nil {
			t.Skipf("cannot create network namespace %s: %v", name, err)
		}
		t.Cleanup(func() {
			h.Close()
			if err := netns.DeleteNamed(name); err != nil {
				t.Errorf("delete namespace %s: %v", name, err)
			}
		})
		m[role] = h
		err = inNS(h, func() error {
			return writeSysctls(map[string]string{
				"net/ipv4/icmp_ratelimit":            "0",
				"net/ipv4/icmp_msgs_per_sec":         "100000",
				"net/ipv4/icmp_msgs_burst":           "100000",
				"net/ipv6/icmp/ratelimit":            "0",
				"net/ipv6/conf/all/accept_dad":       "0",
				"net/ipv6/conf/default/accept_dad":   "0",
				"net/ipv6/conf/default/accept_ra":    "0",
				"net/ipv4/ip_forward":                boolStr(strings.HasPrefix(role, "r")),
				"net/ipv6/conf/all/forwarding":       boolStr(strings.HasPrefix(role, "r")),
				"net/ipv6/conf/default/forwarding":   boolStr(strings.HasPrefix(role, "r")),
				"net/ipv6/conf/default/disable_ipv6": "0",
			})
		})
		if err != nil {
			t.Fatalf("namespace %s: %v", name, err)
		}
		hd := nlHandle(t, h)
		lo, err := hd.LinkByName("lo")
		if err == nil {
			err = hd.LinkSetUp(lo)
		}
		if err != nil {
			t.Fatalf("namespace %s: loopback up: %v", name, err)
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

// writeSysctls writes /proc/sys entries of the calling thread's namespace.
func writeSysctls(kv map[string]string) error {
	for k, v := range kv {
		if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

func nlHandle(t testing.TB, ns netns.NsHandle) *netlink.Handle {
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
	for role, ifname := range map[string]string{"r1": "r1-r2", "r2": "r2-r1"} {
		if err := inNS(m[role], func() error {
			return writeSysctls(map[string]string{"net/ipv6/conf/" + ifname + "/mtu": "1280"})
		}); err != nil {
			t.Fatal(err)
		}
	}
	tp.routes("client", "192.0.2.2", "2001:db8:a::2", "198.51.100.0/24", "203.0.113.0/24", "2001:db8:b::/64", "2001:db8:c::/64")
	tp.routes("r1", "198.51.100.2", "2001:db8:b::2", "203.0.113.0/24", "2001:db8:c::/64")
	tp.routes("r2", "198.51.100.1", "2001:db8:b::1", "192.0.2.0/26", "2001:db8:a::/64")
	tp.routes("target", "203.0.113.1", "2001:db8:c::1", "192.0.2.0/26", "198.51.100.0/24", "2001:db8:a::/64", "2001:db8:b::/64")
	tp.waitReady()
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
		h := nlHandle(t, ns)
		for {
			ready, why := linksReady(h)
			if ready {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: links not ready after 10s: %s", role, why)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

func linksReady(h *netlink.Handle) (bool, string) {
	links, err := h.LinkList()
	if err != nil {
		return false, err.Error()
	}
	for _, l := range links {
		a := l.Attrs()
		if a.Name == "lo" {
			continue
		}
		if a.OperState != netlink.OperUp {
			return false, a.Name + " is " + a.OperState.String()
		}
		addrs, err := h.AddrList(l, unix.AF_INET6)
		if err != nil {
			return false, err.Error()
		}
		linkLocal := false
		for _, ad := range addrs {
			if ad.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
				return false, a.Name + " has tentative " + ad.IP.String()
			}
			linkLocal = linkLocal || ad.IP.IsLinkLocalUnicast()
		}
		if !linkLocal {
			return false, a.Name + " has no IPv6 link-local address yet"
		}
	}
	return true, ""
}

// link connects two namespaces with a veth pair of the given MTU.
func (tp *topo) link(roleA, ifA, roleB, ifB string, mtu int, addrsA, addrsB []string) {
	t := tp.t
	t.Helper()
	ha := nlHandle(t, tp.ns[roleA])
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: ifA, MTU: mtu},
		PeerName:      ifB,
		PeerMTU:       uint32(mtu),
		PeerNamespace: netlink.NsFd(int(tp.ns[roleB])),
	}
	if err := ha.LinkAdd(veth); err != nil {
		t.Fatalf("veth %s/%s: %v", ifA, ifB, err)
	}
	tp.setup(ha, ifA, addrsA)
	tp.setup(nlHandle(t, tp.ns[roleB]), ifB, addrsB)
}

func (tp *topo) setup(h *netlink.Handle, ifname string, addrs []string) {
	t := tp.t
	t.Helper()
	l, err := h.LinkByName(ifname)
	if err != nil {
		t.Fatalf("link %s: %v", ifname, err)
	}
	for _, a := range addrs {
		ip, ipnet, err := net.ParseCIDR(a)
		if err != nil {
			t.Fatal(err)
		}
		ipnet.IP = ip
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipnet, Flags: unix.IFA_F_NODAD}); err != nil {
			t.Fatalf("address %s on %s: %v", a, ifname, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		t.Fatalf("link %s up: %v", ifname, err)
	}
}

// routes adds routes to dsts via gw4 (IPv4 destinations) or gw6 (IPv6).
func (tp *topo) routes(role, gw4, gw6 string, dsts ...string) {
	t := tp.t
	t.Helper()
	h := nlHandle(t, tp.ns[role])
	for _, d := range dsts {
		_, dst, err := net.ParseCIDR(d)
		if err != nil {
			t.Fatal(err)
		}
		gw := net.ParseIP(gw4)
		if dst.IP.To4() == nil {
			gw = net.ParseIP(gw6)
		}
		if err := h.RouteAdd(&netlink.Route{Dst: dst, Gw: gw}); err != nil {
			t.Fatalf("%s: route %s via %s: %v", role, d, gw, err)
		}
	}
}

// name returns the namespace name of a role.
func (tp *topo) name(role string) string { return tp.prefix + "-" + role }

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
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", tp.name(role)}, args...)...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

// socketIn returns a Config.Socket that opens sockets in a role's namespace.
func (tp *topo) socketIn(role string) func(int) (int, error) {
	return socketInNS(tp.ns[role])
}

func socketInNS(ns netns.NsHandle) func(int) (int, error) {
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
