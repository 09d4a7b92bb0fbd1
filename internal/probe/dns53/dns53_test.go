package dns53

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/probe/netnstest"
)

// serve runs a UDP miekg/dns server on loopback address host with handler and returns its
// port.
func serve(t *testing.T, host string, port uint16, handler dns.HandlerFunc) uint16 {
	t.Helper()
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(netip.MustParseAddr(host), port).String())
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: handler}
	started := make(chan struct{})
	srv.NotifyStartedFunc = func() { close(started) }
	go srv.ActivateAndServe()
	<-started
	t.Cleanup(func() { srv.Shutdown() })
	return uint16(pc.LocalAddr().(*net.UDPAddr).Port)
}

// server answers like an authoritative server of example.org (AA, SOA), a lame one (no
// AA, a referral), or with an error code.
func server(aa bool, rcode int) dns.HandlerFunc {
	return func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetRcode(r, rcode)
		m.Authoritative = aa
		if rcode == dns.RcodeSuccess && aa {
			m.Answer = append(m.Answer, &dns.SOA{
				Hdr: dns.RR_Header{Name: "example.org.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 60},
				Ns:  "ns1.example.org.", Mbox: "hostmaster.example.org.", Serial: 2024010101,
				Refresh: 3600, Retry: 600, Expire: 86400, Minttl: 300,
			})
		} else if rcode == dns.RcodeSuccess {
			m.Ns = append(m.Ns, &dns.NS{
				Hdr: dns.RR_Header{Name: "org.", Rrtype: dns.TypeNS, Class: dns.ClassINET, Ttl: 60},
				Ns:  "a0.org.example.",
			})
		}
		w.WriteMsg(m)
	}
}

type outcome struct {
	Status    Status
	Rcode     string
	AA        *bool
	SOASerial *uint32
	HasRTT    bool
	Detail    string
}

func outcomeOf(r Result) outcome {
	return outcome{r.Status, r.Rcode, r.Authoritative, r.SOASerial, r.RTTMillis != nil, r.Detail}
}

func TestLoopback(t *testing.T) {
	yes, no := true, false
	serial := uint32(2024010101)
	// Every server listens on the same port of its own loopback address, as Port is one
	// setting of the Prober.
	port := serve(t, "127.0.0.1", 0, server(true, dns.RcodeSuccess))
	serve(t, "::1", port, server(true, dns.RcodeSuccess))
	serve(t, "127.0.0.2", port, server(false, dns.RcodeSuccess))
	serve(t, "127.0.0.3", port, server(false, dns.RcodeRefused))
	serve(t, "127.0.0.4", port, server(false, dns.RcodeServerFailure))
	serve(t, "127.0.0.5", port, server(true, dns.RcodeNameError))
	silent, err := net.ListenPacket("udp", netip.AddrPortFrom(netip.MustParseAddr("127.0.0.6"), port).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })
	tests := []struct {
		name string
		addr string
		want outcome
	}{
		{"authoritative v4", "127.0.0.1", outcome{StatusAuthoritative, "NOERROR", &yes, &serial, true, ""}},
		{"authoritative v6", "::1", outcome{StatusAuthoritative, "NOERROR", &yes, &serial, true, ""}},
		{"lame", "127.0.0.2", outcome{StatusAnswered, "NOERROR", &no, nil, true, ""}},
		{"refused", "127.0.0.3", outcome{StatusRefused, "REFUSED", &no, nil, true, ""}},
		{"servfail", "127.0.0.4", outcome{StatusServFail, "SERVFAIL", &no, nil, true, ""}},
		{"nxdomain with AA", "127.0.0.5", outcome{StatusAnswered, "NXDOMAIN", &yes, nil, true, ""}},
		{"timeout", "127.0.0.6", outcome{Status: StatusTimeout}},
		{"port unreachable", "127.0.0.7", outcome{Status: StatusUnreachable, Detail: "connection refused"}},
	}
	p := &Prober{Port: port, Timeout: 300 * time.Millisecond, Attempts: 2}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := p.Probe(t.Context(), netip.MustParseAddr(tc.addr), "example.org")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, outcomeOf(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestNamespace(t *testing.T) {
	n := netnstest.New(t)
	tests := []struct {
		name string
		addr netip.Addr
		want outcome
	}{
		{"router port unreachable v6", netnstest.Router6, outcome{Status: StatusUnreachable, Detail: "connection refused"}},
		{"dropped v4", netnstest.Drop4, outcome{Status: StatusTimeout}},
		{"dropped v6", netnstest.Drop6, outcome{Status: StatusTimeout}},
		{"host unreachable v4", netnstest.Unreachable4, outcome{Status: StatusUnreachable, Detail: "no route to host"}},
		{"no route v6", netnstest.Unreachable6, outcome{Status: StatusUnreachable, Detail: "network is unreachable"}},
	}
	p := &Prober{Timeout: 300 * time.Millisecond, Attempts: 1}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got Result
			var err error
			n.InClient(t, func() { got, err = p.Probe(context.Background(), tc.addr, "example.org") })
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, outcomeOf(got)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	p := &Prober{Timeout: 100 * time.Millisecond}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name   string
		ctx    context.Context
		addr   netip.Addr
		domain string
	}{
		{"zero address", t.Context(), netip.Addr{}, "example.org"},
		{"bad domain", t.Context(), netip.MustParseAddr("127.0.0.1"), "exa mple..org"},
		{"cancelled", ctx, netip.MustParseAddr("127.0.0.1"), "example.org"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r, err := p.Probe(tc.ctx, tc.addr, tc.domain); err == nil {
				t.Errorf("Probe = %+v, want error", r)
			}
		})
	}
}
