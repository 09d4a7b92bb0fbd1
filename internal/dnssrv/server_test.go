package dnssrv

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestListen(t *testing.T) {
	a := NewAuth(mustZone(t, "example.com.", exampleZone))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Listen(ctx, "127.0.0.1:0", a)
	if err != nil {
		t.Fatal(err)
	}
	if s.Addr().Port() == 0 || s.Addr().Addr().String() != "127.0.0.1" {
		t.Fatalf("Addr() = %s", s.Addr())
	}
	for _, network := range []string{"udp", "tcp"} {
		if resp := query(t, s.Addr(), network, "www.example.com", dns.TypeA, 0, false); len(resp.Answer) != 1 {
			t.Errorf("%s: %d answers, want 1", network, len(resp.Answer))
		}
	}
	// Cancelling the context stops the server.
	cancel()
	c := &dns.Client{Net: "tcp", Timeout: 300 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("www.example.com.", dns.TypeA)
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, _, err := c.Exchange(m, s.Addr().String()); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server still answers 3s after its context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after cancel: %v", err)
	}
	if _, err := Listen(context.Background(), "not-an-address", a); err == nil {
		t.Error("Listen(not-an-address) succeeded")
	}
}

func TestRecursorConcurrent(t *testing.T) {
	tree := startTestTree(t)
	names := []string{"www.example.com", "alias.example.com", "ext.example.com", "nope.example.com", "other.com"}
	var wg sync.WaitGroup
	errs := make(chan string, 200)
	for g := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				name := names[(g+i)%len(names)]
				m := new(dns.Msg)
				m.SetQuestion(dns.Fqdn(name), dns.TypeA)
				c := &dns.Client{Timeout: 3 * time.Second}
				resp, _, err := c.Exchange(m, tree.RecursorAddr.String())
				if err != nil {
					errs <- err.Error()
					continue
				}
				if resp.Rcode == dns.RcodeServerFailure {
					errs <- name + ": SERVFAIL"
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got := tree.Recursor.Total(); got != 200 {
		t.Errorf("Total() = %d, want 200", got)
	}
}

// BenchmarkRecursorCached measures a cached resolution (the hot path).
func BenchmarkRecursorCached(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tree, err := StartTree(ctx, testTree())
	if err != nil {
		b.Fatal(err)
	}
	defer tree.Close()
	if res := tree.Recursor.Resolve(ctx, "ext.example.com.", dns.TypeA); len(res.Answer) != 3 {
		b.Fatalf("warm-up: %d answers", len(res.Answer))
	}
	b.ReportAllocs()
	for b.Loop() {
		tree.Recursor.Resolve(ctx, "ext.example.com.", dns.TypeA)
	}
}
