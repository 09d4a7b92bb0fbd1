package probe

import (
	"context"
	"time"

	"github.com/miekg/dns"
)

// Exchange is dns.Client.ExchangeContext that also stops waiting when ctx is
// cancelled: miekg/dns honours only the context's deadline while it reads, so a
// cancelled crawl would otherwise wait out the query's timeout.
func Exchange(ctx context.Context, c *dns.Client, m *dns.Msg, server string) (*dns.Msg, time.Duration, error) {
	conn, err := c.DialContext(ctx, server)
	if err != nil {
		return nil, 0, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	return c.ExchangeWithConnContext(ctx, m, conn)
}
