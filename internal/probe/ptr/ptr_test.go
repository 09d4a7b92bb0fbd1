package ptr

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/miekg/dns"
)

// startServer runs a miekg/dns server on loopback (UDP and TCP on the same port) whose
// answers come from handler; it returns the "ip:port" to query.
func startServer(t *testing.T, handler dns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{{PacketConn: pc, Handler: handler}, {Listener: ln, Handler: handler}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		go srv.ActivateAndServe()
		<-started
		t.Cleanup(func() { srv.Shutdown() })
	}
	return pc.LocalAddr().String()
}

// zone answers PTR queries from a fixed table, with a special name per DNS outcome.
func zone(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	m.RecursionAvailable = true
	q := r.Question[0]
	ptr := func(target string) dns.RR {
		return &dns.PTR{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 60}, Ptr: target}
	}
	switch q.Name {
	case "1.2.0.192.in-addr.arpa.":
		m.Answer = append(m.Answer, ptr("host.example.net."))
	case "2.2.0.192.in-addr.arpa.":
		m.Rcode = dns.RcodeServerFailure
	case "3.2.0.192.in-addr.arpa.":
		m.Rcode = dns.RcodeRefused
	case "4.2.0.192.in-addr.arpa.":
		// NOERROR, no data
	case "5.2.0.192.in-addr.arpa.":
		// Many names: the UDP answer is truncated and must be fetched over TCP.
		if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
			m.Truncated = true
			break
		}
		for _, n := range []string{"c.example.", "a.example.", "b.example."} {
			m.Answer = append(m.Answer, ptr(n))
		}
	case "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.":
		m.Answer = append(m.Answer, ptr("v6b.example.net."), ptr("v6a.example.net."))
	default:
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

func TestProbe(t *testing.T) {
	resolver := startServer(t, zone)
	tests := []struct {
		addr string
		want Result
	}{
		{"192.0.2.1", Result{Names: []string{"host.example.net"}, Status: StatusOK, Rcode: "NOERROR"}},
		{"2001:db8::1", Result{Names: []string{"v6a.example.net", "v6b.example.net"}, Status: StatusOK, Rcode: "NOERROR"}},
		{"192.0.2.2", Result{Status: StatusServFail, Rcode: "SERVFAIL"}},
		{"192.0.2.3", Result{Status: StatusRefused, Rcode: "REFUSED"}},
		{"192.0.2.4", Result{Status: StatusOK, Rcode: "NOERROR"}},
		{"192.0.2.5", Result{Names: []string{"a.example", "b.example", "c.example"}, Status: StatusOK, Rcode: "NOERROR"}},
		{"192.0.2.9", Result{Status: StatusNXDomain, Rcode: "NXDOMAIN"}},
	}
	p := &Prober{Resolver: resolver, Timeout: time.Second}
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			got, err := p.Probe(t.Context(), netip.MustParseAddr(tc.addr))
			if err != nil {
				t.Fatal(err)
			}
			if got.RTTMillis == nil {
				t.Error("RTTMillis not set on an answer")
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(Result{}, "RTTMillis")); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestTimeoutAndErrors(t *testing.T) {
	// A UDP socket that never answers.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	p := &Prober{Resolver: silent.LocalAddr().String(), Timeout: 200 * time.Millisecond, Attempts: 2}
	got, err := p.Probe(t.Context(), netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Result{Status: StatusTimeout}, got); diff != "" {
		t.Errorf("silent resolver (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		name string
		p    *Prober
		ctx  func() context.Context
	}{
		{"no resolver", &Prober{}, t.Context},
		{"cancelled", p, func() context.Context {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			return ctx
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r, err := tc.p.Probe(tc.ctx(), netip.MustParseAddr("192.0.2.1")); err == nil {
				t.Errorf("Probe = %+v, want error", r)
			}
		})
	}
}
