package dnssrv

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/miekg/dns"
)

// ErrExited is returned by WaitReady when the server process ended first.
var ErrExited = errors.New("server exited")

// WaitReady asks zone's SOA through exchange every 100 ms until the answer is NOERROR
// (a server that loads many zones answers only once it has loaded them). It gives up when
// a value arrives on exited (the server process ended: the value is put back, and the
// error wraps ErrExited and it), when ctx ends, or after wait.
func WaitReady(ctx context.Context, zone string, wait time.Duration, exited chan error,
	exchange func(context.Context, *dns.Msg) (*dns.Msg, error)) error {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(zone), dns.TypeSOA)
	deadline := time.Now().Add(wait)
	for {
		if r, err := exchange(ctx, m); err == nil && r.Rcode == dns.RcodeSuccess {
			return nil
		}
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("%w: %v", ErrExited, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to %s SOA after %v", dns.Fqdn(zone), wait)
		}
	}
}
