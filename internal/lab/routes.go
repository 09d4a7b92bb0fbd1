package lab

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/v6matrix/v6matrix/internal/netns"
)

// Route is one route the lab installs in a node: Dst via Gw out of the interface Dev.
type Route struct {
	Node string
	Dst  netip.Prefix
	Gw   netip.Addr
	Dev  string
}

// hop is how a node reaches another: out of Dev towards neighbour Via.
type hop struct {
	dev, via string
	link     *Link
}

// Routes computes the static routes of every node: for every link subnet and loopback
// address not attached to the node, a route via the first hop of the shortest path (the
// topology is meant to be a tree). Only lab prefixes are routed: no default route exists.
func (s *Scenario) Routes() []Route {
	type attach struct {
		link *Link
		end  End
	}
	byNode := map[string][]attach{}
	for i := range s.Links {
		for _, e := range s.Links[i].Ends {
			byNode[e.Node] = append(byNode[e.Node], attach{&s.Links[i], e})
		}
	}
	addrOn := func(link *Link, node string, v4 bool) netip.Addr {
		for _, e := range link.Ends {
			if e.Node != node {
				continue
			}
			for _, p := range e.Addrs {
				if p.Addr().Is4() == v4 {
					return p.Addr()
				}
			}
		}
		return netip.Addr{}
	}
	var routes []Route
	for _, n := range s.Nodes {
		first := map[string]hop{n.Name: {}}
		queue := []string{n.Name}
		for len(queue) > 0 {
			cur := queue[0]
			queue = queue[1:]
			for _, a := range byNode[cur] {
				for _, e := range a.link.Ends {
					if _, seen := first[e.Node]; seen {
						continue
					}
					h := first[cur]
					if cur == n.Name {
						h = hop{dev: a.link.Name, via: e.Node, link: a.link}
					}
					first[e.Node] = h
					queue = append(queue, e.Node)
				}
			}
		}
		direct := map[netip.Prefix]bool{}
		for _, a := range byNode[n.Name] {
			for _, p := range a.end.Addrs {
				direct[p.Masked()] = true
			}
		}
		add := func(dst netip.Prefix, toward string) {
			h, ok := first[toward]
			if !ok || h.link == nil || direct[dst] {
				return
			}
			gw := addrOn(h.link, h.via, dst.Addr().Is4())
			if !gw.IsValid() {
				return
			}
			r := Route{Node: n.Name, Dst: dst, Gw: gw, Dev: h.dev}
			if !slices.Contains(routes, r) {
				routes = append(routes, r)
			}
		}
		for _, l := range s.Links {
			for _, e := range l.Ends {
				for _, p := range e.Addrs {
					add(p.Masked(), e.Node)
				}
			}
		}
		for _, m := range s.Nodes {
			if m.Name == n.Name {
				continue
			}
			for _, p := range m.Loopback {
				add(p.Masked(), m.Name)
			}
		}
	}
	return routes
}

// installRoutes adds the computed routes and the routers' unreachable routes.
func (l *Lab) installRoutes() error {
	for _, r := range l.sc.Routes() {
		h := l.handles[r.Node]
		dev, err := h.LinkByName(r.Dev)
		if err != nil {
			return fmt.Errorf("route in %s: find %s: %w", r.Node, r.Dev, err)
		}
		nr := &netlink.Route{LinkIndex: dev.Attrs().Index, Dst: netns.IPNet(r.Dst), Gw: r.Gw.AsSlice()}
		if err := h.RouteAdd(nr); err != nil {
			return fmt.Errorf("route in %s: %s via %s dev %s: %w", r.Node, r.Dst, r.Gw, r.Dev, err)
		}
	}
	for _, n := range l.sc.Nodes {
		h := l.handles[n.Name]
		for _, kind := range []struct {
			addrs []netip.Addr
			typ   int
		}{{n.Faults.Unreachable, unix.RTN_UNREACHABLE}} {
			for _, a := range kind.addrs {
				dst := netip.PrefixFrom(a, a.BitLen())
				nr := &netlink.Route{Dst: netns.IPNet(dst), Type: kind.typ}
				if a.Is6() {
					nr.Family = netlink.FAMILY_V6
				}
				if err := h.RouteAdd(nr); err != nil {
					return fmt.Errorf("route in %s: type %d %s: %w", n.Name, kind.typ, dst, err)
				}
			}
		}
	}
	return nil
}
