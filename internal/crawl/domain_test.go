package crawl

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/dnssrv"
	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/result"
)

// deadZone answers like a resolver in front of a zone whose servers are dead: every
// question about dead.test gets no answer, except its NS (known from the parent, as a
// resolver knows it), and broken.test's NS query gets SERVFAIL while its other
// questions get no answer. It counts the questions it receives.
type deadZone struct {
	auth *dnssrv.Auth
	mu   sync.Mutex
	n    map[string]int // "name TYPE" -> questions received
}

func (z *deadZone) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		return
	}
	q := r.Question[0]
	name := strings.ToLower(strings.TrimSuffix(q.Name, "."))
	z.mu.Lock()
	z.n[name+" "+dns.TypeToString[q.Qtype]]++
	z.mu.Unlock()
	switch {
	case name == "broken.test" && q.Qtype == dns.TypeNS:
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		w.WriteMsg(m)
	case dns.IsSubDomain("broken.test.", q.Name),
		dns.IsSubDomain("dead.test.", q.Name) && !(name == "dead.test" && q.Qtype == dns.TypeNS):
		// no answer
	default:
		z.auth.ServeDNS(w, r)
	}
}

func (z *deadZone) count(name string, qtype uint16) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.n[name+" "+dns.TypeToString[qtype]]
}

// TestDeadZoneOneSchedule checks that a domain whose servers do not answer costs one
// timeout schedule, not one per round of dependent queries, and that questions whose
// answers cannot change the result are not waited for: the AAAA of ntp and time after
// their A timed out, and anything after the NS query failed.
func TestDeadZoneOneSchedule(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var zones []*dnssrv.Zone
	for origin, text := range map[string]string{
		"dead.test.": "$TTL 300\n@ SOA ns1.host.test. h 1 3600 600 86400 300\n@ NS ns1.host.test.\n@ MX 10 mail\n" +
			"mail A 192.0.2.1\nwww A 192.0.2.2\nntp A 192.0.2.3\n",
		"host.test.": "$TTL 300\n@ SOA ns1 h 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.53\nns1 AAAA 2001:db8::53\n",
	} {
		z, err := dnssrv.ParseZoneString(origin, text)
		if err != nil {
			t.Fatal(err)
		}
		zones = append(zones, z)
	}
	front := &deadZone{auth: dnssrv.NewAuth(zones...), n: map[string]int{}}
	srv, err := dnssrv.Listen(ctx, "127.0.0.1:0", front)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	rc := resolve.DefaultConfig()
	rc.Servers = []netip.AddrPort{srv.Addr()}
	// Tries at 0, 0.5 and 1.5 s, given up at 3.5 s: long enough that an answered
	// question is never retried on a loaded machine.
	rc.Timeout = 500 * time.Millisecond
	client, err := resolve.NewClient(rc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c := New(DefaultConfig(), client, nil)

	t.Run("dead", func(t *testing.T) {
		before := client.TimedOutBatches()
		o, err := c.measureDomain(ctx, result.Domain{Name: "dead.test", Rank: 1})
		if err != nil {
			t.Fatal(err)
		}
		if got := client.TimedOutBatches() - before; got != 1 {
			t.Errorf("the domain waited out %d schedules in sequence, want 1", got)
		}
		var hosts []string
		for _, h := range o.domain.Hosts {
			hosts = append(hosts, string(h.Role)+" "+h.Name)
		}
		if diff := cmp.Diff([]string{"ns ns1.host.test", "www www.dead.test"}, hosts); diff != "" {
			t.Errorf("hosts (-want +got):\n%s", diff)
		}
		if o.domain.Status != result.StatusOK || o.domain.SOA != nil {
			t.Errorf("domain status %s, SOA %v: want ok and no SOA", o.domain.Status, o.domain.SOA)
		}
		for _, q := range []struct {
			name  string
			qtype uint16
			want  int
		}{
			{"dead.test", dns.TypeNS, 1}, {"dead.test", dns.TypeSOA, 3}, {"dead.test", dns.TypeMX, 3},
			{"www.dead.test", dns.TypeA, 3}, {"www.dead.test", dns.TypeAAAA, 3},
			{"ntp.dead.test", dns.TypeA, 3}, {"time.dead.test", dns.TypeA, 3},
			// A timed out after the whole schedule: AAAA is not asked.
			{"ntp.dead.test", dns.TypeAAAA, 0}, {"time.dead.test", dns.TypeAAAA, 0},
			{"ns1.host.test", dns.TypeA, 1}, {"ns1.host.test", dns.TypeAAAA, 1},
		} {
			if got := front.count(q.name, q.qtype); got != q.want {
				t.Errorf("%s %s asked %d times, want %d", q.name, dns.TypeToString[q.qtype], got, q.want)
			}
		}
	})

	t.Run("ns fails", func(t *testing.T) {
		before, sent := client.TimedOutBatches(), client.Queries()
		o, err := c.measureDomain(ctx, result.Domain{Name: "broken.test", Rank: 2})
		if err != nil {
			t.Fatal(err)
		}
		if o.domain.Status != result.StatusServFail || len(o.domain.Hosts) != 0 {
			t.Errorf("domain status %s, hosts %v: want servfail, none", o.domain.Status, o.domain.Hosts)
		}
		// The SERVFAIL decides the domain: the questions sent with it are not waited
		// for, so none is retried and no schedule is waited out.
		if got := client.TimedOutBatches() - before; got != 0 {
			t.Errorf("the domain waited out %d schedules, want 0", got)
		}
		// NS, SOA, MX, www A and AAAA, ntp A, time A, each once. (The server may not have
		// read the last ones yet when the SERVFAIL ends the batch: at most once there.)
		if got := client.Queries() - sent; got != 7 {
			t.Errorf("sent %d queries, want 7 (the first batch, no retry)", got)
		}
		for _, q := range []struct {
			name  string
			qtype uint16
		}{{"broken.test", dns.TypeSOA}, {"www.broken.test", dns.TypeA}, {"ntp.broken.test", dns.TypeA}} {
			if got := front.count(q.name, q.qtype); got > 1 {
				t.Errorf("%s %s asked %d times, want at most 1 (sent with the NS query, never retried)", q.name, dns.TypeToString[q.qtype], got)
			}
		}
	})
}
