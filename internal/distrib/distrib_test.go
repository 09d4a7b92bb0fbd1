package distrib

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/v6matrix/v6matrix/internal/crawl"
	"github.com/v6matrix/v6matrix/internal/dnssrv"
	"github.com/v6matrix/v6matrix/internal/export"
	"github.com/v6matrix/v6matrix/internal/measure"
	"github.com/v6matrix/v6matrix/internal/pipeline"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/run"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/store/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// nDomains of the test tree: d<i>.o.test, zones of their own on two name servers (on
// two /24s of 127.0.0.0/8), each with a www host on one of four /24s of 127.3.0.0/16
// and one of three /48s of 2001:db8::/32, and the mx host in common.
const nDomains = 60

const soa = "@ 300 IN SOA ns.o.test. hostmaster 1 7200 900 1209600 300\n"

// treeConfig is the delegation tree of the test zones on loopback.
func treeConfig() dnssrv.TreeConfig {
	var o strings.Builder
	o.WriteString(soa + "@ IN NS ns\nns IN A 127.77.3.1\nns2 IN A 127.78.3.1\nmx IN A 127.3.200.1\n")
	zones := map[string]string{}
	for i := range nDomains {
		fmt.Fprintf(&o, "d%d IN NS ns\nd%d IN NS ns2\n", i, i)
		zones[fmt.Sprintf("d%d.o.test.", i)] = soa + fmt.Sprintf(
			"@ IN NS ns.o.test.\n@ IN NS ns2.o.test.\n@ IN MX 10 mx.o.test.\nwww IN A 127.3.%d.%d\nwww IN AAAA 2001:db8:%x::%x\n",
			i%4, i+1, 3+i%3, i+1)
	}
	oZones := map[string]string{"o.test.": o.String()}
	for k, v := range zones {
		oZones[k] = v
	}
	return dnssrv.TreeConfig{Servers: []dnssrv.TreeServer{
		{Name: "a.root", Addr: netip.MustParseAddr("127.77.1.1"), Zones: map[string]string{".": soa + `
.             IN NS a.root.
a.root.       IN A  127.77.1.1
test.         IN NS a.nic.test.
a.nic.test.   IN A  127.77.2.1
`}},
		{Name: "a.nic.test", Addr: netip.MustParseAddr("127.77.2.1"), Zones: map[string]string{"test.": soa + `
@        IN NS a.nic
a.nic    IN A  127.77.2.1
o        IN NS ns.o
ns.o     IN A  127.77.3.1
`}},
		{Name: "ns.o.test", Addr: netip.MustParseAddr("127.77.3.1"), Zones: oZones},
		{Name: "ns2.o.test", Addr: netip.MustParseAddr("127.78.3.1"), Zones: zones},
	}}
}

// fakeProbes answers every kind without sending anything, and counts the calls.
type fakeProbes struct {
	mu    sync.Mutex
	calls map[string]int // "ip kind" (or "zone ip dns53")
	first time.Time      // of the first call
	slow  time.Duration  // how long the first call takes
}

func (f *fakeProbes) funcs() map[string]measure.ProbeFunc {
	out := map[string]measure.ProbeFunc{}
	for _, k := range result.Kinds {
		out[k] = func(ctx context.Context, t measure.Target) (any, error) {
			key := t.IP.String() + " " + k
			if t.NSZone != "" {
				key = t.NSZone + " " + key
			}
			f.mu.Lock()
			var wait time.Duration
			if f.first.IsZero() {
				f.first, wait = time.Now(), f.slow
			}
			f.calls[key]++
			f.mu.Unlock()
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return map[string]string{"fake": k, "www": t.WWW, "mx": t.MX, "host": t.Host, "zone": t.NSZone}, nil
		}
	}
	return out
}

// rig is a loopback DNS server of the test zone, a list of it, and the stages'
// configuration with fake probes (nothing is sent beyond loopback).
type rig struct {
	resolver netip.AddrPort
	list     string
	mu       sync.Mutex
	fakes    map[int64]*fakeProbes
}

func newRig(t *testing.T, ctx context.Context) *rig {
	t.Helper()
	tree, err := dnssrv.StartTree(ctx, treeConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	var b strings.Builder
	for i := range nDomains {
		fmt.Fprintf(&b, "%d,d%d.o.test\n", i+1, i)
	}
	list := filepath.Join(t.TempDir(), "list.csv")
	if err := os.WriteFile(list, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return &rig{resolver: tree.RecursorAddr, list: list, fakes: map[int64]*fakeProbes{}}
}

// fake returns the fake probes of a run.
func (r *rig) fake(run int64) *fakeProbes {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fakes[run] == nil {
		r.fakes[run] = &fakeProbes{calls: map[string]int{}}
	}
	return r.fakes[run]
}

// setup is a run's configuration: the loopback resolver, fake probes, no limit that
// slows a test.
func (r *rig) setup(_ context.Context, run store.Run) (*Setup, error) {
	rc := resolve.DefaultConfig()
	rc.Servers = []netip.AddrPort{r.resolver} // never /etc/resolv.conf
	rc.Timeout, rc.Retries = time.Second, 2
	client, err := resolve.NewClient(rc)
	if err != nil {
		return nil, err
	}
	dc := crawl.DefaultConfig()
	dc.Concurrency, dc.BatchSize, dc.FlushEvery = 4, 5, 10*time.Millisecond
	mc := measure.DefaultConfig()
	mc.Probes = r.fake(run.ID).funcs()
	mc.Gate, err = polite.NewGate([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}, nil)
	if err != nil {
		return nil, err
	}
	mc.EHLOName, mc.UserAgent = "crawler.test", "v6matrix/test (+https://crawler.test/)"
	mc.Polite.AddrGap, mc.Polite.NetGap, mc.Polite.PortWindow, mc.Polite.Rate = 0, 0, 0, math.Inf(1)
	mc.NSCheck.AddrGap = 0
	mc.DNS = client
	return &Setup{DNS: dc, Client: client, Probe: &mc, Close: func() { client.Close() }}, nil
}

// runConfig is the single-process run of the same setup.
func (r *rig) runConfig(t *testing.T, s *Setup) run.Config {
	t.Cleanup(s.Close)
	return run.Config{DNS: s.DNS, Client: s.Client, Probe: s.Probe, List: r.list, SkipSummary: true}
}

// openPG opens a fresh PostgreSQL database.
func openPG(t *testing.T, ctx context.Context) *store.Postgres {
	t.Helper()
	pg, err := store.OpenPostgres(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	return pg
}

// waitDone waits until the run is done.
func waitDone(t *testing.T, ctx context.Context, pg *store.Postgres, id int64) {
	t.Helper()
	for {
		r, err := pg.GetRun(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.State == store.RunDone {
			return
		}
		select {
		case <-ctx.Done():
			jobs, _ := Progress(context.Background(), pg, id)
			t.Fatalf("run %d still %s: jobs %+v", id, r.State, jobs)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startWorkers runs n workers of vantage test until the test ends.
func startWorkers(t *testing.T, pg *store.Postgres, n int, cfg Config) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for i := range n {
		w, err := New(pg, cfg)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := w.Run(ctx); err != nil {
				t.Errorf("worker %d: %v", i, err)
			}
		})
	}
}

// pair runs the rig's list once in one process into refPG (whose fake probes are those
// of run 0) and creates the same run in pg for the queue, returning the single-process
// run, the distributed run's id and the queue. The single-process run takes meta's
// vantage, without its options.
func (r *rig) pair(t *testing.T, ctx context.Context, refPG, pg *store.Postgres, meta run.Meta) (run.Result, int64, *Queue) {
	t.Helper()
	s, err := r.setup(ctx, store.Run{ID: 0})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := run.Start(ctx, refPG, r.runConfig(t, s), run.Meta{Vantage: meta.Vantage})
	if err != nil {
		t.Fatal(err)
	}
	if s, err = r.setup(ctx, store.Run{ID: -1}); err != nil {
		t.Fatal(err)
	}
	created, err := run.Create(ctx, pg, r.runConfig(t, s), meta)
	if err != nil {
		t.Fatal(err)
	}
	q, err := Open(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	return ref, created.Run.ID, q
}

// TestDistributedRun runs a list once in one process and once on the queue with two
// workers, one of whose job commits "crashes" once (a DNS shard and a probe job): the
// distributed run is done with the same exports, every stage's jobs completed, and no
// row twice. The DNS shards' commits are slowed so that the stage lasts a few seconds:
// probe jobs run beside it, on three buckets that the shards keep adding to. The first
// probe lasts longer than the rest of the DNS stage: its job, still running when the
// last shards add to its bucket and the plan raises it, must not complete without them.
func TestDistributedRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	refPG, pg := openPG(t, ctx), openPG(t, ctx)
	r := newRig(t, ctx)

	ref, id, q := r.pair(t, ctx, refPG, pg, run.Meta{Vantage: "test"})
	shards, err := q.Enqueue(ctx, id, 7)
	if err != nil {
		t.Fatal(err)
	}
	if want := (nDomains + 6) / 7; shards != want {
		t.Errorf("%d shards enqueued, want %d", shards, want)
	}
	if again, err := q.Enqueue(ctx, id, 7); err != nil || again != shards {
		t.Errorf("enqueued again: %d shards (%v), want the same %d (unique jobs: nothing new)", again, err, shards)
	}

	r.fake(id).slow = 6 * time.Second
	var crashMu sync.Mutex
	crashed := map[string]bool{}
	cfg := Config{Vantage: "test", Setup: r.setup, Lease: 6 * time.Second, Heartbeat: 200 * time.Millisecond,
		beforeCommit: func(kind string, attempt int) error {
			crashMu.Lock()
			defer crashMu.Unlock()
			if (kind == kindDNS || kind == kindProbe) && !crashed[kind] {
				crashed[kind] = true
				return fmt.Errorf("simulated crash before the commit of a %s job", kind)
			}
			if kind == kindDNS {
				time.Sleep(800 * time.Millisecond) // under the run's lock: 7 s for the shards
			}
			return nil
		},
		// No probe job looks whether its stage is over: the workers' sweep finds it.
		lostAfterCommit: func(kind string) bool { return kind == kindProbe },
		buckets:         3,
		// Made available by River's scheduler (every 5 s) while the shards go on.
		bucketWait: 200 * time.Millisecond,
	}
	var progress [2]pipeline.Progress
	for i := range progress {
		c := cfg
		c.Progress = &progress[i]
		startWorkers(t, pg, 1, c)
	}
	waitDone(t, ctx, pg, id)
	// The workers' counters (their metrics) add up to the run, but for the shard whose
	// commit crashed, saved by its retry.
	dns := progress[0].DNS.Done.Load() + progress[1].DNS.Done.Load()
	probes := progress[0].Probe.Done.Load() + progress[1].Probe.Done.Load()
	if dns != nDomains || probes < int64(len(r.fake(id).calls)) {
		t.Errorf("workers' counters: %d domains, %d probes done; want %d domains and at least the %d probes made", dns, probes, nDomains, len(r.fake(id).calls))
	}

	crashMu.Lock()
	if !crashed[kindDNS] || !crashed[kindProbe] {
		t.Errorf("crashes simulated: %v, want a DNS and a probe job", crashed)
	}
	crashMu.Unlock()
	sameExport(t, refPG, ref.Run.ID, pg, id)
	sameRows(t, ctx, refPG, ref.Run.ID, pg, id)
	// Every probe was sent once, but for the crashed probe job's, which were sent again.
	refCalls, calls := r.fake(0).calls, r.fake(id).calls
	if len(calls) != len(refCalls) {
		t.Errorf("%d (address, kind) probed in the distributed run, %d in the single-process one", len(calls), len(refCalls))
	}
	again := 0
	for k, n := range calls {
		if n > 2 || refCalls[k] != 1 {
			t.Errorf("%s: probed %d times (single-process: %d)", k, n, refCalls[k])
		}
		if n == 2 {
			again++
		}
	}
	t.Logf("%d of %d (address, kind) probed again after the simulated crash", again, len(calls))

	jobs, err := Progress(ctx, pg, id)
	if err != nil {
		t.Fatal(err)
	}
	stages := map[string]int{}
	for _, j := range jobs {
		if j.State != "completed" {
			t.Errorf("job left %+v", j)
		}
		stages[j.Stage] += j.Jobs
	}
	// 4 /24s and 3 /48s of www hosts, the mx's /24 and the name servers' two, in three
	// buckets: a job of each at least, more for those that shards added to after their
	// job had completed.
	probeJobs := stages["probe"]
	delete(stages, "probe")
	if diff := cmp.Diff(map[string]int{"dns": shards, "plan": 1, "finish": 1}, stages); diff != "" {
		t.Errorf("jobs by stage (-want +got):\n%s", diff)
	}
	if probeJobs < 3 {
		t.Errorf("%d probe jobs, want one of each of the 3 buckets at least", probeJobs)
	}
	// The probes overlapped the DNS stage.
	var lastShard time.Time
	if err := pg.Pool().QueryRow(ctx, `SELECT max(finalized_at) FROM river_job WHERE kind = $1`, kindDNS).Scan(&lastShard); err != nil {
		t.Fatal(err)
	}
	firstProbe := r.fake(id).first
	if !firstProbe.Before(lastShard) {
		t.Errorf("the first probe at %v, after the last DNS shard's end at %v: no overlap", firstProbe, lastShard)
	}
	t.Logf("%d probe jobs; the first probe %v before the DNS stage's end", probeJobs, lastShard.Sub(firstProbe))
	var left int
	if err := pg.Pool().QueryRow(ctx, `SELECT (SELECT count(*) FROM v6matrix_buckets WHERE run_id = $1)
		+ (SELECT count(*) FROM v6matrix_bucket_ips WHERE run_id = $1)`, id).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d bucket rows left after the run (%v), want none", left, err)
	}
}

// TestPlanBetweenReads lets the plan commit while a probe job begun beside the DNS
// stage is between its reads of its bucket and of the run. The job must not complete
// on what it read before the plan: it saw the DNS stage, so it checked no name server
// (their checks wait for the plan), and the plan's job of its bucket was the running
// job itself. With one bucket, that job holds every address: the distributed run must
// still make every check of the single-process run.
func TestPlanBetweenReads(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	refPG, pg := openPG(t, ctx), openPG(t, ctx)
	r := newRig(t, ctx)
	ref, id, q := r.pair(t, ctx, refPG, pg, run.Meta{Vantage: "test"})
	if _, err := q.Enqueue(ctx, id, 7); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var beside atomic.Bool // the held job began while the DNS stage ran
	cfg := Config{Vantage: "test", Setup: r.setup, Lease: 30 * time.Second, Heartbeat: 200 * time.Millisecond,
		beforeCommit: func(kind string, _ int) error {
			if kind == kindDNS {
				time.Sleep(500 * time.Millisecond) // 9 shards: ~5 s of DNS stage
			}
			return nil
		},
		buckets: 1, bucketWait: -1,
		betweenReads: func(int32) {
			once.Do(func() {
				for i := 0; ctx.Err() == nil; i++ {
					run, err := pg.GetRun(ctx, id)
					if err == nil && run.State == store.RunProbing {
						beside.Store(i > 0)
						return
					}
					time.Sleep(50 * time.Millisecond)
				}
			})
		},
	}
	startWorkers(t, pg, 1, cfg)
	waitDone(t, ctx, pg, id)
	if !beside.Load() {
		t.Fatal("the first probe job began after the plan: nothing was tested (slow the DNS shards more)")
	}
	sameExport(t, refPG, ref.Run.ID, pg, id)
	sameRows(t, ctx, refPG, ref.Run.ID, pg, id)
}

// sameRows compares the rows of two runs' tables, which must hold some.
func sameRows(t *testing.T, ctx context.Context, refPG *store.Postgres, refID int64, pg *store.Postgres, id int64) {
	t.Helper()
	for _, table := range []string{"domains", "hosts", "addresses", "targets", "ns_targets", "measurements", "ns_checks"} {
		var a, b int
		q := fmt.Sprintf(`SELECT count(*) FROM %s WHERE run_id = $1`, table)
		if err := refPG.Pool().QueryRow(ctx, q, refID).Scan(&a); err != nil {
			t.Fatal(err)
		}
		if err := pg.Pool().QueryRow(ctx, q, id).Scan(&b); err != nil {
			t.Fatal(err)
		}
		if a != b || a == 0 {
			t.Errorf("%s: %d rows in the single-process run, %d in the distributed one", table, a, b)
		}
	}
}

// sameExport exports two runs and compares the files byte for byte.
func sameExport(t *testing.T, stA store.Store, runA int64, stB store.Store, runB int64) {
	t.Helper()
	ctx := context.Background()
	da, db := t.TempDir(), t.TempDir()
	files, err := export.Write(ctx, stA, runA, da, export.Formats)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := export.Write(ctx, stB, runB, db, export.Formats); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		wa, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		wb, err := os.ReadFile(filepath.Join(db, filepath.Base(f)))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(string(wa), string(wb)); diff != "" {
			t.Errorf("%s differs (-single-process +distributed):\n%s", filepath.Base(f), diff)
		}
	}
}

// TestResume resumes a distributed run: with its shards queued it enqueues nothing; with
// the last shard missing (crawl --distributed stopped while it enqueued) it enqueues
// that one; with a shard discarded (as River does when a job runs out of attempts), on
// which the run waits with everything else completed, it retries it: the run is done,
// with the single-process run's export.
func TestResume(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	refPG, pg := openPG(t, ctx), openPG(t, ctx)
	r := newRig(t, ctx)
	ref, id, q := r.pair(t, ctx, refPG, pg, run.Meta{Vantage: "test"})
	if _, err := q.Enqueue(ctx, id, 10); err != nil {
		t.Fatal(err)
	}
	if retried, shards, err := q.Resume(ctx, id, 10); err != nil || retried != 0 || shards != 0 {
		t.Errorf("resume with the shards queued: %d retried, %d enqueued (%v), want none", retried, shards, err)
	}
	// As if crawl --distributed had stopped before it enqueued the last shard.
	if _, err := pg.Pool().Exec(ctx, `DELETE FROM river_job WHERE id = (SELECT max(id) FROM river_job WHERE kind = $1)`, kindDNS); err != nil {
		t.Fatal(err)
	}
	if retried, shards, err := q.Resume(ctx, id, 10); err != nil || retried != 0 || shards != 1 {
		t.Errorf("resume with the last shard missing: %d retried, %d enqueued (%v), want that shard", retried, shards, err)
	}
	if _, err := pg.Pool().Exec(ctx, `UPDATE river_job SET state = 'discarded', finalized_at = now()
		WHERE id = (SELECT min(id) FROM river_job WHERE kind = $1)`, kindDNS); err != nil {
		t.Fatal(err)
	}
	startWorkers(t, pg, 1, Config{Vantage: "test", Setup: r.setup, Lease: 6 * time.Second, Heartbeat: 200 * time.Millisecond})
	for {
		jobs, err := Progress(ctx, pg, id)
		if err != nil {
			t.Fatal(err)
		}
		// The probe jobs of the addresses found run beside the shards: the run waits
		// once they are done too.
		want := []JobCount{{Stage: "dns", State: "completed", Jobs: nDomains/10 - 1}, {Stage: "dns", State: "discarded", Jobs: 1}}
		var dns []JobCount
		open := 0
		for _, j := range jobs {
			if j.Stage == "dns" {
				dns = append(dns, j)
			} else if j.State != "completed" {
				open += j.Jobs
			}
		}
		if cmp.Equal(want, dns) && open == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("jobs %+v, want %+v", jobs, want)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if got, err := pg.GetRun(ctx, id); err != nil || got.State != store.RunCrawling {
		t.Fatalf("run with a discarded shard: %+v (%v), want crawling", got, err)
	}
	if retried, shards, err := q.Resume(ctx, id, 10); err != nil || retried != 1 || shards != 0 {
		t.Errorf("resume: %d retried, %d enqueued (%v), want the discarded shard retried", retried, shards, err)
	}
	waitDone(t, ctx, pg, id)
	sameExport(t, refPG, ref.Run.ID, pg, id)
}

// TestTwoVantages measures a distributed run from two vantages, one worker each: every
// probe job runs once per vantage, on that vantage's queue, and each vantage's export
// is the single-process run's.
func TestTwoVantages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	refPG, pg := openPG(t, ctx), openPG(t, ctx)
	r := newRig(t, ctx)
	ref, id, q := r.pair(t, ctx, refPG, pg, run.Meta{Vantage: "ams", Options: `{"vantages":["ams","nyc"]}`})
	if _, err := q.Enqueue(ctx, id, 20); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"ams", "nyc"} {
		startWorkers(t, pg, 1, Config{Vantage: v, Setup: r.setup, Lease: 6 * time.Second, Heartbeat: 200 * time.Millisecond})
	}
	waitDone(t, ctx, pg, id)
	da := t.TempDir()
	files, err := export.Write(ctx, refPG, ref.Run.ID, da, export.Formats)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"ams", "nyc"} {
		db := t.TempDir()
		if _, err := export.WriteVantage(ctx, pg, id, v, db, export.Formats); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			wa, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			wb, err := os.ReadFile(filepath.Join(db, filepath.Base(f)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(string(wa), string(wb)); diff != "" {
				t.Errorf("%s of vantage %s differs (-single-process +distributed):\n%s", filepath.Base(f), v, diff)
			}
		}
		var n int
		if err := pg.Pool().QueryRow(ctx, `SELECT count(*) FROM measurements WHERE run_id = $1 AND vantage = $2`, id, v).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			t.Errorf("no measurement from vantage %s", v)
		}
	}
	jobs, err := Progress(ctx, pg, id)
	if err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, j := range jobs {
		if j.Stage == "probe" {
			per[j.Vantage] += j.Jobs
		}
	}
	if per["ams"] == 0 || per["nyc"] == 0 {
		t.Errorf("probe jobs by vantage %v, want some for ams and nyc", per)
	}
	// The fake probes count each (address, kind) once per vantage.
	for k, n := range r.fake(id).calls {
		if n != 2 {
			t.Errorf("%s probed %d times, want once per vantage", k, n)
			break
		}
	}
}

// TestFileMissing files, as the plan does, the targets of a run that no shard filed in
// a bucket (here a single-process run's: it has no shards): each once, and none when
// asked again.
func TestFileMissing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pg := openPG(t, ctx)
	if err := Migrate(ctx, pg); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, ctx)
	s, err := r.setup(ctx, store.Run{ID: 0})
	if err != nil {
		t.Fatal(err)
	}
	res, err := run.Start(ctx, pg, r.runConfig(t, s), run.Meta{Vantage: "test"})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Run.ID
	count := func(table string) int {
		t.Helper()
		var n int
		if err := pg.Pool().QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s WHERE run_id = $1`, table), id).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	file := func() int {
		t.Helper()
		var n int
		if err := pgx.BeginFunc(ctx, pg.Pool(), func(tx pgx.Tx) error {
			var err error
			n, err = fileMissing(ctx, tx, id, s.Probe.Polite.Network, 3)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	targets := count("targets")
	if n := file(); n != targets || targets == 0 {
		t.Errorf("%d addresses filed, want the run's %d targets", n, targets)
	}
	if n := count("v6matrix_bucket_ips"); n != targets {
		t.Errorf("%d addresses in buckets, want %d", n, targets)
	}
	if n := file(); n != 0 {
		t.Errorf("%d addresses filed again, want none", n)
	}
}
