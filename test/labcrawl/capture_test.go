package labcrawl_test

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"
)

// allowedPorts are the only destination ports v6matrix may send to (issue 5): the service
// ports and the one path-probe port.
var allowedPorts = []uint16{25, 53, 80, 123, 443, 33434}

// resolverAddr is the lab resolver's address inside the vantage.
var resolverAddr = netip.MustParseAddr("127.0.0.53")

// Link-scope ICMPv6 the kernel sends by itself (neighbour discovery, MLD) stays on the link.
var (
	linkLocal    = netip.MustParsePrefix("fe80::/10")
	linkMcast    = netip.MustParsePrefix("ff02::/16")
	ndpOrMLDType = []uint8{130, 131, 132, 133, 134, 135, 136, 137, 143}
)

// checkCapture (issues 4 and 5): every packet the vantage sent during the crawl went to a lab
// address (or the lab resolver), and every TCP/UDP one to one of the six allowed ports.
func checkCapture(t *testing.T, r *crawlRun) {
	pkts, err := readPcap(r.capture)
	if err != nil {
		t.Fatal(err)
	}
	sc := r.lab.Scenario()
	var sent int
	seenPorts := map[uint16]int{}
	badDst, badPort := map[string]int{}, map[string]int{}
	for _, p := range pkts {
		// On lo every packet shows twice (out and in); the resolver's replies from
		// 127.0.0.53:53 to the crawl's ephemeral ports are not the crawl's sending.
		if !p.Outgoing || p.Src == resolverAddr {
			continue
		}
		sent++
		icmp := p.Proto == 1 || p.Proto == 58
		switch {
		case p.Dst == resolverAddr, labAddr(sc, p.Dst):
		case p.Proto == 58 && (linkLocal.Contains(p.Dst) || linkMcast.Contains(p.Dst)) && slices.Contains(ndpOrMLDType, p.ICMPType):
		default:
			badDst[fmt.Sprintf("proto %d %s -> %s port %d", p.Proto, p.Src, p.Dst, p.DstPort)]++
		}
		if icmp || !p.HasPorts {
			continue
		}
		seenPorts[p.DstPort]++
		if !slices.Contains(allowedPorts, p.DstPort) {
			badPort[fmt.Sprintf("proto %d %s -> %s port %d", p.Proto, p.Src, p.Dst, p.DstPort)]++
		}
	}
	t.Logf("capture: %d packets, %d sent by the vantage; destination ports %v", len(pkts), sent, seenPorts)
	for _, k := range slices.Sorted(maps.Keys(badDst)) {
		t.Errorf("packet left the lab: %s (%d times)", k, badDst[k])
	}
	for _, k := range slices.Sorted(maps.Keys(badPort)) {
		t.Errorf("destination port outside %v: %s (%d times)", allowedPorts, k, badPort[k])
	}
	// The capture must have seen the crawl itself, or the checks above prove nothing.
	for _, port := range allowedPorts {
		if seenPorts[port] == 0 {
			t.Errorf("the capture saw no packet to port %d: did tcpdump watch the crawl?", port)
		}
	}
}
