package lab

import (
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// baseSysctls are set in every namespace before its interfaces exist: no duplicate address
// detection (addresses are usable at once), no autoconfiguration, no reverse-path filter
// (the host's defaults may be strict), and no ICMP rate limits so that tracepath and ping
// always get their answers.
var baseSysctls = [][2]string{
	{"net.ipv6.conf.all.accept_dad", "0"},
	{"net.ipv6.conf.default.accept_dad", "0"},
	{"net.ipv6.conf.all.accept_ra", "0"},
	{"net.ipv6.conf.default.accept_ra", "0"},
	{"net.ipv6.conf.default.autoconf", "0"},
	{"net.ipv6.conf.all.disable_ipv6", "0"},
	{"net.ipv6.conf.default.disable_ipv6", "0"},
	{"net.ipv4.conf.all.rp_filter", "0"},
	{"net.ipv4.conf.default.rp_filter", "0"},
	{"net.ipv4.icmp_ratelimit", "0"},
	{"net.ipv6.icmp.ratelimit", "0"},
	{"net.ipv4.icmp_msgs_per_sec", "100000"},
	{"net.ipv4.icmp_msgs_burst", "100000"},
}

// routerSysctls turn a namespace into a router.
var routerSysctls = [][2]string{
	{"net.ipv4.ip_forward", "1"},
	{"net.ipv6.conf.all.forwarding", "1"},
	{"net.ipv6.conf.default.forwarding", "1"},
}

// echoSysctls make a host ignore ping.
var echoSysctls = [][2]string{
	{"net.ipv4.icmp_echo_ignore_all", "1"},
	{"net.ipv6.icmp.echo_ignore_all", "1"},
}

// createNamespaces makes one named namespace per node, with lo up and the sysctls set.
func (l *Lab) createNamespaces() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	var cerr error
	for _, n := range l.sc.Nodes {
		h, err := netns.NewNamed(l.nsName(n.Name))
		if err != nil {
			cerr = fmt.Errorf("create netns %s: %w", l.nsName(n.Name), err)
			break
		}
		l.ns[n.Name] = h
		if cerr = configureNode(n); cerr != nil {
			cerr = fmt.Errorf("node %s: %w", n.Name, cerr)
			break
		}
	}
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime discards it when the goroutine ends.
		runtime.LockOSThread()
		return fmt.Errorf("return to original netns: %w", err)
	}
	return cerr
}

// configureNode runs inside the node's namespace: loopback up, then sysctls.
func configureNode(n Node) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	set := baseSysctls
	if n.Role == "router" {
		set = append(append([][2]string(nil), set...), routerSysctls...)
	}
	if n.Faults.DropEcho {
		set = append(append([][2]string(nil), set...), echoSysctls...)
	}
	for _, kv := range set {
		if err := writeSysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	for _, p := range n.Loopback {
		if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: ipNet(p), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("add %s to lo: %w", p, err)
		}
	}
	return nil
}

// ipNet converts a prefix (host bits kept) to the form netlink takes.
func ipNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), bits)}
}

// createLinks makes every link: veth pairs, bridges with their ports, addresses and MTUs.
func (l *Lab) createLinks() error {
	for _, link := range l.sc.Links {
		if err := l.createLink(link); err != nil {
			return fmt.Errorf("link %s: %w", link.Name, err)
		}
	}
	return nil
}

func (l *Lab) createLink(link Link) error {
	if link.Bridge == "" {
		a, b := link.Ends[0].Node, link.Ends[1].Node
		ha := l.handles[a]
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: link.Name, MTU: link.MTU},
			PeerName:      link.Name,
			PeerNamespace: netlink.NsFd(int(l.ns[b])),
		}
		if err := ha.LinkAdd(veth); err != nil {
			return fmt.Errorf("add veth %s %s-%s: %w", link.Name, a, b, err)
		}
	} else {
		hb := l.handles[link.Bridge]
		// Without snooping the bridge floods multicast, so neighbour discovery never waits
		// for MLD state.
		snoop := false
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: link.Name, MTU: link.MTU}, MulticastSnooping: &snoop}
		if err := hb.LinkAdd(br); err != nil {
			return fmt.Errorf("add bridge in %s: %w", link.Bridge, err)
		}
		for _, e := range link.Ends {
			if e.Node == link.Bridge {
				continue
			}
			port := &netlink.Veth{
				LinkAttrs:     netlink.LinkAttrs{Name: e.Node, MTU: link.MTU},
				PeerName:      link.Name,
				PeerNamespace: netlink.NsFd(int(l.ns[e.Node])),
			}
			if err := hb.LinkAdd(port); err != nil {
				return fmt.Errorf("add port %s: %w", e.Node, err)
			}
			p, err := hb.LinkByName(e.Node)
			if err != nil {
				return fmt.Errorf("find port %s: %w", e.Node, err)
			}
			if err := hb.LinkSetMaster(p, br); err != nil {
				return fmt.Errorf("enslave port %s: %w", e.Node, err)
			}
			if err := hb.LinkSetUp(p); err != nil {
				return fmt.Errorf("port %s up: %w", e.Node, err)
			}
		}
	}
	for _, e := range link.Ends {
		h := l.handles[e.Node]
		ifc, err := h.LinkByName(link.Name)
		if err != nil {
			return fmt.Errorf("find %s in %s: %w", link.Name, e.Node, err)
		}
		for _, p := range e.Addrs {
			if err := h.AddrAdd(ifc, &netlink.Addr{IPNet: ipNet(p), Flags: unix.IFA_F_NODAD}); err != nil {
				return fmt.Errorf("add %s in %s: %w", p, e.Node, err)
			}
		}
		if err := h.LinkSetUp(ifc); err != nil {
			return fmt.Errorf("%s up in %s: %w", link.Name, e.Node, err)
		}
	}
	return nil
}

// operUpTimeout bounds the wait for links to come up.
const operUpTimeout = 5 * time.Second

// waitOperUp waits until every interface except lo is operationally up. The kernel activates
// a new link's queue only when it processes the carrier event (up to a second later); until
// then packets are dropped, so the lab is not ready before.
func (l *Lab) waitOperUp() error {
	deadline := time.Now().Add(operUpTimeout)
	for node, h := range l.handles {
		for {
			links, err := h.LinkList()
			if err != nil {
				return fmt.Errorf("list links of %s: %w", node, err)
			}
			var down []string
			for _, link := range links {
				a := link.Attrs()
				if a.Name != "lo" && a.OperState != netlink.OperUp {
					down = append(down, a.Name)
				}
			}
			if len(down) == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("links %v of %s not up after %v", down, node, operUpTimeout)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return nil
}
