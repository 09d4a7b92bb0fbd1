package resolve

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/result"
)

// TestMaxInFlight sends two batches of 12 questions at once through a client bounded
// to 3 tries in flight, to a server that answers each question 20 ms after it came:
// the server never holds more than 3 unanswered questions, and every question is
// answered (a batch that finds the client full waits for a slot).
func TestMaxInFlight(t *testing.T) {
	var mu sync.Mutex
	open, most := 0, 0
	addr := udpResponder(t, func(q *dns.Msg, send func(*dns.Msg)) {
		mu.Lock()
		open++
		most = max(most, open)
		mu.Unlock()
		time.AfterFunc(20*time.Millisecond, func() {
			m := new(dns.Msg)
			m.SetReply(q)
			mu.Lock()
			open--
			mu.Unlock()
			send(m)
		})
	})
	cfg := DefaultConfig()
	cfg.Servers, cfg.Timeout, cfg.MaxInFlight = []netip.AddrPort{addr}, 5*time.Second, 3
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for b := range 2 {
		wg.Go(func() {
			var qs []Question
			for i := range 12 {
				qs = append(qs, Question{Name: string(rune('a'+b)) + string(rune('a'+i)) + ".test", Type: dns.TypeA})
			}
			as, err := c.QueryAll(ctx, qs)
			if err != nil {
				t.Error(err)
				return
			}
			for i, a := range as {
				if a.Status != result.StatusOK {
					t.Errorf("batch %d question %d: %s, want ok", b, i, a.Status)
				}
			}
		})
	}
	wg.Wait()
	if most > 3 || most < 1 {
		t.Errorf("the server held %d unanswered questions at most, want 1 to 3", most)
	}
	if c.Queries() != 24 {
		t.Errorf("sent %d queries, want 24", c.Queries())
	}
}

// TestMaxInFlightLostAnswers: tries whose answers are lost must not hold every slot
// while their retries wait for one. Two batches of 3 questions share 2 slots with a
// server that never answers: each question ends as a timeout after its last wait,
// with every try sent (3 per question), instead of the batches stalling until their
// context ends (as they did when a lost try kept its slot to the end of its batch).
func TestMaxInFlightLostAnswers(t *testing.T) {
	var mu sync.Mutex
	got := 0
	addr := udpResponder(t, func(q *dns.Msg, send func(*dns.Msg)) {
		mu.Lock()
		got++
		mu.Unlock()
	})
	cfg := DefaultConfig()
	cfg.Servers, cfg.Timeout, cfg.Retries, cfg.MaxInFlight = []netip.AddrPort{addr}, 20*time.Millisecond, 2, 2
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for b := range 2 {
		wg.Go(func() {
			qs := []Question{{Name: string(rune('a'+b)) + "1.test", Type: dns.TypeA},
				{Name: string(rune('a'+b)) + "2.test", Type: dns.TypeA}, {Name: string(rune('a'+b)) + "3.test", Type: dns.TypeAAAA}}
			as, err := c.QueryAll(ctx, qs)
			if err != nil {
				t.Errorf("batch %d: %v", b, err)
				return
			}
			for i, a := range as {
				if a.Status != result.StatusTimeout {
					t.Errorf("batch %d question %d: %s, want timeout", b, i, a.Status)
				}
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		t.Fatal("the batches stalled until their context ended")
	}
	mu.Lock()
	defer mu.Unlock()
	if c.Queries() != 18 || got != 18 {
		t.Errorf("sent %d queries, the server saw %d, want 18 (3 tries of 6 questions)", c.Queries(), got)
	}
	if n := len(c.slots); n != 0 {
		t.Errorf("%d slots still taken after both batches ended", n)
	}
}
