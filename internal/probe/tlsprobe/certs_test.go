package tlsprobe

import (
	"net"
	"testing"
	"time"
)

// serve accepts connections on a new loopback listener (network "tcp4" or "tcp6") and runs
// handle on each; it returns the port.
func serve(t *testing.T, network string, handle func(net.Conn)) uint16 {
	t.Helper()
	host := "127.0.0.1:0"
	if network == "tcp6" {
		host = "[::1]:0"
	}
	ln, err := net.Listen(network, host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				handle(c)
			}()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}
