package resolve

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/result"
)

// busyWait is how long a try waits for a free slot when the client has MaxInFlight
// tries in flight.
const busyWait = 5 * time.Millisecond

// Question is one query of a batch.
type Question struct {
	Name string
	Type uint16
}

// try states of one question of a batch.
type question struct {
	msg         *dns.Msg
	tries       int       // sent so far
	outstanding int       // sent and neither answered nor failed
	next        time.Time // when the next try is due (or, after the last, when to give up)
	wait        time.Duration
	done        bool
	lastErr     error
}

// QueryAll asks every question at once, with recursion desired, and returns the
// answers in order. A question's first try waits Timeout; when it has no answer by
// then, the next try goes to the next resolver and waits twice as long, and so on for
// Retries further tries. Earlier tries stay open: whichever answer comes first is
// taken, so an answer that arrives after its own try's wait still counts (a resolver
// that needs 3.5 s to reach a slow server is answered in 3.5 s, not after the sum of
// the waits). A question without an answer when its last wait ends is a timeout. A
// truncated UDP answer is asked again over TCP.
//
// The questions share one timer and one channel, so overlapping a domain's
// independent queries costs no goroutine. The error is non-nil only when a query
// could not be sent at all (a local failure) or ctx ended.
func (c *Client) QueryAll(ctx context.Context, qs []Question) ([]Answer, error) {
	out := make([]Answer, len(qs))
	if len(qs) == 0 {
		return out, nil
	}
	tries := c.cfg.Retries + 1
	replies := make(chan reply, len(qs)*tries)
	var sent []pending
	var srv []*udpServer
	trySrv := make([]int, len(qs)*tries) // the resolver of each try
	tryAt := make([]time.Time, len(qs)*tries)
	flying := 0 // this batch's tries counted in c.flying
	defer func() {
		for i, p := range sent {
			srv[i].release(p)
		}
		c.flying.Add(int64(-flying))
	}()
	state := make([]question, len(qs))
	now := time.Now()
	for i, q := range qs {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(q.Name), q.Type)
		if c.cfg.UDPSize > 0 {
			m.SetEdns0(c.cfg.UDPSize, false)
		}
		state[i] = question{msg: m, next: now, wait: c.cfg.Timeout}
	}
	// sendDue sends the tries that are due and gives up on questions whose last wait
	// ended; it returns the time of the next event.
	sendDue := func(now time.Time) (time.Time, error) {
		var next time.Time
		for i := range state {
			st := &state[i]
			if st.done {
				continue
			}
			if !now.Before(st.next) && st.tries < tries && c.cfg.MaxInFlight > 0 && c.flying.Load() >= int64(c.cfg.MaxInFlight) {
				st.next = now.Add(busyWait) // the client is saturated: look again shortly
			} else if !now.Before(st.next) {
				if st.tries == tries {
					if st.lastErr != nil && !isNetError(st.lastErr) {
						return next, fmt.Errorf("query %s %s: %w", qs[i].Name, dns.TypeToString[qs[i].Type], st.lastErr)
					}
					st.done = true
					out[i] = Answer{Status: result.StatusTimeout}
					continue
				}
				// Each try needs its own message: the id is set per send.
				m := st.msg.Copy()
				si := int(c.next.Add(1)-1) % len(c.udp)
				trySrv[i*tries+st.tries] = si
				tryAt[i*tries+st.tries] = now
				p, err := c.udp[si].send(m, replies, i*tries+st.tries, &c.queries)
				st.tries++
				st.next = now.Add(st.wait)
				st.wait *= 2
				if err != nil {
					st.lastErr = err
					if st.outstanding == 0 {
						st.next = now // nothing to wait for: try the next server at once
					}
				} else {
					st.outstanding++
					flying++
					c.flying.Add(1)
					sent, srv = append(sent, p), append(srv, c.udp[si])
				}
			}
			if next.IsZero() || st.next.Before(next) {
				next = st.next
			}
		}
		return next, nil
	}
	left := len(qs)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for left > 0 {
		next, err := sendDue(time.Now())
		if err != nil {
			return nil, err
		}
		left = 0
		for i := range state {
			if !state[i].done {
				left++
			}
		}
		if left == 0 {
			break
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
		case r := <-replies:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			i := r.tag / tries
			st := &state[i]
			if st.done {
				continue
			}
			st.outstanding--
			flying--
			c.flying.Add(-1)
			m, err := r.m, r.err
			sent := tryAt[r.tag]
			if err == nil && m.Truncated {
				tq := st.msg.Copy()
				tq.Id = dns.Id()
				sent = time.Now()
				m, err = c.exchangeTCP(ctx, trySrv[r.tag], tq)
			}
			if err == nil {
				st.done = true
				out[i] = Answer{Status: rcodeStatus(m), Msg: m, RTT: time.Since(sent)}
				continue
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// A refused socket or a broken server: try the next one now.
			st.lastErr = err
			if st.outstanding == 0 && st.tries < tries {
				st.next = time.Now()
			} else if st.outstanding == 0 {
				st.next = time.Now() // the last try failed: give up now
			}
		}
	}
	return out, nil
}
