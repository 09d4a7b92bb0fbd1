package probe

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// TestExchangeCancel: a query to a server that never answers ends when ctx is
// cancelled, not when the client's (long) timeout runs out.
func TestExchangeCancel(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() { // reads and never answers
		buf := make([]byte, 512)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	q := new(dns.Msg)
	q.SetQuestion("example.org.", dns.TypeSOA)
	c := &dns.Client{Net: "udp", Timeout: time.Minute}
	start := time.Now()
	_, _, err = Exchange(ctx, c, q, pc.LocalAddr().String())
	if err == nil {
		t.Fatal("Exchange to a silent server returned no error")
	}
	if waited := time.Since(start); waited > 30*time.Second {
		t.Errorf("Exchange returned %v after the cancel, want at once (the timeout is a minute)", waited)
	}
}
