package lab

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"time"
)

// smtpMaxCommands bounds one SMTP session.
const smtpMaxCommands = 50

// serveSMTP speaks just enough ESMTP for probes: greeting, EHLO/HELO with STARTTLS offered,
// STARTTLS, NOOP, RSET, QUIT. Mail itself is refused.
func serveSMTP(c net.Conn, name string, tlsConf *tls.Config) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	var conn net.Conn = c
	rd := bufio.NewReader(conn)
	say := func(format string, a ...any) bool {
		_, err := fmt.Fprintf(conn, format+"\r\n", a...)
		return err == nil
	}
	if !say("220 %s ESMTP v6matrix lab", name) {
		return
	}
	secure := false
	for range smtpMaxCommands {
		line, err := rd.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.TrimSpace(line))
		if i := strings.IndexByte(verb, ' '); i >= 0 {
			verb = verb[:i]
		}
		switch verb {
		case "EHLO":
			if !secure {
				say("250-%s", name)
				say("250-PIPELINING")
				say("250 STARTTLS")
			} else {
				say("250-%s", name)
				say("250 PIPELINING")
			}
		case "HELO":
			say("250 %s", name)
		case "STARTTLS":
			if secure {
				say("503 5.5.1 TLS already active")
				continue
			}
			if !say("220 2.0.0 Ready to start TLS") {
				return
			}
			tc := tls.Server(c, tlsConf)
			if err := tc.Handshake(); err != nil {
				return
			}
			conn, rd, secure = tc, bufio.NewReader(tc), true
		case "NOOP", "RSET":
			say("250 2.0.0 OK")
		case "QUIT":
			say("221 2.0.0 Bye")
			return
		default:
			say("502 5.5.2 not in the lab")
		}
	}
	say("421 4.7.0 too many commands")
}
