package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// WrongName is the only name in the certificate of servers configured with cert "wrongname".
const WrongName = "wrong-name.lab.invalid"

// labCA is the lab's certificate authority, made at start; it signs leaf certificates on
// demand for the name a client asks for (SNI).
type labCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte

	mu    sync.Mutex
	cache map[string]*tls.Certificate // mode + "|" + name
}

func newLabCA() (*labCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("lab CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "v6matrix lab CA", Organization: []string{"v6matrix lab"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("lab CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("lab CA certificate: %w", err)
	}
	return &labCA{cert: cert, key: key, cache: map[string]*tls.Certificate{},
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// leaf returns a certificate for name in the given mode: "valid" (for name, valid now),
// "expired" (for name, expired a year ago) or "wrongname" (for WrongName only).
func (ca *labCA) leaf(mode, name string) (*tls.Certificate, error) {
	if mode == "wrongname" {
		name = WrongName
	}
	if name == "" {
		name = "lab.invalid"
	}
	key := mode + "|" + name
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c, ok := ca.cache[key]; ok {
		return c, nil
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("leaf key: %w", err)
	}
	now := time.Now()
	notBefore, notAfter := now.Add(-time.Hour), now.AddDate(0, 3, 0)
	if mode == "expired" {
		notBefore, notAfter = now.AddDate(-2, 0, 0), now.AddDate(-1, 0, 0)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("leaf serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &priv.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("leaf certificate %s: %w", name, err)
	}
	c := &tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: priv}
	ca.cache[key] = c
	return c, nil
}

// tlsConfig returns a server configuration issuing mode certificates for the SNI name, or
// for fallback when the client sends none.
func (ca *labCA) tlsConfig(mode, fallback string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
			name := hello.ServerName
			if name == "" {
				name = fallback
			}
			return ca.leaf(mode, name)
		},
	}
}

// CAPEM returns the lab CA certificate in PEM form: from the servers of this process,
// or, for a lab attached to (servers in the daemon), from the state directory where
// the daemon wrote it. Nil when the servers have not started.
func (l *Lab) CAPEM() []byte {
	if l.srv != nil && l.srv.ca != nil {
		return append([]byte(nil), l.srv.ca.certPEM...)
	}
	b, err := os.ReadFile(filepath.Join(l.cfg.StateDir, "ca.pem"))
	if err != nil {
		return nil
	}
	return b
}
