package pipeline

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/crawl"
	"github.com/v6matrix/v6matrix/internal/dnssrv"
	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/measure"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// nDomains of the test zone: d<i>.o.test, each with a www host of its own on one of
// four /24s of 127.3.0.0/16 and the mx host mx.o.test (127.3.200.1) in common; a late
// domain's www host shares the mx host's address, which then needs TLS too.
const nDomains = 40

const sharedIP = "127.3.200.1"

// lateWWW is the domain whose www host is the mx address.
const lateWWW = nDomains - 5

func zoneText() string {
	var b strings.Builder
	b.WriteString("@ 300 IN SOA ns hostmaster 1 3600 600 86400 60\n@ IN NS ns\nns IN A 127.0.0.1\nmx IN A " + sharedIP + "\n")
	for i := range nDomains {
		fmt.Fprintf(&b, "d%d IN MX 10 mx\n", i)
		if i == lateWWW {
			fmt.Fprintf(&b, "www.d%d IN A %s\n", i, sharedIP)
			continue
		}
		fmt.Fprintf(&b, "www.d%d IN A %s\n", i, wwwIP(i))
	}
	return b.String()
}

func wwwIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{127, 3, byte(i % 4), byte(i + 1)}) }

// want is every (address, kind) the run must measure once.
func want() map[string]int {
	out := map[string]int{}
	for i := range nDomains {
		if i != lateWWW {
			for _, k := range []string{result.KindGeo, result.KindTCP80, result.KindTCP443, result.KindTLS443} {
				out[wwwIP(i).String()+" "+k] = 1
			}
		}
	}
	for _, k := range []string{result.KindGeo, result.KindTCP80, result.KindTCP443, result.KindTLS443} {
		out[sharedIP+" "+k] = 1
	}
	return out
}

// timedStore records when the last domains were saved, when the first measurement
// was, and how many times each (address, kind) was saved.
type timedStore struct {
	store.Store
	mu           sync.Mutex
	lastSave     time.Time
	firstMeasure time.Time
	saves        int
	saved        map[string]int
	onSave       func(saves int)
	measureErr   error // what SaveMeasurements returns, when set
}

func (s *timedStore) Save(ctx context.Context, run int64, b store.Batch) error {
	if err := s.Store.Save(ctx, run, b); err != nil {
		return err
	}
	s.mu.Lock()
	s.lastSave = time.Now()
	s.saves++
	n, f := s.saves, s.onSave
	s.mu.Unlock()
	if f != nil {
		f(n)
	}
	return nil
}

func (s *timedStore) SaveMeasurements(ctx context.Context, run int64, ms []store.Measurement) error {
	if s.measureErr != nil {
		return s.measureErr
	}
	if err := s.Store.SaveMeasurements(ctx, run, ms); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstMeasure.IsZero() {
		s.firstMeasure = time.Now()
	}
	for _, m := range ms {
		s.saved[m.IP.String()+" "+m.Kind]++
	}
	return nil
}

// rig is a run of the test zone ready to crawl: its store, and the configuration of
// both stages, through an authoritative server on loopback that takes 25 ms per answer.
type rig struct {
	st  *timedStore
	run int64
	cfg Config
}

func newRig(t *testing.T, ctx context.Context) *rig {
	t.Helper()
	z, err := dnssrv.ParseZoneString("o.test.", zoneText())
	if err != nil {
		t.Fatal(err)
	}
	auth := dnssrv.NewAuth(z)
	srv, err := dnssrv.Listen(ctx, "127.0.0.1:0", dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		time.Sleep(25 * time.Millisecond) // a DNS stage that outlasts a few flushes of the probes
		auth.ServeDNS(w, r)
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	sq, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	st := &timedStore{Store: sq, saved: map[string]int{}}
	run, err := st.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "p", State: store.RunCrawling})
	if err != nil {
		t.Fatal(err)
	}
	var es []domains.Entry
	for i := range nDomains {
		es = append(es, domains.Entry{Rank: i + 1, Name: fmt.Sprintf("d%d.o.test", i), TLD: "test", Suffix: "test"})
	}
	if _, err := st.AddDomains(ctx, run, es); err != nil {
		t.Fatal(err)
	}
	rc := resolve.DefaultConfig()
	rc.Servers = []netip.AddrPort{srv.Addr()} // never /etc/resolv.conf
	rc.Timeout, rc.Retries = time.Second, 2
	client, err := resolve.NewClient(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	dnsCfg := crawl.DefaultConfig()
	dnsCfg.Concurrency, dnsCfg.BatchSize, dnsCfg.FlushEvery = 2, 4, 10*time.Millisecond
	probe := measure.DefaultConfig()
	probe.Kinds = map[string]bool{result.KindGeo: true, result.KindTCP80: true, result.KindTCP443: true, result.KindTLS443: true}
	probe.Gate, err = polite.NewGate([]netip.Prefix{netip.MustParsePrefix("127.3.0.0/16")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	probe.Polite.AddrGap, probe.Polite.NetGap, probe.Polite.PortWindow, probe.Polite.Rate = 2*time.Millisecond, time.Millisecond, 0, math.Inf(1)
	probe.TCPTimeout, probe.TLSTimeout = time.Second, time.Second
	return &rig{st: st, run: run, cfg: Config{DNS: dnsCfg, Client: client, Probe: &probe}}
}

// check requires every domain done and every (address, kind) saved exactly once.
func (r *rig) check(t *testing.T, ctx context.Context) {
	t.Helper()
	c, err := r.st.Counts(ctx, r.run)
	if err != nil {
		t.Fatal(err)
	}
	if c.Done != nDomains {
		t.Errorf("%d of %d domains done", c.Done, nDomains)
	}
	r.st.mu.Lock()
	defer r.st.mu.Unlock()
	if diff := cmp.Diff(want(), r.st.saved); diff != "" {
		t.Errorf("saves per (address, kind) (-want +got):\n%s", diff)
	}
}

// TestOverlap runs both stages on loopback: the first measurement is saved before the
// DNS stage saves its last domains, and every (address, kind) is measured once, the
// kinds a later domain's role adds included.
func TestOverlap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := newRig(t, ctx)
	var dnsDone time.Time
	r.cfg.DNSDone = func() error { dnsDone = time.Now(); return nil }
	var p Progress
	if err := Run(ctx, r.st, r.run, r.cfg, &p); err != nil {
		t.Fatal(err)
	}
	r.check(t, ctx)
	r.st.mu.Lock()
	first, last := r.st.firstMeasure, r.st.lastSave
	r.st.mu.Unlock()
	t.Logf("first measurement saved %v before the last domains", last.Sub(first))
	if !first.Before(last) || dnsDone.Before(last) {
		t.Errorf("first measurement at %v, last domains saved at %v, DNS stage done at %v: want the probes to start before the DNS stage ends",
			first.Format(time.StampMicro), last.Format(time.StampMicro), dnsDone.Format(time.StampMicro))
	}
	if lb, why := p.Probe.Bound(); lb <= 0 || why == "" {
		t.Errorf("lower bound %v (%q), want one", lb, why)
	}
}

// TestResume cancels the pipeline mid-way, with domains pending and probes under way,
// and resumes it: nothing is lost and nothing measured twice.
func TestResume(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := newRig(t, ctx)
	first, stop := context.WithCancel(ctx)
	r.st.onSave = func(n int) {
		if n == nDomains/4/2 {
			stop()
		}
	}
	var p Progress
	if err := Run(first, r.st, r.run, r.cfg, &p); err != context.Canceled {
		t.Fatalf("cancelled pipeline returned %v, want context.Canceled", err)
	}
	c, err := r.st.Counts(ctx, r.run)
	if err != nil {
		t.Fatal(err)
	}
	r.st.mu.Lock()
	measured := len(r.st.saved)
	r.st.onSave = nil
	r.st.mu.Unlock()
	t.Logf("cancelled with %d of %d domains done and %d measurements saved", c.Done, nDomains, measured)
	if c.Done == 0 || c.Done == nDomains {
		t.Fatalf("cancelled with %d of %d domains done: want some, not all", c.Done, nDomains)
	}
	var p2 Progress
	if err := Run(ctx, r.st, r.run, r.cfg, &p2); err != nil {
		t.Fatal(err)
	}
	r.check(t, ctx)
}

// TestWriteErrorStopsDNS fails the probe stage's first write, at about 0.5 s
// (measure's flushEvery) of a DNS stage that takes 2 s at least (10 batches saved
// 200 ms apart): Run returns that error, and the DNS stage stops then rather than
// resolving every domain left.
func TestWriteErrorStopsDNS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := newRig(t, ctx)
	r.st.measureErr = errors.New("disk full")
	r.st.onSave = func(int) { time.Sleep(200 * time.Millisecond) }
	var p Progress
	err := Run(ctx, r.st, r.run, r.cfg, &p)
	c, cerr := r.st.Counts(ctx, r.run)
	if cerr != nil {
		t.Fatal(cerr)
	}
	t.Logf("Run: %v; %d of %d domains done", err, c.Done, nDomains)
	if !errors.Is(err, r.st.measureErr) || errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want %v alone", err, r.st.measureErr)
	}
	if c.Done == nDomains {
		t.Errorf("every domain done: the probe stage's write error did not stop the DNS stage")
	}
}
