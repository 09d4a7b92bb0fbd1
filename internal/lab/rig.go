package lab

import (
	"crypto/tls"
	"net"
	"net/http"
)

// The lab's servers for other rigs built on its namespaces (internal/synthnet), which serve
// many addresses with one wildcard listener each instead of a scenario's services.

// ServerTLS returns a server configuration with one certificate for name, signed by a
// CA made for the call, and that CA in PEM form (for a client's roots).
func ServerTLS(name string) (*tls.Config, []byte, error) {
	ca, err := newLabCA()
	if err != nil {
		return nil, nil, err
	}
	leaf, err := ca.leaf("valid", name)
	if err != nil {
		return nil, nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*leaf}}, ca.certPEM, nil
}

// ServeSMTP answers ln's connections as the lab's SMTP servers do (greeting as name,
// EHLO, STARTTLS with conf) until ln is closed.
func ServeSMTP(ln net.Listener, name string, conf *tls.Config) {
	acceptLoop(ln, func(c net.Conn) { serveSMTP(c, name, conf) })
}

// HTTPHandler answers every request with a short text naming the host and local address.
func HTTPHandler() http.Handler { return httpHandler(0) }
