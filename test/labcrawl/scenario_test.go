package labcrawl_test

import (
	"net/netip"
	"slices"

	"github.com/v6matrix/v6matrix/internal/lab"
)

// What the scenario file says about one address, derived from its nodes, faults and
// services (so that a new scenario needs no change here).

// routerFault reports whether some router discards (blackhole) or rejects (unreachable) addr.
func routerFault(sc *lab.Scenario, addr netip.Addr) (blackhole, unreachable bool) {
	for _, n := range sc.Nodes {
		blackhole = blackhole || slices.Contains(n.Faults.Blackhole, addr)
		unreachable = unreachable || slices.Contains(n.Faults.Unreachable, addr)
	}
	return blackhole, unreachable
}

// servicePort is the port a service listens on.
func servicePort(s lab.Service) int {
	if s.Port != 0 {
		return s.Port
	}
	return map[string]int{"http": 80, "https": 443, "smtp": 25, "ntp": 123}[s.Kind]
}

// serviceOn returns the service listening on addr:port, if any.
func serviceOn(sc *lab.Scenario, addr netip.Addr, port int) (lab.Service, bool) {
	for _, s := range sc.Services {
		if servicePort(s) == port && slices.Contains(sc.Set(s.Set), addr) {
			return s, true
		}
	}
	return lab.Service{}, false
}

// expectTCP is the TCP state the scenario designs for addr:port.
func expectTCP(sc *lab.Scenario, addr netip.Addr, port int) string {
	bh, unr := routerFault(sc, addr)
	switch {
	case unr:
		return "unreachable"
	case bh:
		return "filtered"
	}
	if n := sc.Node(sc.NodeOf(addr)); n != nil && slices.Contains(n.Faults.FilterTCP, port) {
		return "filtered"
	}
	if s, ok := serviceOn(sc, addr, port); ok && s.Kind != "ntp" {
		return "open"
	}
	return "closed"
}

// expectLoss is the ping loss (percent) the scenario designs for addr.
func expectLoss(sc *lab.Scenario, addr netip.Addr) float64 {
	bh, unr := routerFault(sc, addr)
	if n := sc.Node(sc.NodeOf(addr)); bh || unr || n == nil || n.Faults.DropEcho {
		return 100
	}
	return 0
}

// nameserverFault returns the fault of a name server ("" answers) and whether it exists.
func nameserverFault(sc *lab.Scenario, name string) (string, bool) {
	for _, ns := range sc.Nameservers {
		if ns.Name == name {
			return ns.Fault, true
		}
	}
	return "", false
}

// expectDNS53 is the dns53 status the scenario designs for a name server's address
// asked a domain's SOA.
func expectDNS53(sc *lab.Scenario, name, domain string, addr netip.Addr) string {
	fault, _ := nameserverFault(sc, name)
	lame := false
	if d := sc.Domain(domain); d != nil {
		lame = slices.Contains(d.Lame, name)
	}
	switch {
	case fault == "drop":
		return "timeout"
	case fault == "servfail":
		return "servfail"
	case fault == "v4only" && addr.Is6():
		return "unreachable" // nothing listens: ICMP port unreachable
	case lame:
		return "refused" // the server does not load the zone
	}
	return "authoritative"
}

// labAddr reports whether a is an address of the lab: inside the scenario's ranges or on a
// node's loopback.
func labAddr(sc *lab.Scenario, a netip.Addr) bool {
	for _, p := range sc.AllowRanges {
		if p.Contains(a) {
			return true
		}
	}
	for _, n := range sc.Nodes {
		for _, p := range n.Loopback {
			if p.Contains(a) {
				return true
			}
		}
	}
	return false
}
