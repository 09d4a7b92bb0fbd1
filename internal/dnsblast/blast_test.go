package dnsblast

import (
	"context"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/dnssrv"
)

const zoneText = `$TTL 300
@     SOA  ns1 hostmaster 1 3600 600 86400 300
@     NS   ns1
@     MX   10 mail
ns1   A    192.0.2.1
mail  A    192.0.2.2
mail  AAAA 2001:db8::2
www   A    192.0.2.3
ntp   A    192.0.2.4
`

// serve serves h on loopback until the test ends.
func serve(t *testing.T, h dns.Handler) *dnssrv.Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := dnssrv.Listen(ctx, "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); s.Close() })
	return s
}

// TestRun checks the query mix and the retries against an authoritative server that
// drops every question about one domain's apex.
func TestRun(t *testing.T) {
	var zones []*dnssrv.Zone
	for _, origin := range []string{"a.test.", "b.test."} {
		z, err := dnssrv.ParseZoneString(origin, zoneText)
		if err != nil {
			t.Fatal(err)
		}
		zones = append(zones, z)
	}
	auth := dnssrv.NewAuth(zones...)
	auth.SetFault("b.test", dnssrv.FaultDrop)
	srv := serve(t, auth)
	cfg := DefaultConfig(srv.Addr())
	cfg.Tries = 3 // the default interval, 500 ms: long enough for a loaded machine
	rep, err := Run(context.Background(), cfg, []string{"a.test", "b.test"})
	if err != nil {
		t.Fatal(err)
	}
	rep.Elapsed = 0
	// a.test: NS, SOA, MX, www A/AAAA, ntp A/AAAA (it exists), time A, and A/AAAA of
	// ns1 and mail: 12. b.test: NS, SOA, MX three times each, then www A/AAAA, ntp A/AAAA
	// and time A: 14.
	want := Report{Domains: 2, Queries: 26, Answers: 17, Timeouts: 3, Hosts: 2}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("report (-want +got):\n%s", diff)
	}
	for _, q := range []struct {
		name  string
		qtype uint16
		n     int
	}{{"b.test", dns.TypeNS, 3}, {"ntp.a.test", dns.TypeAAAA, 1}, {"time.a.test", dns.TypeAAAA, 0},
		{"mail.a.test", dns.TypeAAAA, 1}, {"ntp.b.test", dns.TypeAAAA, 1}, {"b.test", dns.TypeSOA, 3}, {"b.test", dns.TypeMX, 3}, {"www.a.test", dns.TypeA, 1}, {"ns1.a.test", dns.TypeA, 1}} {
		if got := auth.Count(q.name, q.qtype); got != q.n {
			t.Errorf("%s %s asked %d times, want %d", q.name, dns.TypeToString[q.qtype], got, q.n)
		}
	}
	if auth.Total() != int(rep.Queries) {
		t.Errorf("server counted %d queries, report says %d", auth.Total(), rep.Queries)
	}
}

// TestRunSynthetic runs many domains through a small window against the synthetic
// server: every query is answered once and every domain's shared hosts are found.
func TestRunSynthetic(t *testing.T) {
	syn := dnssrv.NewSyntheticServer("test", 2000)
	srv := serve(t, syn)
	var names []string
	for i := 1; i <= 2000; i++ {
		names = append(names, "d"+itoa(i)+".test")
	}
	cfg := DefaultConfig(srv.Addr())
	cfg.Window = 100
	rep, err := Run(context.Background(), cfg, names)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Timeouts != 0 || rep.Answers != rep.Queries || int64(syn.Queries()) != rep.Queries {
		t.Errorf("report %+v, server saw %d queries: want every query answered once", rep, syn.Queries())
	}
	if q := float64(rep.Queries) / 2000; q < 7 || q > 9 || rep.Hosts < 100 {
		t.Errorf("report %+v: %.2f queries per domain, want the crawler's mix (7 to 9) and the shared hosts", rep, q)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
