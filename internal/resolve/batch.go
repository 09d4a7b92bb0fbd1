package resolve

import (
	"context"
	"fmt"
	"time"

	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/result"
)

// Question is one query of a batch.
type Question struct {
	Name string
	Type uint16
	// Decides ends the batch when this question's answer is NXDOMAIN, SERVFAIL or
	// REFUSED: the caller then has no use for the other answers (a domain whose NS query
	// failed), so their timeouts are not waited for. They are returned as NotWaited.
	Decides bool
}

// NotWaited is the status of a question whose batch ended on a deciding answer before
// its own answer came.
const NotWaited result.Status = ""

// decisive reports a deciding question's answer that ends its batch.
func decisive(s result.Status) bool {
	return s == result.StatusNXDomain || s == result.StatusServFail || s == result.StatusRefused
}

// try states of one question of a batch.
type question struct {
	q           dns.Question
	wire        []byte    // packed once; each try sets its own id
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
	sent := make([]pending, 0, len(qs)) // most questions need one try
	srv := make([]*udpServer, 0, len(qs))
	trySrv := make([]int, len(qs)*tries)      // the resolver of each try
	tryAt := make([]time.Time, len(qs)*tries) // when each try was sent (Answer.RTT)
	// Slots of c.slots: flying for tries waiting for an answer (holding says which),
	// held taken for the next. A try whose wait has ended hands its slot to the retry
	// that follows it, and an answered or abandoned question gives its tries' slots
	// back at once: otherwise tries whose answers were lost would hold every slot while
	// their retries wait for one, and every batch of the client would stall.
	flying, held := 0, 0
	holding := make([]bool, len(qs)*tries)
	release := func(i int) { // gives back the slots question i's tries hold
		for t := i * tries; t < (i+1)*tries; t++ {
			if holding[t] {
				holding[t] = false
				flying--
				c.putSlots(1)
			}
		}
	}
	defer func() {
		for i, p := range sent {
			srv[i].release(p)
		}
		c.putSlots(flying + held)
	}()
	state := make([]question, len(qs))
	now := time.Now()
	for i, q := range qs {
		wire, err := packQuery(q.Name, q.Type, c.cfg.UDPSize)
		if err != nil {
			return nil, fmt.Errorf("query %s %s: pack: %w", q.Name, dns.TypeToString[q.Type], err)
		}
		state[i] = question{q: dns.Question{Name: dns.Fqdn(q.Name), Qtype: q.Type, Qclass: dns.ClassINET},
			wire: wire, next: now, wait: c.cfg.Timeout}
	}
	// sendDue sends the tries that are due and gives up on questions whose last wait
	// ended; it returns the time of the next event (zero: none) and whether a try waits
	// for a slot of MaxInFlight.
	sendDue := func(now time.Time) (next time.Time, saturated bool, err error) {
		for i := range state {
			st := &state[i]
			if st.done {
				continue
			}
			due := !now.Before(st.next)
			if due && st.tries > 0 && st.tries < tries && holding[i*tries+st.tries-1] {
				// The last try's wait is over: its slot goes to the next try (or back).
				holding[i*tries+st.tries-1] = false
				flying--
				held++
			}
			if due && st.tries < tries && !c.takeSlot(&held) {
				saturated = true // the client is saturated: the loop waits for a slot
				continue
			}
			if due {
				if st.tries == tries {
					if st.lastErr != nil && !isNetError(st.lastErr) {
						return next, false, fmt.Errorf("query %s %s: %w", qs[i].Name, dns.TypeToString[qs[i].Type], st.lastErr)
					}
					st.done = true
					release(i)
					out[i] = Answer{Status: result.StatusTimeout}
					continue
				}
				si := int(c.next.Add(1)-1) % len(c.udp)
				trySrv[i*tries+st.tries] = si
				tryAt[i*tries+st.tries] = now
				p, err := c.udp[si].send(st.wire, st.q, replies, i*tries+st.tries, &c.queries)
				st.tries++
				st.next = now.Add(st.wait)
				st.wait *= 2
				if err != nil {
					c.putSlots(1)
					st.lastErr = err
					if st.outstanding == 0 {
						st.next = now // nothing to wait for: try the next server at once
					}
				} else {
					st.outstanding++
					flying++
					holding[i*tries+st.tries-1] = true
					sent, srv = append(sent, p), append(srv, c.udp[si])
				}
			}
			if next.IsZero() || st.next.Before(next) {
				next = st.next
			}
		}
		return next, saturated, nil
	}
	defer func() {
		for _, a := range out {
			if a.Status == result.StatusTimeout {
				c.timedOut.Add(1)
				return
			}
		}
	}()
	// onReply takes the answer to (or the failure of) one try; finished means a
	// deciding answer ended the batch.
	onReply := func(r reply) (finished bool, err error) {
		i := r.tag / tries
		st := &state[i]
		if st.done {
			return false, nil
		}
		st.outstanding--
		if holding[r.tag] {
			holding[r.tag] = false
			flying--
			c.putSlots(1)
		}
		m, err := r.m, r.err
		sent := tryAt[r.tag]
		if err == nil && m.Truncated {
			sent = time.Now()
			m, err = c.exchangeTCP(ctx, trySrv[r.tag], c.tcpQuery(st.q))
		}
		if err == nil {
			st.done = true
			release(i) // its earlier tries, still open, wait for nothing now
			out[i] = Answer{Status: rcodeStatus(m), Msg: m, RTT: time.Since(sent)}
			return qs[i].Decides && decisive(out[i].Status), nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		// A refused socket or a broken server: try the next one now (or, after the
		// last try, give up now).
		st.lastErr = err
		if st.outstanding == 0 {
			st.next = time.Now()
		}
		return false, nil
	}
	left := len(qs)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for left > 0 {
		next, saturated, err := sendDue(time.Now())
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
		var acquire chan<- struct{} // a slot of MaxInFlight, when a try waits for one
		if saturated {
			acquire = c.slots
		}
		var expired <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			expired = timer.C
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-expired:
		case acquire <- struct{}{}:
			held++
			stopTimer(timer)
		case r := <-replies:
			stopTimer(timer)
			// Take every answer that is ready before looking at the schedule again.
			for more := true; more; {
				finished, err := onReply(r)
				if err != nil {
					return nil, err
				}
				if finished {
					return out, nil // the others, still waiting, are NotWaited
				}
				select {
				case r = <-replies:
				default:
					more = false
				}
			}
		}
	}
	return out, nil
}

// takeSlot takes a slot of MaxInFlight for a try, from those the batch holds (held)
// or from the client; false means the client is saturated.
func (c *Client) takeSlot(held *int) bool {
	if c.slots == nil {
		return true
	}
	if *held > 0 {
		*held--
		return true
	}
	select {
	case c.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// putSlots gives n slots of MaxInFlight back.
func (c *Client) putSlots(n int) {
	if c.slots == nil {
		return
	}
	for range n {
		<-c.slots
	}
}

// stopTimer stops t and drains a tick it may have sent.
func stopTimer(t *time.Timer) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
}
