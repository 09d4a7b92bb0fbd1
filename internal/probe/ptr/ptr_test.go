package ptr_test

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/probe/ptr"
	"github.com/v6matrix/v6matrix/internal/resolve"
)

// newProber returns a ptr.Prober whose queries go through a resolve.Client of the given
// resolvers, each try waiting timeout (twice as long for the next), tries in all.
func newProber(t *testing.T, timeout time.Duration, tries int, servers ...string) (*ptr.Prober, *resolve.Client) {
	t.Helper()
	cfg := resolve.DefaultConfig()
	for _, s := range servers {
		cfg.Servers = append(cfg.Servers, netip.MustParseAddrPort(s))
	}
	cfg.Timeout, cfg.Retries = timeout, tries-1
	c, err := resolve.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &ptr.Prober{Client: c}, c
}

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
	answer := func(target string) dns.RR {
		return &dns.PTR{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 60}, Ptr: target}
	}
	switch q.Name {
	case "1.2.0.192.in-addr.arpa.":
		m.Answer = append(m.Answer, answer("host.example.net."))
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
			m.Answer = append(m.Answer, answer(n))
		}
	case "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.":
		m.Answer = append(m.Answer, answer("v6b.example.net."), answer("v6a.example.net."))
	default:
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

func TestProbe(t *testing.T) {
	resolver := startServer(t, zone)
	tests := []struct {
		addr string
		want ptr.Result
	}{
		{"192.0.2.1", ptr.Result{Names: []string{"host.example.net"}, Status: ptr.StatusOK, Rcode: "NOERROR"}},
		{"2001:db8::1", ptr.Result{Names: []string{"v6a.example.net", "v6b.example.net"}, Status: ptr.StatusOK, Rcode: "NOERROR"}},
		{"192.0.2.2", ptr.Result{Status: ptr.StatusServFail, Rcode: "SERVFAIL"}},
		{"192.0.2.3", ptr.Result{Status: ptr.StatusRefused, Rcode: "REFUSED"}},
		{"192.0.2.4", ptr.Result{Status: ptr.StatusOK, Rcode: "NOERROR"}},
		{"192.0.2.5", ptr.Result{Names: []string{"a.example", "b.example", "c.example"}, Status: ptr.StatusOK, Rcode: "NOERROR"}},
		{"192.0.2.9", ptr.Result{Status: ptr.StatusNXDomain, Rcode: "NXDOMAIN"}},
	}
	p, _ := newProber(t, time.Second, 2, resolver)
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			got, err := p.Probe(t.Context(), netip.MustParseAddr(tc.addr))
			if err != nil {
				t.Fatal(err)
			}
			if got.RTTMillis == nil {
				t.Error("RTTMillis not set on an answer")
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(ptr.Result{}, "RTTMillis")); diff != "" {
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
	p, _ := newProber(t, 200*time.Millisecond, 2, silent.LocalAddr().String())
	got, err := p.Probe(t.Context(), netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(ptr.Result{Status: ptr.StatusTimeout}, got); diff != "" {
		t.Errorf("silent resolver (-want +got):\n%s", diff)
	}
	for _, tc := range []struct {
		name string
		p    *ptr.Prober
		ctx  func() context.Context
	}{
		{"no resolver", &ptr.Prober{}, t.Context},
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

// TestThroughClient checks that the queries take the client's resolvers in turn and are
// counted with its other queries.
func TestThroughClient(t *testing.T) {
	var seen [2]atomic.Int32
	count := func(i int) dns.HandlerFunc {
		return func(w dns.ResponseWriter, r *dns.Msg) { seen[i].Add(1); zone(w, r) }
	}
	p, c := newProber(t, time.Second, 2, startServer(t, count(0)), startServer(t, count(1)))
	for range 4 {
		got, err := p.Probe(t.Context(), netip.MustParseAddr("192.0.2.1"))
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != ptr.StatusOK || len(got.Names) != 1 {
			t.Fatalf("Probe = %+v, want one name", got)
		}
	}
	if seen[0].Load() != 2 || seen[1].Load() != 2 {
		t.Errorf("resolvers saw %d and %d queries, want 2 each", seen[0].Load(), seen[1].Load())
	}
	if c.Queries() != 4 {
		t.Errorf("client counted %d queries, want 4", c.Queries())
	}
}
