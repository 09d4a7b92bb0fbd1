package crawl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/dnssrv"
	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/export"
	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// sharedNS is a server on loopback, standing in for the resolver, for domains
// d1.test ... dN.test that all delegate to ns1.shared.test and ns2.shared.test;
// dI's www is 192.0.2.I. Questions for a name in slow are answered after a delay.
type sharedNS struct {
	auth   *dnssrv.Auth
	client *resolve.Client
	slow   sync.Map // name (canonical) -> time.Duration
}

func startSharedNS(t *testing.T, ctx context.Context, n int) *sharedNS {
	t.Helper()
	zones := []*dnssrv.Zone{mustZone(t, "shared.test.", "$TTL 300\n@ SOA ns1 h 1 3600 600 86400 300\n@ NS ns1\n"+
		"ns1 A 192.0.2.53\nns1 AAAA 2001:db8::53\nns2 A 192.0.2.54\nns2 AAAA 2001:db8::54\n")}
	for i := 1; i <= n; i++ {
		zones = append(zones, mustZone(t, fmt.Sprintf("d%d.test.", i), fmt.Sprintf("$TTL 300\n@ SOA ns1.shared.test. h 1 3600 600 86400 300\n"+
			"@ NS ns1.shared.test.\n@ NS ns2.shared.test.\nwww A 192.0.2.%d\n", i)))
	}
	s := &sharedNS{auth: dnssrv.NewAuth(zones...)}
	srv, err := dnssrv.Listen(ctx, "127.0.0.1:0", dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if len(r.Question) == 1 {
			if d, ok := s.slow.Load(dns.CanonicalName(r.Question[0].Name)); ok {
				time.Sleep(d.(time.Duration))
			}
		}
		s.auth.ServeDNS(w, r)
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	rc := resolve.DefaultConfig()
	rc.Servers = []netip.AddrPort{srv.Addr()}
	rc.Timeout = 200 * time.Millisecond
	if s.client, err = resolve.NewClient(rc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.client.Close() })
	return s
}

func mustZone(t *testing.T, origin, text string) *dnssrv.Zone {
	t.Helper()
	z, err := dnssrv.ParseZoneString(origin, text)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

// hostQuestions is how many A and AAAA questions the server received for the shared
// name servers.
func (s *sharedNS) hostQuestions() int {
	n := 0
	for _, name := range []string{"ns1.shared.test.", "ns2.shared.test."} {
		n += s.auth.Count(name, dns.TypeA) + s.auth.Count(name, dns.TypeAAAA)
	}
	return n
}

// openRun returns a new SQLite store with a run being loaded.
func openRun(t *testing.T, ctx context.Context) (*store.SQLite, int64) {
	t.Helper()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "crawl.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	run, err := st.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "list.csv", State: store.RunLoading})
	if err != nil {
		t.Fatal(err)
	}
	return st, run
}

// newRun returns a SQLite store with a run of domains d1.test ... dN.test loaded.
func newRun(t *testing.T, ctx context.Context, n int) (*store.SQLite, int64) {
	t.Helper()
	st, run := openRun(t, ctx)
	var list strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&list, "%d,d%d.test\n", i, i)
	}
	if _, err := Load(ctx, st, run, strings.NewReader(list.String()), "list.csv", LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	return st, run
}

var errKilled = errors.New("killed")

// killedStore is a process killed (SIGKILL) right after it committed the batch that
// last says: the batches after it are not saved.
type killedStore struct {
	*store.SQLite
	last func(store.Batch) bool

	mu   sync.Mutex
	dead chan struct{} // closed at the kill
}

func killAfter(st *store.SQLite, last func(store.Batch) bool) *killedStore {
	return &killedStore{SQLite: st, last: last, dead: make(chan struct{})}
}

func (k *killedStore) Save(ctx context.Context, run int64, b store.Batch) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	select {
	case <-k.dead:
		return errKilled
	default:
	}
	if err := k.SQLite.Save(ctx, run, b); err != nil {
		return err
	}
	if k.last(b) {
		close(k.dead)
	}
	return nil
}

// holds says whether a batch saves the domain.
func holds(b store.Batch, domain string) bool {
	for _, d := range b.Domains {
		if d.Name == domain {
			return true
		}
	}
	return false
}

// crawlOnce crawls the run's pending domains with a new crawler (an empty host cache,
// as a resumed process has).
func crawlOnce(ctx context.Context, s *sharedNS, st store.Store, run int64, cfg Config) error {
	var p Progress
	return New(cfg, s.client, st).Run(ctx, run, &p)
}

// TestResumeSharedHostRow: d1 looks ns1.shared.test up and d2 takes it from the cache,
// but d2's batch commits first and the process is killed before d1's. On resume d1
// finds nothing to look up (its NS query times out, or it is now opted out): d2, done,
// must still have the rows of its name servers, saved with its own batch.
func TestResumeSharedHostRow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		resume func(*sharedNS, *Config)
	}{
		{"d1 times out", func(s *sharedNS, _ *Config) { s.auth.SetFault("d1.test.", dnssrv.FaultDrop) }},
		{"d1 opted out", func(_ *sharedNS, cfg *Config) {
			cfg.OptOut, _ = domains.ParseOptOut(strings.NewReader("d1.test\n"), "exclude.txt")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			s := startSharedNS(t, ctx, 2)
			st, run := newRun(t, ctx, 2)
			// d2 asks its NS after d1 has, so d1 looks the name servers up.
			s.slow.Store("d2.test.", 100*time.Millisecond)
			k := killAfter(st, func(b store.Batch) bool { return holds(b, "d2.test") })
			cfg := DefaultConfig()
			cfg.Concurrency, cfg.BatchSize = 2, 1
			// d1's outcome (its www address classified) waits for the kill.
			cfg.Classify = func(a netip.Addr) result.Class {
				if a == netip.MustParseAddr("192.0.2.1") {
					select {
					case <-k.dead:
					case <-ctx.Done():
					}
				}
				return result.Class{Valid: true}
			}
			if err := crawlOnce(ctx, s, k, run, cfg); !errors.Is(err, errKilled) {
				t.Fatalf("first crawl: %v, want killed", err)
			}
			if c, err := st.Counts(ctx, run); err != nil || c.Done != 1 {
				t.Fatalf("after the kill: %+v, %v; want d2 done alone", c, err)
			}

			cfg = DefaultConfig()
			tc.resume(s, &cfg)
			if err := crawlOnce(ctx, s, st, run, cfg); err != nil {
				t.Fatal(err)
			}
			want := map[string][]netip.Addr{
				"ns1.shared.test": {netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8::53")},
				"ns2.shared.test": {netip.MustParseAddr("192.0.2.54"), netip.MustParseAddr("2001:db8::54")},
			}
			err := st.DetailsOf(ctx, run, "", []string{"d2.test"}, func(d store.Detail) error {
				got := map[string][]netip.Addr{}
				for _, ref := range d.Hosts {
					if ref.Role != result.RoleNS {
						continue
					}
					h := d.HostsByName[ref.Name]
					for _, a := range append(h.V4, h.V6...) {
						if _, ok := d.Addrs[a]; ok { // with its address row
							got[ref.Name] = append(got[ref.Name], a)
						}
					}
				}
				if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
					t.Errorf("d2.test's name servers and their stored addresses (-want +got):\n%s", diff)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestResumeSameAsUninterrupted: a crawl killed after d1's batch and resumed while the
// shared name servers no longer answer reads them from the store, never looks them up
// again, and gives the records, targets and name server pairs of an uninterrupted
// crawl, where a lookup that timed out overwrote the row that d1 used.
func TestResumeSameAsUninterrupted(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := startSharedNS(t, ctx, 3)
	cfg := DefaultConfig()
	cfg.Concurrency, cfg.BatchSize = 1, 1

	whole, wholeRun := newRun(t, ctx, 3)
	if err := crawlOnce(ctx, s, whole, wholeRun, cfg); err != nil {
		t.Fatal(err)
	}

	resumed, run := newRun(t, ctx, 3)
	k := killAfter(resumed, func(b store.Batch) bool { return holds(b, "d1.test") })
	if err := crawlOnce(ctx, s, k, run, cfg); !errors.Is(err, errKilled) {
		t.Fatalf("first crawl: %v, want killed", err)
	}
	for _, ns := range []string{"ns1.shared.test.", "ns2.shared.test."} {
		s.auth.SetFault(ns, dnssrv.FaultDrop)
	}
	before := s.hostQuestions()
	if err := crawlOnce(ctx, s, resumed, run, cfg); err != nil {
		t.Fatal(err)
	}
	if n := s.hostQuestions() - before; n != 0 {
		t.Errorf("the resume asked %d questions about the stored name servers, want 0", n)
	}
	sameRecords(t, ctx, whole, wholeRun, resumed, run)
}

// TestEvictedHostReadBack: a host evicted from the cache (a long run) is read back from
// the store, not looked up again.
func TestEvictedHostReadBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := startSharedNS(t, ctx, 8)
	st, run := newRun(t, ctx, 8)
	cfg := DefaultConfig()
	cfg.Concurrency, cfg.BatchSize, cfg.HostCache = 2, 1, 1
	var p Progress
	if err := New(cfg, s.client, st).Run(ctx, run, &p); err != nil {
		t.Fatal(err)
	}
	if n := s.hostQuestions(); n != 4 {
		t.Errorf("%d A and AAAA questions about the two name servers, want 4 (each once)", n)
	}
	if n := p.HostLookups.Load(); n != 2 {
		t.Errorf("%d shared-host lookups, want 2", n)
	}
}

// sameRecords requires the same exported records, targets and name server pairs of
// two runs.
func sameRecords(t *testing.T, ctx context.Context, x store.Store, rx int64, y store.Store, ry int64) {
	t.Helper()
	dx, dy := t.TempDir(), t.TempDir()
	for _, e := range []struct {
		st  store.Store
		run int64
		dir string
	}{{x, rx, dx}, {y, ry, dy}} {
		if _, err := export.Write(ctx, e.st, e.run, e.dir, export.Formats); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range export.Files(export.Formats) {
		a, errA := os.ReadFile(filepath.Join(dx, name))
		b, errB := os.ReadFile(filepath.Join(dy, name))
		if err := errors.Join(errA, errB); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(a), string(b)); diff != "" {
			t.Errorf("%s (-uninterrupted +resumed):\n%s", name, diff)
		}
	}
	tx, err := x.Targets(ctx, rx, "", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	ty, err := y.Targets(ctx, ry, "", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(tx, ty, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("targets (-uninterrupted +resumed):\n%s", diff)
	}
	nx, err := x.NSTargets(ctx, rx, store.NSCursor{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	ny, err := y.NSTargets(ctx, ry, store.NSCursor{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(nx, ny, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("name server pairs (-uninterrupted +resumed):\n%s", diff)
	}
}
