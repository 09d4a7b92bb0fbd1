// Package tlsprobe measures TLS on a server address: direct TLS (port 443 of www hosts,
// with SNI = the host name) and SMTP STARTTLS (port 25 of mx hosts: banner, EHLO with the
// crawler's name, STARTTLS, handshake, QUIT). It records whether the TCP connection opened,
// the negotiated version and cipher suite, and whether the certificate chain verifies
// against the configured roots for the host name, with its expiry. The handshake itself
// skips verification so that an invalid certificate is still measured; the chain is then
// verified separately.
package tlsprobe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/v6matrix/v6matrix/internal/probe"
)

// DefaultTimeout bounds a whole probe: connect, SMTP dialogue and handshake.
const DefaultTimeout = 10 * time.Second

// VersionNone is the Version of a reachable server with which no TLS session was set up.
const VersionNone = "none"

// Result is the outcome of one TLS or STARTTLS probe.
type Result struct {
	// Port is the destination port (443, 25, ...).
	Port uint16
	// Reachable is true when the TCP connection opened. When false, nothing else was
	// measured: Version is empty and ConnectError says why.
	Reachable bool
	// ConnectError is the connect failure of an unreachable server.
	ConnectError string
	// StartTLSOffered is, for STARTTLS probes only, whether the EHLO reply listed
	// STARTTLS; nil for direct TLS or when the SMTP dialogue failed before EHLO.
	StartTLSOffered *bool
	// Version is "TLS1.3", "TLS1.2", "TLS1.1", "TLS1.0", or "none" when the server was
	// reachable but no TLS session was set up.
	Version string
	// Cipher is the negotiated cipher suite's IANA name; empty without a session.
	Cipher string
	// HandshakeError says why no session was set up (or why the SMTP dialogue failed).
	HandshakeError string
	// CertValid is whether the chain verified against the roots and the name matched;
	// nil without a certificate.
	CertValid *bool
	// CertExpiry is the leaf certificate's NotAfter; nil without a certificate.
	CertExpiry *time.Time
	// VerifyError says why verification failed; empty when CertValid is true.
	VerifyError string
	// ServerName is the name sent (SNI) and verified for CertValid: the host of the
	// best-ranked domain using the address. ChainValid is whether the chain verified
	// against the roots, whatever the name, and CertNames are the leaf's DNS names, so
	// that the certificate can be judged for the address's other host names (ValidFor).
	// Empty in measurements made before they were recorded.
	ServerName string   `json:",omitempty"`
	ChainValid *bool    `json:",omitempty"`
	CertNames  []string `json:",omitempty"`
}

// ValidFor reports whether the certificate is valid for host, one of the names the
// address serves: CertValid for the name it was probed with (or when the measurement
// predates ServerName); for another name the leaf's names cover, whether the chain
// verified; nil (not measured) for a name they do not cover, since a server may choose
// its certificate by the name asked, and it was asked another. Nil without a
// certificate.
func (r *Result) ValidFor(host string) *bool {
	host = strings.TrimSuffix(host, ".")
	if r.CertValid == nil || r.ChainValid == nil || r.ServerName == "" || strings.EqualFold(host, r.ServerName) {
		return r.CertValid
	}
	if (&x509.Certificate{DNSNames: r.CertNames}).VerifyHostname(host) != nil {
		return nil
	}
	return r.ChainValid
}

// Dialer opens connections; *net.Dialer implements it.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Prober runs TLS and STARTTLS probes. EHLOName must be set for STARTTLS.
type Prober struct {
	// Roots verify the chain (nil: the system roots).
	Roots *x509.CertPool
	// EHLOName is the crawler's host name given in SMTP EHLO (probe.Identity.EHLOName).
	EHLOName string
	// Timeout bounds a whole probe (default DefaultTimeout).
	Timeout time.Duration
	// Dialer opens the TCP connection (default a *net.Dialer).
	Dialer Dialer
	// Now is the clock for certificate validity (default time.Now).
	Now func() time.Time
}

// ProbeTLS connects to addr:port and performs a TLS handshake with SNI serverName, which
// is also the name the certificate must match. An error means the probe could not run
// (invalid input, ctx ended, a local error); a failed connect or handshake is a Result.
func (p *Prober) ProbeTLS(ctx context.Context, addr netip.Addr, port uint16, serverName string) (Result, error) {
	return p.run(ctx, addr, port, serverName, func(conn net.Conn, res *Result) {
		tc := tls.Client(conn, p.tlsConfig(serverName))
		if err := tc.HandshakeContext(ctx); err != nil {
			res.Version, res.HandshakeError = VersionNone, err.Error()
			return
		}
		p.record(res, tc.ConnectionState(), serverName)
		tc.Close()
	})
}

// run dials, bounds the connection by the timeout and ctx, and hands it to measure.
func (p *Prober) run(ctx context.Context, addr netip.Addr, port uint16, serverName string, measure func(net.Conn, *Result)) (Result, error) {
	network, err := probe.Network("tcp", addr)
	if err != nil {
		return Result{}, fmt.Errorf("tls: %w", err)
	}
	if serverName == "" {
		return Result{}, errors.New("tls: empty server name")
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	var d Dialer = &net.Dialer{}
	if p.Dialer != nil {
		d = p.Dialer
	}
	target := probe.HostPort(addr, port)
	res := Result{Port: port}
	conn, err := d.DialContext(ctx, network, target)
	if err := probe.ContextDone(parent); err != nil {
		return Result{}, fmt.Errorf("tls %s: %w", target, err)
	}
	if err != nil {
		res.ConnectError = probe.ErrnoText(err)
		if errors.Is(err, context.DeadlineExceeded) || probe.IsTimeout(err) {
			res.ConnectError = "timeout"
		}
		return res, nil
	}
	defer conn.Close()
	res.Reachable = true
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return Result{}, fmt.Errorf("tls %s: %w", target, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	measure(conn, &res)
	if err := probe.ContextDone(parent); err != nil {
		return Result{}, fmt.Errorf("tls %s: %w", target, err)
	}
	return res, nil
}

// tlsConfig is the handshake configuration: verification is done by record, afterwards.
func (p *Prober) tlsConfig(serverName string) *tls.Config {
	return &tls.Config{
		ServerName:         serverName,
		InsecureSkipVerify: true, // verified in record, so that bad certificates are measured
		MinVersion:         tls.VersionTLS10,
		Time:               p.Now,
	}
}

// record fills res from an established session and verifies its certificate chain.
func (p *Prober) record(res *Result, st tls.ConnectionState, serverName string) {
	res.Version = versionName(st.Version)
	res.Cipher = tls.CipherSuiteName(st.CipherSuite)
	if len(st.PeerCertificates) == 0 {
		return
	}
	leaf := st.PeerCertificates[0]
	expiry := leaf.NotAfter
	res.CertExpiry = &expiry
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	// The chain, then the name (as Verify with DNSName does, whose name error comes
	// first), so that the chain's verdict serves the address's other host names.
	_, chainErr := leaf.Verify(x509.VerifyOptions{Roots: p.Roots, Intermediates: inter, CurrentTime: now()})
	var err error
	if serverName != "" {
		err = leaf.VerifyHostname(serverName)
	}
	if err == nil {
		err = chainErr
	}
	chain, valid := chainErr == nil, err == nil
	res.CertValid, res.ChainValid = &valid, &chain
	res.ServerName, res.CertNames = serverName, slices.Clone(leaf.DNSNames)
	if err != nil {
		res.VerifyError = err.Error()
	}
}

// versionName spells a TLS version as RECORDS.md does ("TLS1.3").
func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLS1.3"
	case tls.VersionTLS12:
		return "TLS1.2"
	case tls.VersionTLS11:
		return "TLS1.1"
	case tls.VersionTLS10:
		return "TLS1.0"
	case tls.VersionSSL30: //nolint:staticcheck // named only to record it
		return "SSL3.0"
	}
	return fmt.Sprintf("0x%04x", v)
}
