package tlsprobe

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/testcert"
)

// outcome is the comparable part of a Result (expiry times and error texts checked apart).
type outcome struct {
	Reachable       bool
	StartTLSOffered *bool
	Version         string
	HasCipher       bool
	CertValid       *bool
	VerifyErrorHas  string
}

func outcomeOf(r Result, verifyHas string) outcome {
	o := outcome{r.Reachable, r.StartTLSOffered, r.Version, r.Cipher != "", r.CertValid, ""}
	if verifyHas != "" && strings.Contains(r.VerifyError, verifyHas) {
		o.VerifyErrorHas = verifyHas
	}
	return o
}

func TestProbeTLS(t *testing.T) {
	ca := testcert.NewCA(t)
	now := time.Now()
	const host = "www.example.test"
	good := ca.Leaf(t, []string{host}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	expired := ca.Leaf(t, []string{host}, now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	wrong := ca.Leaf(t, []string{"other.example.test"}, now.Add(-time.Hour), now.Add(time.Hour))
	tlsServer := func(cert tls.Certificate, maxVersion uint16) func(net.Conn) {
		return func(c net.Conn) {
			s := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: maxVersion})
			if s.Handshake() == nil {
				s.Read(make([]byte, 1)) // until the client closes
			}
		}
	}
	plain := func(c net.Conn) {
		bufio.NewReader(c).ReadByte()
		c.Write([]byte("HTTP/1.0 400 Bad Request\r\n\r\n"))
	}
	closedLn, _ := net.Listen("tcp4", "127.0.0.1:0")
	closedPort := uint16(closedLn.Addr().(*net.TCPAddr).Port)
	closedLn.Close()

	yes, no := true, false
	tests := []struct {
		name      string
		network   string
		port      uint16
		want      outcome
		verifyHas string
		expiry    *time.Time
	}{
		{"valid v4 TLS1.3", "tcp4", serve(t, "tcp4", tlsServer(good, 0)), outcome{true, nil, "TLS1.3", true, &yes, ""}, "", &good.Leaf.NotAfter},
		{"valid v6 TLS1.2", "tcp6", serve(t, "tcp6", tlsServer(good, tls.VersionTLS12)), outcome{true, nil, "TLS1.2", true, &yes, ""}, "", nil},
		{"expired", "tcp4", serve(t, "tcp4", tlsServer(expired, 0)), outcome{true, nil, "TLS1.3", true, &no, "expired"}, "expired", nil},
		{"wrong name", "tcp4", serve(t, "tcp4", tlsServer(wrong, 0)), outcome{true, nil, "TLS1.3", true, &no, "not www.example.test"}, "not www.example.test", nil},
		{"plain TCP", "tcp4", serve(t, "tcp4", plain), outcome{true, nil, "none", false, nil, ""}, "", nil},
		{"closed port", "tcp4", closedPort, outcome{false, nil, "", false, nil, ""}, "", nil},
	}
	p := &Prober{Roots: ca.Pool, Timeout: 3 * time.Second}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := netip.MustParseAddr("127.0.0.1")
			if tc.network == "tcp6" {
				addr = netip.MustParseAddr("::1")
			}
			r, err := p.ProbeTLS(t.Context(), addr, tc.port, host)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, outcomeOf(r, tc.verifyHas)); diff != "" {
				t.Errorf("(-want +got):\n%s\nresult: %+v", diff, r)
			}
			if r.Port != tc.port {
				t.Errorf("Port = %d, want %d", r.Port, tc.port)
			}
			if tc.want.CertValid != nil && r.CertExpiry == nil {
				t.Error("CertExpiry missing")
			}
			if tc.expiry != nil && (r.CertExpiry == nil || !r.CertExpiry.Equal(*tc.expiry)) {
				t.Errorf("CertExpiry = %v, want %v", r.CertExpiry, *tc.expiry)
			}
		})
	}
	// The certificate of an untrusted CA is measured but invalid.
	other := testcert.NewCA(t)
	p2 := &Prober{Roots: other.Pool, Timeout: 3 * time.Second}
	r, err := p2.ProbeTLS(t.Context(), netip.MustParseAddr("127.0.0.1"), tests[0].port, host)
	if err != nil {
		t.Fatal(err)
	}
	if r.CertValid == nil || *r.CertValid || !strings.Contains(r.VerifyError, "unknown authority") {
		t.Errorf("untrusted CA: %+v", r)
	}
}

// smtpServer is an SMTP server that offers STARTTLS when cert is non-nil, and records the
// EHLO names and commands it was sent.
type smtpServer struct {
	cert *tls.Certificate
	mu   sync.Mutex
	cmds []string
}

func (s *smtpServer) handle(c net.Conn) {
	conn := c
	r := bufio.NewReader(conn)
	write := func(lines ...string) { conn.Write([]byte(strings.Join(lines, "\r\n") + "\r\n")) }
	write("220 mx.example.test ESMTP test")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimRight(line, "\r\n")
		s.mu.Lock()
		s.cmds = append(s.cmds, cmd)
		s.mu.Unlock()
		verb := strings.ToUpper(strings.Fields(cmd + " x")[0])
		switch {
		case verb == "EHLO" && s.cert != nil:
			write("250-mx.example.test", "250-PIPELINING", "250-STARTTLS", "250 8BITMIME")
		case verb == "EHLO":
			write("250-mx.example.test", "250 8BITMIME")
		case verb == "STARTTLS" && s.cert != nil:
			write("220 2.0.0 Ready to start TLS")
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*s.cert}})
			if tc.Handshake() != nil {
				return
			}
			conn, r = tc, bufio.NewReader(tc)
		case verb == "QUIT":
			write("221 2.0.0 Bye")
			return
		default:
			write("502 5.5.2 Command not recognized")
		}
	}
}

func (s *smtpServer) commands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cmds...)
}

func TestProbeSTARTTLS(t *testing.T) {
	ca := testcert.NewCA(t)
	const mx = "mx.example.test"
	cert := ca.Leaf(t, []string{mx}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	yes, no := true, false
	tests := []struct {
		name    string
		network string
		srv     *smtpServer
		want    outcome
		cmds    []string
	}{
		{"STARTTLS v4", "tcp4", &smtpServer{cert: &cert}, outcome{true, &yes, "TLS1.3", true, &yes, ""},
			[]string{"EHLO crawler.example.net", "STARTTLS", "EHLO crawler.example.net", "QUIT"}},
		{"STARTTLS v6", "tcp6", &smtpServer{cert: &cert}, outcome{true, &yes, "TLS1.3", true, &yes, ""},
			[]string{"EHLO crawler.example.net", "STARTTLS", "EHLO crawler.example.net", "QUIT"}},
		{"no STARTTLS", "tcp4", &smtpServer{}, outcome{true, &no, "none", false, nil, ""},
			[]string{"EHLO crawler.example.net", "QUIT"}},
	}
	// After STARTTLS the client says EHLO again, as RFC 3207 §4.2 requires.
	p := &Prober{Roots: ca.Pool, EHLOName: "crawler.example.net", Timeout: 3 * time.Second}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			port := serve(t, tc.network, tc.srv.handle)
			addr := netip.MustParseAddr("127.0.0.1")
			if tc.network == "tcp6" {
				addr = netip.MustParseAddr("::1")
			}
			r, err := p.ProbeSTARTTLS(t.Context(), addr, port, mx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, outcomeOf(r, "")); diff != "" {
				t.Errorf("(-want +got):\n%s\nresult: %+v", diff, r)
			}
			// The server sees QUIT before it can be compared; give it a moment to log it.
			deadline := time.Now().Add(time.Second)
			for len(tc.srv.commands()) < len(tc.cmds) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if diff := cmp.Diff(tc.cmds, tc.srv.commands()); diff != "" {
				t.Errorf("SMTP dialogue (-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	p := &Prober{Timeout: time.Second}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	lo := netip.MustParseAddr("127.0.0.1")
	tests := []struct {
		name string
		run  func() (Result, error)
	}{
		{"zero address", func() (Result, error) { return p.ProbeTLS(t.Context(), netip.Addr{}, 443, "a.example") }},
		{"no server name", func() (Result, error) { return p.ProbeTLS(t.Context(), lo, 443, "") }},
		{"no EHLO name", func() (Result, error) { return p.ProbeSTARTTLS(t.Context(), lo, 25, "mx.example") }},
		{"cancelled", func() (Result, error) { return p.ProbeTLS(ctx, lo, 443, "a.example") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r, err := tc.run(); err == nil {
				t.Errorf("= %+v, want error", r)
			}
		})
	}
}

// TestValidFor probes a server whose certificate covers www.a.test and *.b.test with
// the name www.a.test, as the crawl probes an address with the host of its best-ranked
// domain: the result judges the certificate for the address's other host names too
// (the chain's verdict where the leaf's names cover the name; not measured where they
// do not, since the server was asked another name), so that a host on the same address
// is not reported valid, or invalid, on another host's probe.
func TestValidFor(t *testing.T) {
	ca := testcert.NewCA(t)
	now := time.Now()
	leaf := ca.Leaf(t, []string{"www.a.test", "*.b.test"}, now.Add(-time.Hour), now.Add(time.Hour))
	port := serve(t, "tcp4", func(c net.Conn) {
		s := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{leaf}})
		if s.Handshake() == nil {
			s.Read(make([]byte, 1))
		}
	})
	addr := netip.MustParseAddr("127.0.0.1")
	yes, no := true, false
	for _, tc := range []struct {
		roots *x509.CertPool
		want  map[string]*bool // nil: not measured (the server was asked another name)
	}{
		{ca.Pool, map[string]*bool{"www.a.test": &yes, "WWW.A.TEST.": &yes, "x.b.test": &yes, "www.c.test": nil, "a.test": nil}},
		{testcert.NewCA(t).Pool, map[string]*bool{"www.a.test": &no, "x.b.test": &no, "www.c.test": nil}},
	} {
		r, err := (&Prober{Roots: tc.roots, Timeout: 3 * time.Second}).ProbeTLS(t.Context(), addr, port, "www.a.test")
		if err != nil {
			t.Fatal(err)
		}
		if r.ServerName != "www.a.test" || r.ChainValid == nil || !slices.Equal(r.CertNames, []string{"www.a.test", "*.b.test"}) {
			t.Errorf("recorded name %q, chain %v, names %v", r.ServerName, r.ChainValid, r.CertNames)
		}
		for host, want := range tc.want {
			if got := r.ValidFor(host); (got == nil) != (want == nil) || got != nil && *got != *want {
				t.Errorf("ValidFor(%q) = %s, want %s (result %+v)", host, ptrStr(got), ptrStr(want), r)
			}
		}
	}
	// A measurement from before ServerName was recorded keeps its one verdict.
	old := Result{CertValid: &yes}
	if got := old.ValidFor("www.c.test"); got == nil || !*got {
		t.Errorf("an older measurement's ValidFor = %v, want its CertValid", got)
	}
}

func ptrStr(p *bool) string {
	if p == nil {
		return "nil"
	}
	return fmt.Sprint(*p)
}
