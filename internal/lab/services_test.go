package lab

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dialVantage connects from inside the vantage to an address literal (the dial happens on
// the calling goroutine, which RunInVantage keeps in the vantage namespace).
func dialVantage(l *Lab, network string, ap netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := l.RunInVantage(func() (err error) {
		c, err = net.DialTimeout(network, ap.String(), timeout)
		return err
	})
	return c, err
}

func TestTLSFromVantage(t *testing.T) {
	t.Parallel()
	l := labForTest(t)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(l.CAPEM()) {
		t.Fatal("lab CA does not parse")
	}
	tests := []struct {
		name    string
		addr    string
		sni     string
		wantErr string // "" = verified handshake
	}{
		{"valid IPv4", "198.51.100.80:443", "www.alpha.uk", ""},
		{"valid IPv6", "[2001:db8:a::80]:443", "www.acme.com", ""},
		{"valid on 6to4 address", "[2002:c633:6450::1]:443", "www.sixtofour.net", ""},
		{"expired certificate", "198.51.100.81:443", "www.expired.com", "expired"},
		{"wrong name", "[2001:db8:a::82]:443", "www.wrongname.net", "not " + "www.wrongname.net"},
		{"plain TCP on 443", "198.51.100.83:443", "www.plain443.org", "first record does not look like a TLS handshake"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dialVantage(l, "tcp", netip.MustParseAddrPort(tc.addr), 3*time.Second)
			if err != nil {
				t.Fatalf("dial %s: %v", tc.addr, err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			tc2 := tls.Client(c, &tls.Config{ServerName: tc.sni, RootCAs: pool})
			err = tc2.Handshake()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("handshake with %s: %v", tc.addr, err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("handshake with %s: error %v, want one containing %q", tc.addr, err, tc.wantErr)
			}
		})
	}
}

func TestSMTPAndPort25FromVantage(t *testing.T) {
	t.Parallel()
	l := labForTest(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(l.CAPEM())
	t.Run("STARTTLS on the shared host", func(t *testing.T) {
		c, err := dialVantage(l, "tcp", netip.MustParseAddrPort("[2001:db8:a::80]:25"), 3*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		rd := bufio.NewReader(c)
		expect := func(prefix string) string {
			t.Helper()
			var all string
			for {
				line, err := rd.ReadString('\n')
				if err != nil {
					t.Fatalf("read: %v (after %q)", err, all)
				}
				all += line
				if !strings.HasPrefix(line, prefix) {
					t.Fatalf("got %q, want %s", line, prefix)
				}
				if len(line) > 3 && line[3] == ' ' {
					return all
				}
			}
		}
		expect("220")
		fmt.Fprintf(c, "EHLO vantage\r\n")
		if ehlo := expect("250"); !strings.Contains(ehlo, "STARTTLS") {
			t.Fatalf("EHLO does not offer STARTTLS: %q", ehlo)
		}
		fmt.Fprintf(c, "STARTTLS\r\n")
		expect("220")
		tc := tls.Client(c, &tls.Config{ServerName: "mail.alpha.uk", RootCAs: pool})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("STARTTLS handshake: %v", err)
		}
		if v := tc.ConnectionState().Version; v != tls.VersionTLS13 {
			t.Errorf("TLS version %x, want TLS 1.3", v)
		}
	})
	for _, tc := range []struct {
		name, addr string
		want       string
	}{
		{"closed port answers RST", "198.51.100.83:25", "refused"},
		{"filtered port times out", "[2001:db8:a::90]:25", "timeout"},
		{"unreachable AAAA", "[2001:db8:a::66]:80", "unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dialVantage(l, "tcp", netip.MustParseAddrPort(tc.addr), 2*time.Second)
			if c != nil {
				c.Close()
			}
			var ne net.Error
			got := "open"
			switch {
			case errors.Is(err, syscall.ECONNREFUSED):
				got = "refused"
			case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
				got = "unreachable"
			case errors.As(err, &ne) && ne.Timeout():
				got = "timeout"
			case err != nil:
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("dial %s: %s (%v), want %s", tc.addr, got, err, tc.want)
			}
		})
	}
}

func TestNTPAndHTTPFromVantage(t *testing.T) {
	t.Parallel()
	l := labForTest(t)
	for _, addr := range []string{"198.51.100.80:123", "[2001:db8:b::10]:123"} {
		t.Run("ntp "+addr, func(t *testing.T) {
			c, err := dialVantage(l, "udp", netip.MustParseAddrPort(addr), 2*time.Second)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			req := make([]byte, 48)
			req[0] = 4<<3 | 3 // version 4, client
			binary.BigEndian.PutUint64(req[40:], 0x1122334455667788)
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			if _, err := c.Write(req); err != nil {
				t.Fatalf("write: %v", err)
			}
			resp := make([]byte, 64)
			n, err := c.Read(resp)
			if err != nil || n < 48 {
				t.Fatalf("read: %d bytes, %v", n, err)
			}
			if mode, stratum := resp[0]&7, resp[1]; mode != 4 || stratum != 2 {
				t.Errorf("mode %d stratum %d, want 4 and 2", mode, stratum)
			}
			if origin := binary.BigEndian.Uint64(resp[24:]); origin != 0x1122334455667788 {
				t.Errorf("origin timestamp %x does not echo the request", origin)
			}
		})
	}
	for _, tc := range []struct {
		name, addr string
		wantBody   bool // false: the body stalls (PMTU black hole)
	}{
		{"far host over IPv4", "203.0.113.10:80", true},
		{"far host over IPv6 is a PMTU black hole", "[2001:db8:b::10]:80", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dialVantage(l, "tcp", netip.MustParseAddrPort(tc.addr), 2*time.Second)
			if err != nil {
				t.Fatalf("dial: %v (the handshake should pass)", err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(3 * time.Second))
			fmt.Fprintf(c, "GET / HTTP/1.0\r\nHost: www.far.uk\r\n\r\n")
			b, err := io.ReadAll(c)
			if tc.wantBody && (err != nil || len(b) < 20000) {
				t.Errorf("read %d bytes, %v; want the 20000-byte body", len(b), err)
			}
			var ne net.Error
			if !tc.wantBody && (len(b) >= 20000 || !errors.As(err, &ne) || !ne.Timeout()) {
				t.Errorf("read %d bytes, %v; want a stall (timeout)", len(b), err)
			}
		})
	}
}
