package run

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"os"
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
	"github.com/v6matrix/v6matrix/internal/export"
	"github.com/v6matrix/v6matrix/internal/measure"
	"github.com/v6matrix/v6matrix/internal/metrics/metricstest"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/summary"
)

// soaCounter counts the SOA queries per name that reach the server it wraps: the DNS
// stage asks a domain's SOA once, so a count that grows after a resume shows a domain
// measured again.
type soaCounter struct {
	next dns.Handler
	mu   sync.Mutex
	n    map[string]int
}

func (c *soaCounter) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) == 1 && r.Question[0].Qtype == dns.TypeSOA {
		c.mu.Lock()
		c.n[strings.ToLower(r.Question[0].Name)]++
		c.mu.Unlock()
	}
	c.next.ServeDNS(w, r)
}

// count returns the SOA queries for domain (without the final dot).
func (c *soaCounter) count(domain string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[domain+"."]
}

// syntheticServer serves d1..d<n>.com on loopback, answering like a recursive resolver.
func syntheticServer(t *testing.T, n int) (netip.AddrPort, *soaCounter) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := &soaCounter{next: dnssrv.NewSyntheticServer("com", n), n: map[string]int{}}
	srv, err := dnssrv.Listen(ctx, "127.0.0.1:0", c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr(), c
}

// syntheticList is a rank,domain list of d1..d<n>.com with one invalid line and one
// duplicate, so that the counts of skipped lines and duplicates are seen.
func syntheticList(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d,d%d.com\n", i, i)
	}
	b.WriteString("0,invalid.com\n")
	fmt.Fprintf(&b, "%d,d1.com\n", n+1)
	return b.String()
}

// recorder is a store that records the state of every run it creates or updates.
type recorder struct {
	store.Store
	mu     sync.Mutex
	states []store.RunState
	// beforeAdd, if set, is called before each AddDomains (to stop a load midway).
	beforeAdd func()
	// beforeMeasure, if set, is called before each SaveMeasurements.
	beforeMeasure func()
	// saveErr, if set, is what Save returns; addErr what AddDomains does; openErr
	// what OpenList does.
	saveErr, addErr, openErr error
}

func (r *recorder) OpenList(ctx context.Context, run int64) (io.ReadCloser, error) {
	if r.openErr != nil {
		return nil, r.openErr
	}
	return r.Store.OpenList(ctx, run)
}

func (r *recorder) Save(ctx context.Context, run int64, b store.Batch) error {
	if r.saveErr != nil {
		return r.saveErr
	}
	return r.Store.Save(ctx, run, b)
}

func (r *recorder) SaveMeasurements(ctx context.Context, run int64, ms []store.Measurement) error {
	if r.beforeMeasure != nil {
		r.beforeMeasure()
	}
	return r.Store.SaveMeasurements(ctx, run, ms)
}

// watchLog is a log that closes seen when a line holding msg is written.
type watchLog struct {
	metricstest.Log
	msg  string
	once sync.Once
	seen chan struct{}
}

func (w *watchLog) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(w.msg)) {
		w.once.Do(func() { close(w.seen) })
	}
	return w.Log.Write(p)
}

func (r *recorder) AddDomains(ctx context.Context, run int64, es []domains.Entry) (int, error) {
	if r.beforeAdd != nil {
		r.beforeAdd()
	}
	if r.addErr != nil {
		return 0, r.addErr
	}
	return r.Store.AddDomains(ctx, run, es)
}

func (r *recorder) CreateRun(ctx context.Context, run store.Run) (int64, error) {
	r.note(run.State)
	return r.Store.CreateRun(ctx, run)
}

func (r *recorder) UpdateRun(ctx context.Context, run store.Run) error {
	r.note(run.State)
	return r.Store.UpdateRun(ctx, run)
}

func (r *recorder) note(s store.RunState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.states) == 0 || r.states[len(r.states)-1] != s {
		r.states = append(r.states, s)
	}
}

// take returns the states recorded since the last take.
func (r *recorder) take() []store.RunState {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.states
	r.states = nil
	return s
}

// openStore opens a new SQLite store in the test's directory, wrapped in a recorder.
func openStore(t *testing.T, name string) *recorder {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &recorder{Store: st}
}

// dnsConfig is a DNS-only run's configuration, resolving through resolver (always a
// loopback server of the test: never /etc/resolv.conf).
func dnsConfig(t *testing.T, resolver netip.AddrPort, list string) Config {
	t.Helper()
	rc := resolve.DefaultConfig()
	rc.Servers = []netip.AddrPort{resolver}
	rc.Timeout, rc.Retries = 500*time.Millisecond, 2
	client, err := resolve.NewClient(rc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	dc := crawl.DefaultConfig()
	dc.Concurrency, dc.BatchSize = 20, 50
	return Config{DNS: dc, Client: client, List: list}
}

// timeout bounds a test's run.
func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestStartFromReader runs a DNS-only run of a list read from standard input (an
// io.Reader): the run stores that exact list, loads it, crawls it and is done, going
// through loading, crawling and done.
func TestStartFromReader(t *testing.T) {
	const n = 40
	ctx := timeout(t)
	resolver, soa := syntheticServer(t, n)
	st := openStore(t, "stdin.db")
	list := syntheticList(n)
	cfg := dnsConfig(t, resolver, "-")
	cfg.Stdin = strings.NewReader(list)
	var watched []store.RunState
	cfg.Watch = func(stage store.RunState, p *Progress) func() {
		// The state is in the store before the stage starts.
		r, err := st.GetRun(ctx, 1)
		if err != nil || r.State != stage {
			t.Errorf("stage %s starts with the run stored as %q (%v)", stage, r.State, err)
		}
		watched = append(watched, stage)
		return func() {}
	}
	res, err := Start(ctx, st, cfg, Meta{Options: `{"x":1}`, Vantage: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.RunState{store.RunLoading, store.RunCrawling, store.RunDone}, st.take()); diff != "" {
		t.Errorf("states recorded (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]store.RunState{store.RunCrawling}, watched); diff != "" {
		t.Errorf("stages watched (-want +got):\n%s", diff)
	}
	got, err := st.GetRun(ctx, res.Run.ID)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(list))
	if got.State != store.RunDone || got.Finished.IsZero() || got.ListName != "-" || !got.Loaded ||
		got.ListSHA256 != hex.EncodeToString(sum[:]) || got.Skipped != 1 || got.Duplicates != 1 ||
		got.Options != `{"x":1}` || got.Vantage != "test" {
		t.Errorf("stored run %+v: want done, finished, list - loaded with the input's SHA-256, 1 skipped, 1 duplicate, the options and vantage", got)
	}
	if res.Counts.Done != n || res.Counts.ByStatus["ok"] != n || res.Progress.DNS.Done.Load() != n {
		t.Errorf("counts %+v, %d done in the DNS stage; want %d domains ok", res.Counts, res.Progress.DNS.Done.Load(), n)
	}
	for i := 1; i <= n; i++ {
		if c := soa.count(fmt.Sprintf("d%d.com", i)); c != 1 {
			t.Errorf("d%d.com: %d SOA queries, want 1", i, c)
		}
	}
	// A done run has nothing to resume.
	if _, err := Resume(ctx, st, res.Run.ID, cfg, ""); !errors.Is(err, ErrNothingToResume) ||
		err.Error() != "run 1 is already done: nothing to resume" {
		t.Errorf("resume of a done run: %v, want \"run 1 is already done: nothing to resume\"", err)
	}
}

// TestResumeAfterInterrupt cancels a run mid DNS stage, then resumes it: the
// interrupted run is recorded so, the resume repeats no saved domain (no SOA query
// after the interruption for a domain saved before it), saves each pending domain once,
// and ends with the counts and export of an uninterrupted run.
func TestResumeAfterInterrupt(t *testing.T) {
	const n = 400
	ctx := timeout(t)
	resolver, soa := syntheticServer(t, n)
	dir := t.TempDir()
	listFile := filepath.Join(dir, "list.csv")
	if err := os.WriteFile(listFile, []byte(syntheticList(n)), 0o644); err != nil {
		t.Fatal(err)
	}

	ref := openStore(t, "ref.db")
	want, err := Start(ctx, ref, dnsConfig(t, resolver, listFile), Meta{Vantage: "test"})
	if err != nil {
		t.Fatal(err)
	}
	refSOA := map[string]int{}
	for i := 1; i <= n; i++ {
		d := fmt.Sprintf("d%d.com", i)
		refSOA[d] = soa.count(d)
	}

	st := openStore(t, "interrupted.db")
	cfg := dnsConfig(t, resolver, listFile)
	cfg.DNS.Concurrency = 4 // slow enough that the cancel lands mid-stage
	stopCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg.Watch = func(stage store.RunState, p *Progress) func() {
		done := make(chan struct{})
		go func() {
			tick := time.NewTicker(time.Millisecond)
			defer tick.Stop()
			for p.DNS.Done.Load() < n/4 {
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
			cancel()
		}()
		return func() { close(done) }
	}
	first, err := Start(stopCtx, st, cfg, Meta{Vantage: "test"})
	var ie *InterruptedError
	if !errors.As(err, &ie) || !errors.Is(err, ErrInterrupted) || ie.Stage != store.RunCrawling || ie.State != store.RunInterrupted {
		t.Fatalf("canceled run: %v, want an InterruptedError of the crawling stage, now interrupted", err)
	}
	if diff := cmp.Diff([]store.RunState{store.RunLoading, store.RunCrawling, store.RunInterrupted}, st.take()); diff != "" {
		t.Errorf("states recorded (-want +got):\n%s", diff)
	}
	stored, err := st.GetRun(ctx, first.Run.ID)
	if err != nil || stored.State != store.RunInterrupted || !stored.Finished.IsZero() {
		t.Fatalf("interrupted run stored as %+v (%v), want interrupted, not finished", stored, err)
	}
	pending, err := st.Pending(ctx, first.Run.ID, store.Cursor{}, n+10)
	if err != nil {
		t.Fatal(err)
	}
	saved := int(first.Progress.DNS.Done.Load())
	t.Logf("interrupted with %d of %d domains saved, %d pending", saved, n, len(pending))
	if saved < n/4 || len(pending) == 0 || saved+len(pending) != n {
		t.Fatalf("interrupted with %d saved and %d pending, want at least %d saved, some pending, %d in all", saved, len(pending), n/4, n)
	}
	isPending := map[string]bool{}
	for _, d := range pending {
		isPending[d.Name] = true
	}
	soaAtStop := map[string]int{}
	for i := 1; i <= n; i++ {
		d := fmt.Sprintf("d%d.com", i)
		soaAtStop[d] = soa.count(d)
	}

	cfg.Watch = nil
	cfg.List = "" // the run's own
	res, err := Resume(ctx, st, first.Run.ID, cfg, `{"resumed":true}`)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.RunState{store.RunCrawling, store.RunDone}, st.take()); diff != "" {
		t.Errorf("states recorded by the resume (-want +got):\n%s", diff)
	}
	if got := &res.Progress.DNS; got.Total.Load() != int64(len(pending)) || got.Done.Load() != int64(len(pending)) {
		t.Errorf("resume measured %d of %d domains, want the %d pending", got.Done.Load(), got.Total.Load(), len(pending))
	}
	for i := 1; i <= n; i++ {
		d := fmt.Sprintf("d%d.com", i)
		if !isPending[d] && soa.count(d) != soaAtStop[d] {
			t.Errorf("%s, saved before the interruption, was asked again on resume (%d SOA queries, %d at the stop)", d, soa.count(d), soaAtStop[d])
		}
	}
	if diff := cmp.Diff(want.Counts, res.Counts); diff != "" {
		t.Errorf("counts of the resumed run (-uninterrupted +resumed):\n%s", diff)
	}
	if res.Run.Skipped != want.Run.Skipped || res.Run.Duplicates != want.Run.Duplicates || res.Run.Options != `{"resumed":true}` {
		t.Errorf("resumed run %+v, want %d skipped and %d duplicates as uninterrupted, and the new options", res.Run, want.Run.Skipped, want.Run.Duplicates)
	}
	sameExport(t, ref, want.Run.ID, st, res.Run.ID)
}

// sameExport exports two runs and compares the files byte for byte.
func sameExport(t *testing.T, a store.Store, runA int64, b store.Store, runB int64) {
	t.Helper()
	ctx := context.Background()
	da, db := t.TempDir(), t.TempDir()
	filesA, err := export.Write(ctx, a, runA, da, export.Formats)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := export.Write(ctx, b, runB, db, export.Formats); err != nil {
		t.Fatal(err)
	}
	for _, f := range filesA {
		name := filepath.Base(f)
		wa, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		wb, err := os.ReadFile(filepath.Join(db, name))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(wa), string(wb)); diff != "" {
			t.Errorf("%s differs (-uninterrupted +resumed):\n%s", name, diff)
		}
	}
}

// TestFailedLoad loads a list without a valid domain: the run fails, with an error
// naming the list and counting its lines, and is recorded failed and finished.
func TestFailedLoad(t *testing.T) {
	ctx := timeout(t)
	resolver, _ := syntheticServer(t, 1)
	list := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(list, []byte("0,a.com\n# a comment\n2\n\n3,not a domain\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, "failed.db")
	res, err := Start(ctx, st, dnsConfig(t, resolver, list), Meta{Vantage: "test"})
	want := "bad.csv: the list holds no valid domain (3 lines skipped, 0 outside the selection)"
	if err == nil || err.Error() != want || !errors.Is(err, crawl.ErrNoDomains) {
		t.Fatalf("load of a list without a domain: %v, want %q", err, want)
	}
	if diff := cmp.Diff([]store.RunState{store.RunLoading, store.RunFailed}, st.take()); diff != "" {
		t.Errorf("states recorded (-want +got):\n%s", diff)
	}
	got, err := st.GetRun(ctx, res.Run.ID)
	if err != nil || got.State != store.RunFailed || got.Finished.IsZero() {
		t.Errorf("stored run %+v (%v), want failed and finished", got, err)
	}
}

// loopbackTree is a delegation tree on loopback for lo.test, whose www and mx hosts
// have loopback addresses: a probe stage that sends nothing beyond 127.0.0.0/8.
func loopbackTree(t *testing.T) *dnssrv.Tree {
	t.Helper()
	const soa = "@ 300 IN SOA ns hostmaster 1 7200 900 1209600 300\n"
	tree, err := dnssrv.StartTree(timeout(t), dnssrv.TreeConfig{Servers: []dnssrv.TreeServer{
		{Name: "a.root", Addr: netip.MustParseAddr("127.77.1.1"), Zones: map[string]string{".": soa + `
.             IN NS a.root.
a.root.       IN A  127.77.1.1
test.         IN NS a.nic.test.
a.nic.test.   IN A  127.77.2.1
`}},
		{Name: "a.nic.test", Addr: netip.MustParseAddr("127.77.2.1"), Zones: map[string]string{"test.": soa + `
@        IN NS a.nic
a.nic    IN A  127.77.2.1
lo       IN NS ns1.lo
ns1.lo   IN A  127.77.3.1
`}},
		{Name: "ns1.lo.test", Addr: netip.MustParseAddr("127.77.3.1"), Zones: map[string]string{"lo.test.": soa + `
@     IN NS ns1
@     IN MX 10 mx
ns1   IN A  127.77.3.1
mx    IN A  127.77.5.2
www   IN A  127.77.5.1
`}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	return tree
}

// probeConfig is the configuration of a run of lo.test (from standard input) in the
// loopback tree with TCP 80, TCP 25 and PTR probes, politeness lifted.
func probeConfig(t *testing.T) Config {
	t.Helper()
	tree := loopbackTree(t)
	cfg := dnsConfig(t, tree.RecursorAddr, "-")
	cfg.Stdin = strings.NewReader("1,lo.test\n")
	mc := measure.DefaultConfig()
	mc.Kinds = map[string]bool{result.KindTCP80: true, result.KindTCP25: true, result.KindPTR: true}
	gate, err := polite.NewGate([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mc.Gate, mc.Resolver = gate, tree.RecursorAddr
	mc.Polite.AddrGap, mc.Polite.NetGap, mc.Polite.PortWindow, mc.Polite.Rate = 0, 0, 0, math.Inf(1)
	mc.TCPTimeout = time.Second
	cfg.Probe = &mc
	return cfg
}

// TestProbeStage runs both stages on a domain whose hosts are on loopback (the gate
// allows 127.0.0.0/8 only): the run goes through loading, crawling, probing and done,
// and every address the DNS stage found is measured with every probe enabled.
func TestProbeStage(t *testing.T) {
	ctx := timeout(t)
	st := openStore(t, "probe.db")
	cfg := probeConfig(t)
	var watched []store.RunState
	cfg.Watch = func(stage store.RunState, p *Progress) func() {
		watched = append(watched, stage)
		return func() {}
	}
	res, err := Start(ctx, st, cfg, Meta{Vantage: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]store.RunState{store.RunLoading, store.RunCrawling, store.RunProbing, store.RunDone}, st.take()); diff != "" {
		t.Errorf("states recorded (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]store.RunState{store.RunCrawling, store.RunProbing}, watched); diff != "" {
		t.Errorf("stages watched (-want +got):\n%s", diff)
	}
	measured, err := st.Measured(ctx, res.Run.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]bool{result.KindTCP80: true, result.KindTCP25: true, result.KindPTR: true}
	want := map[netip.Addr]map[string]bool{
		netip.MustParseAddr("127.77.5.1"): all, // www
		netip.MustParseAddr("127.77.5.2"): all, // mx
		netip.MustParseAddr("127.77.3.1"): all, // ns1
	}
	if diff := cmp.Diff(want, measured); diff != "" {
		t.Errorf("measured (-want +got):\n%s", diff)
	}
	if p := &res.Progress.Probe; p.Done.Load() != p.Total.Load() || p.Total.Load() == 0 || p.Failed.Load() != 0 {
		t.Errorf("probe progress %d/%d done, %d failed; want all of some done, none failed", p.Done.Load(), p.Total.Load(), p.Failed.Load())
	}
}

// cancelReader calls cancel on its first read, then reads on: the run is stopped while
// it stores its list.
type cancelReader struct {
	r      io.Reader
	cancel func()
}

func (c *cancelReader) Read(p []byte) (int, error) {
	c.cancel()
	return c.r.Read(p)
}

// TestInterruptedBeforeCrawling stops runs before their DNS stage: while the list is
// stored (the run is failed: nothing to resume), the list read from standard input
// included, and while it loads (interrupted; the resume loads the stored list and
// finishes as an uninterrupted run would).
func TestInterruptedBeforeCrawling(t *testing.T) {
	const n = 30
	resolver, _ := syntheticServer(t, n)
	list := syntheticList(n)

	t.Run("storing the list", func(t *testing.T) {
		ctx, cancel := context.WithCancel(timeout(t))
		defer cancel()
		st := openStore(t, "storing.db")
		cfg := dnsConfig(t, resolver, "-")
		cfg.Stdin = &cancelReader{r: strings.NewReader(list), cancel: cancel}
		res, err := Start(ctx, st, cfg, Meta{Vantage: "test"})
		var ie *InterruptedError
		if !errors.As(err, &ie) || ie.Stage != store.RunLoading || ie.State != store.RunFailed {
			t.Fatalf("stopped while storing the list: %v, want an InterruptedError of loading, now failed", err)
		}
		if diff := cmp.Diff([]store.RunState{store.RunLoading, store.RunFailed}, st.take()); diff != "" {
			t.Errorf("states recorded (-want +got):\n%s", diff)
		}
		if got, err := st.GetRun(context.Background(), res.Run.ID); err != nil || got.State != store.RunFailed || got.Finished.IsZero() {
			t.Errorf("stored run %+v (%v), want failed and finished", got, err)
		}
	})

	// Standard input open but idle (the program feeding it slow or stuck): the run
	// stops when its context ends, not when the input closes.
	t.Run("standard input idle", func(t *testing.T) {
		ctx, cancel := context.WithCancel(timeout(t))
		defer cancel()
		st := openStore(t, "idle.db")
		cfg := dnsConfig(t, resolver, "-")
		in, feed := io.Pipe()
		defer feed.Close()
		cfg.Stdin = in
		done := make(chan error, 1)
		go func() {
			_, err := Start(ctx, st, cfg, Meta{Vantage: "test"})
			done <- err
		}()
		if _, err := feed.Write([]byte("1,d1.com\n")); err != nil { // read: the run is storing its list
			t.Fatal(err)
		}
		cancel()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			feed.CloseWithError(errors.New("the test gave up"))
			t.Fatalf("Start still reading standard input 10 s after its context ended; then %v", <-done)
		}
		var ie *InterruptedError
		if !errors.As(err, &ie) || ie.Stage != store.RunLoading || ie.State != store.RunFailed {
			t.Fatalf("stopped while reading standard input: %v, want an InterruptedError of loading, now failed", err)
		}
		if diff := cmp.Diff([]store.RunState{store.RunLoading, store.RunFailed}, st.take()); diff != "" {
			t.Errorf("states recorded (-want +got):\n%s", diff)
		}
	})

	t.Run("loading", func(t *testing.T) {
		ctx, cancel := context.WithCancel(timeout(t))
		defer cancel()
		ref := openStore(t, "ref.db")
		refCfg := dnsConfig(t, resolver, "-")
		refCfg.Stdin = strings.NewReader(list)
		want, err := Start(ctx, ref, refCfg, Meta{Vantage: "test"})
		if err != nil {
			t.Fatal(err)
		}

		st := openStore(t, "loading.db")
		st.beforeAdd = cancel
		cfg := dnsConfig(t, resolver, "-")
		cfg.Stdin = strings.NewReader(list)
		res, err := Start(ctx, st, cfg, Meta{Vantage: "test"})
		var ie *InterruptedError
		if !errors.As(err, &ie) || ie.Stage != store.RunLoading || ie.State != store.RunInterrupted {
			t.Fatalf("stopped while loading: %v, want an InterruptedError of loading, now interrupted", err)
		}
		if diff := cmp.Diff([]store.RunState{store.RunLoading, store.RunInterrupted}, st.take()); diff != "" {
			t.Errorf("states recorded (-want +got):\n%s", diff)
		}
		// The resume reads the stored copy: standard input is not read again.
		st.beforeAdd = nil
		cfg.Stdin = nil
		got, err := Resume(timeout(t), st, res.Run.ID, cfg, "")
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]store.RunState{store.RunCrawling, store.RunDone}, st.take()); diff != "" {
			t.Errorf("states recorded by the resume (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want.Counts, got.Counts); diff != "" {
			t.Errorf("counts of the resumed run (-uninterrupted +resumed):\n%s", diff)
		}
		if got.Run.ListSHA256 != want.Run.ListSHA256 || got.Run.Skipped != want.Run.Skipped || got.Run.Duplicates != want.Run.Duplicates {
			t.Errorf("resumed run %+v, want the list, skipped lines and duplicates of %+v", got.Run, want.Run)
		}
	})
}

// TestEarlySummary: a run whose summary starts when its DNS stage ends (EarlySummary 1,
// no EarlyLeft) leaves the domain whose probes are not done to the run's end, and
// writes the summary that a summary built after the run writes.
func TestEarlySummary(t *testing.T) {
	ctx := timeout(t)
	st := openStore(t, "early.db")
	cfg := probeConfig(t)
	cfg.EarlySummary, cfg.EarlyLeft = 1, -1
	logs := &watchLog{msg: `"msg":"summary: the final domains while the last probes run"`, seen: make(chan struct{})}
	cfg.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	// lo.test's measurements are saved once the early summary has begun, so that it
	// finds them left: a flush of the measure stage's writer (every 500 ms) between its
	// last probe and the early summary's start made the test fail about once in 15.
	st.beforeMeasure = func() {
		select {
		case <-logs.seen:
		case <-ctx.Done():
		}
	}
	res, err := Start(ctx, st, cfg, Meta{Vantage: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"msg":"summary: the final domains while the last probes run"`) ||
		!strings.Contains(logs.String(), `"deferred":1,`) {
		t.Fatalf("no early summary leaving lo.test to the end in the log:\n%s", logs.String())
	}
	snapshot := func() string {
		s, err := st.DomainSummary(ctx, res.Run.ID, "lo.test")
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		fmt.Fprintf(&out, "%+v\n", s)
		for _, kind := range []string{"run", "tld"} {
			gs, err := st.Aggregates(ctx, res.Run.ID, kind)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&out, "%+v\n", gs)
		}
		d, err := st.Domain(ctx, res.Run.ID, "", "lo.test")
		if err != nil {
			t.Fatal(err)
		}
		js, err := json.Marshal(d.Addrs)
		if err != nil {
			t.Fatal(err)
		}
		out.Write(js)
		return out.String()
	}
	early := snapshot()
	if !strings.Contains(early, "Measured:1") {
		t.Errorf("the early summary's run aggregate does not count lo.test measured:\n%s", early)
	}
	if err := summary.Build(ctx, st, res.Run.ID, nil); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(snapshot(), early); diff != "" {
		t.Errorf("summary of the run (-rebuilt +early):\n%s", diff)
	}
}

// TestResumeLocked resumes a run whose crawl lock another crawl holds (one still
// running, or still stopping): the resume is refused with ErrRunLocked, having sent
// no query and recorded no state; once the lock is let go, it resumes the run to its
// end.
func TestResumeLocked(t *testing.T) {
	const n = 40
	ctx := timeout(t)
	resolver, soa := syntheticServer(t, n)
	st := openStore(t, "locked.db")
	cfg := dnsConfig(t, resolver, "-")
	cfg.Stdin = strings.NewReader(syntheticList(n))
	created, err := Create(ctx, st, cfg, Meta{Vantage: "test"})
	if err != nil {
		t.Fatal(err)
	}
	st.take()
	unlock, err := st.LockRun(ctx, created.Run.ID, "test")
	if err != nil {
		t.Fatal(err)
	}
	resume := dnsConfig(t, resolver, "")
	if _, err := Resume(ctx, st, 0, resume, ""); !errors.Is(err, store.ErrRunLocked) {
		t.Errorf("resume of a locked run: %v, want ErrRunLocked", err)
	}
	if states := st.take(); len(states) != 0 {
		t.Errorf("the refused resume recorded %v", states)
	}
	if c := soa.count("d1.com"); c != 0 {
		t.Errorf("the refused resume sent %d SOA queries for d1.com", c)
	}
	unlock()
	res, err := Resume(ctx, st, 0, resume, "")
	if err != nil || res.Run.State != store.RunDone || res.Counts.Done != n {
		t.Errorf("resume after the unlock: %v, state %s, %d done; want done, %d", err, res.Run.State, res.Counts.Done, n)
	}
}

// TestFindNegative: a negative run id is an error, not the latest run (0).
func TestFindNegative(t *testing.T) {
	ctx := timeout(t)
	st := openStore(t, "find.db")
	id, err := st.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "l", State: store.RunInterrupted})
	if err != nil {
		t.Fatal(err)
	}
	if run, err := Find(ctx, st, 0); err != nil || run.ID != id {
		t.Errorf("Find(0) = run %d, %v; want the latest, %d", run.ID, err, id)
	}
	want := "run -3: want a run id of 1 or more (0: the latest run)"
	if run, err := Find(ctx, st, -3); err == nil || err.Error() != want {
		t.Errorf("Find(-3) = run %d, %v; want the error %q", run.ID, err, want)
	}
}

// TestSaveErrorInterrupts fails every save of a run's domains: the run ends at once
// with that error, interrupted (a resume goes on from what was saved), having asked
// few of its domains' SOA rather than every one.
func TestSaveErrorInterrupts(t *testing.T) {
	const n = 2000
	ctx := timeout(t)
	resolver, soa := syntheticServer(t, n)
	st := openStore(t, "saveerr.db")
	st.saveErr = errors.New("disk full")
	cfg := dnsConfig(t, resolver, "-")
	cfg.Stdin = strings.NewReader(syntheticList(n))
	_, err := Start(ctx, st, cfg, Meta{Vantage: "test"})
	if !errors.Is(err, st.saveErr) {
		t.Fatalf("Start = %v, want %v", err, st.saveErr)
	}
	if diff := cmp.Diff([]store.RunState{store.RunLoading, store.RunCrawling, store.RunInterrupted}, st.take()); diff != "" {
		t.Errorf("states recorded (-want +got):\n%s", diff)
	}
	asked := 0
	for i := 1; i <= n; i++ {
		if soa.count(fmt.Sprintf("d%d.com", i)) > 0 {
			asked++
		}
	}
	t.Logf("SOA asked of %d of %d domains", asked, n)
	if asked > n/4 {
		t.Errorf("SOA asked of %d of %d domains after the first save failed, want fewer than %d", asked, n, n/4)
	}
}

// TestInterruptedMidStatement: interrupted while the list loads, the store answers with
// the error database/sql gives a statement of the transaction the cancellation rolled
// back ("sql: statement is closed"), not the context's: the run is interrupted all the
// same (it was recorded failed, and the command exited 1 instead of 130, now and then).
func TestInterruptedMidStatement(t *testing.T) {
	const n = 40
	ctx, cancel := context.WithCancel(timeout(t))
	defer cancel()
	resolver, _ := syntheticServer(t, n)
	st := openStore(t, "mid.db")
	st.beforeAdd, st.addErr = cancel, fmt.Errorf("add domain d1.com: %w", errors.New("sql: statement is closed"))
	cfg := dnsConfig(t, resolver, "-")
	cfg.Stdin = strings.NewReader(syntheticList(n))
	_, err := Start(ctx, st, cfg, Meta{Vantage: "test"})
	var ie *InterruptedError
	if !errors.As(err, &ie) || ie.Stage != store.RunLoading || ie.State != store.RunInterrupted {
		t.Fatalf("Start: %v, want interrupted while loading", err)
	}
}

// TestDamagedListCopy: the run's stored copy of its list cannot be read (a damaged
// store): the run is failed with the reason, not left loading.
func TestDamagedListCopy(t *testing.T) {
	ctx := timeout(t)
	resolver, _ := syntheticServer(t, 10)
	st := openStore(t, "damaged.db")
	st.openErr = errors.New("database disk image is malformed")
	cfg := dnsConfig(t, resolver, "-")
	cfg.Stdin = strings.NewReader(syntheticList(10))
	res, err := Start(ctx, st, cfg, Meta{Vantage: "test"})
	if err == nil || !strings.Contains(err.Error(), "malformed") || !strings.Contains(err.Error(), "stored copy") {
		t.Errorf("Start: %v, want the store's error about the list's stored copy", err)
	}
	got, gerr := st.GetRun(ctx, res.Run.ID)
	if gerr != nil || got.State != store.RunFailed {
		t.Errorf("run %+v (%v), want failed", got, gerr)
	}
}
