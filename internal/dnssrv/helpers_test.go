package dnssrv

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// query sends one question to addr over network ("udp" or "tcp"); ednsSize 0
// sends no OPT record.
func query(t testing.TB, addr netip.AddrPort, network, name string, qtype uint16, edns uint16, rd bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = rd
	if edns > 0 {
		m.SetEdns0(edns, false)
	}
	c := &dns.Client{Net: network, Timeout: 3 * time.Second}
	resp, _, err := c.Exchange(m, addr.String())
	if err != nil {
		t.Fatalf("query %s %s over %s at %s: %v", name, dns.TypeToString[qtype], network, addr, err)
	}
	return resp
}

// rrStrings renders records in presentation format, sorted, TTLs zeroed.
func rrStrings(rrs []dns.RR) []string {
	out := []string{}
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		c := dns.Copy(rr)
		c.Header().Ttl = 0
		out = append(out, c.String())
	}
	slices.Sort(out)
	return out
}

// mustZone parses a zone or fails the test.
func mustZone(t testing.TB, origin, text string) *Zone {
	t.Helper()
	z, err := ParseZoneString(origin, text)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// listen serves h on 127.0.0.1 until the test ends.
func listen(t testing.TB, h dns.Handler) netip.AddrPort {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Listen(ctx, "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s.Addr()
}
