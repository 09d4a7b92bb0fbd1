package tlsprobe

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/smtp"
)

// ProbeSTARTTLS connects to the SMTP server at addr:port, reads the banner, says EHLO with
// EHLOName, and when STARTTLS is offered upgrades the connection with SNI serverName (the
// MX host name, which the certificate must match), says EHLO again over TLS (RFC 3207) and
// QUIT. A server that does not
// offer STARTTLS, or rejects it, has Version "none".
func (p *Prober) ProbeSTARTTLS(ctx context.Context, addr netip.Addr, port uint16, serverName string) (Result, error) {
	if p.EHLOName == "" {
		return Result{}, errors.New("starttls: no EHLO name configured")
	}
	return p.run(ctx, addr, port, serverName, func(conn net.Conn, res *Result) {
		res.Version = VersionNone
		c, err := smtp.NewClient(conn, serverName) // reads the 220 banner
		if err != nil {
			res.HandshakeError = "smtp banner: " + err.Error()
			return
		}
		defer c.Close()
		if err := c.Hello(p.EHLOName); err != nil {
			res.HandshakeError = "smtp: " + err.Error()
			return
		}
		offered, _ := c.Extension("STARTTLS") // sends EHLO
		res.StartTLSOffered = &offered
		if !offered {
			c.Quit()
			return
		}
		if err := c.StartTLS(p.tlsConfig(serverName)); err != nil {
			res.HandshakeError = "starttls: " + err.Error()
			return
		}
		if st, ok := c.TLSConnectionState(); ok {
			p.record(res, st, serverName)
		}
		c.Quit()
	})
}
