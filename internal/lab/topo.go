package lab

import (
	"fmt"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/v6matrix/v6matrix/internal/netns"
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
	for _, n := range l.sc.Nodes {
		h, err := netns.Create(l.nsName(n.Name))
		if err != nil {
			return err
		}
		l.ns[n.Name] = h
		if err := netns.Do(h, func() error { return configureNode(n) }); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	return nil
}

// configureNode runs inside the node's namespace: sysctls, then the loopback's
// addresses.
func configureNode(n Node) error {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	set := baseSysctls
	if n.Role == "router" {
		set = append(append([][2]string(nil), set...), routerSysctls...)
	}
	if n.Faults.DropEcho {
		set = append(append([][2]string(nil), set...), echoSysctls...)
	}
	for _, kv := range set {
		if err := netns.WriteSysctl(kv[0], kv[1]); err != nil {
			return err
		}
	}
	for _, p := range n.Loopback {
		if err := netlink.AddrAdd(lo, &netlink.Addr{IPNet: netns.IPNet(p), Flags: unix.IFA_F_NODAD}); err != nil {
			return fmt.Errorf("add %s to lo: %w", p, err)
		}
	}
	return nil
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
		a, b := link.Ends[0], link.Ends[1]
		if err := netns.Veth(netns.End{NS: l.ns[a.Node], Name: link.Name, Addrs: a.Addrs},
			netns.End{NS: l.ns[b.Node], Name: link.Name, Addrs: b.Addrs}, link.MTU); err != nil {
			return fmt.Errorf("%s-%s: %w", a.Node, b.Node, err)
		}
		return nil
	}
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
	for _, e := range link.Ends {
		if err := netns.LinkUp(l.handles[e.Node], link.Name, e.Addrs...); err != nil {
			return fmt.Errorf("in %s: %w", e.Node, err)
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
		if err := netns.WaitLinks(h, deadline, false); err != nil {
			return fmt.Errorf("%s, after %v: %w", node, operUpTimeout, err)
		}
	}
	return nil
}
