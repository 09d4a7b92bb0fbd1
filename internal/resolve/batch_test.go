package resolve

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/dnssrv"
	"github.com/v6matrix/v6matrix/internal/result"
)

// slowServer answers every question after delay with one A (and AAAA) record, except
// that AAAA questions for names in dropAAAA are never answered.
func slowServer(t *testing.T, delay time.Duration, dropAAAA map[string]bool) *dnssrv.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		q := r.Question[0]
		if q.Qtype == dns.TypeAAAA && dropAAAA[q.Name] {
			return
		}
		time.Sleep(delay)
		m := new(dns.Msg)
		m.SetReply(r)
		switch q.Qtype {
		case dns.TypeA:
			m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
				A: net.ParseIP("192.0.2.1")})
		case dns.TypeAAAA:
			m.Answer = append(m.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 60},
				AAAA: net.ParseIP("2001:db8::1")})
		}
		_ = w.WriteMsg(m)
	})
	srv, err := dnssrv.Listen(ctx, "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// TestSlowServerAnswered: a server slower than the first try's wait still gets its
// answers recorded, because earlier tries stay open; every question of the batch gets
// its own answer, and a question that is never answered is a timeout (not "no data").
func TestSlowServerAnswered(t *testing.T) {
	srv := slowServer(t, 250*time.Millisecond, map[string]bool{"lost.test.": true})
	c := newTestClient(t, srv.Addr(), 100*time.Millisecond, 2) // waits 100, 200, 400 ms
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hs, err := c.Hosts(ctx, []HostQuery{{Name: "a.test"}, {Name: "b.test"}, {Name: "lost.test"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs[:2] {
		if h.Status != result.StatusOK || len(h.V4) != 1 || len(h.V6) != 1 || h.AStatus != result.StatusOK || h.AAAAStatus != result.StatusOK {
			t.Errorf("%s: got %+v, want one IPv4 and one IPv6 address, both lookups ok", h.Name, h)
		}
		if !h.IPv6Known() {
			t.Errorf("%s: IPv6 should be known", h.Name)
		}
	}
	lost := hs[2]
	if lost.AAAAStatus != result.StatusTimeout || lost.Status != result.StatusOK || len(lost.V4) != 1 || lost.IPv6Known() {
		t.Errorf("lost.test: got %+v (IPv6 known %v), want its A, AAAA status timeout and IPv6 unknown", lost, lost.IPv6Known())
	}
	// Each answered question takes two tries (its answer comes during the second
	// wait; three on a loaded machine), the lost AAAA all three.
	if got := c.Queries(); got < 5*2+3 || got > 6*3 {
		t.Errorf("sent %d queries, want 13 to 18", got)
	}
}
