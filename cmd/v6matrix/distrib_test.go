package main

import (
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/store/pgtest"
)

// waitState polls run 1 until it is in state, within limit.
func waitState(t *testing.T, dsn string, state store.RunState, limit time.Duration, worker *child) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		got, done, total := runState(t, dsn)
		if got == state {
			return
		}
		if time.Now().After(deadline) {
			log := worker.stderr.String()
			t.Fatalf("run 1 still %s (%d/%d domains done) after %v, want %s\n%s\nworker's log ends:\n%s", got, done, total, limit, state,
				mustRun(t, "runs", "--db", dsn).stdout, log[max(0, len(log)-3000):])
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDistributedKill is the distributed mode's end-to-end check on loopback: crawl
// --distributed enqueues the synthetic list, two worker processes work it, one is
// killed with SIGKILL part way; River hands its jobs to the other after the lease, the
// run is done, and its export is byte for byte the uninterrupted single-process
// crawl's. Domains measured again are at most the killed worker's shards in flight.
func TestDistributedKill(t *testing.T) {
	r := uninterrupted(t)
	dsn := pgtest.DSN(t)
	const shard = 250
	res := mustRun(t, append(crawlFlags(dsn, r.resolver, r.exclude), "--distributed", "--shard", strconv.Itoa(shard), r.list)...)
	jobs := (r.domains + shard - 1) / shard
	if want := "run 1: " + strconv.Itoa(r.domains) + " domains in " + strconv.Itoa(jobs) + " DNS jobs queued\n"; !strings.HasPrefix(res.stdout, want) ||
		!strings.Contains(res.stdout, "v6matrix worker --db ") {
		t.Fatalf("crawl --distributed printed %q, want it to start with %q and say how to start a worker", res.stdout, want)
	}
	if state, done, _ := runState(t, dsn); state != store.RunCrawling || done != 0 {
		t.Fatalf("run 1 after crawl --distributed: %s with %d done, want crawling with none", state, done)
	}
	if out := mustRun(t, "runs", "--db", dsn).stdout; !strings.Contains(out, "1    dns    -        available  "+strconv.Itoa(jobs)) {
		t.Errorf("runs shows no queued DNS jobs:\n%s", out)
	}
	worker := []string{"worker", "--db", dsn, "--vantage", "test", "--lease", "10s", "--log-level", "debug"}
	metricsAddr := freeAddr(t)
	victim, other := startCrawl(t, worker...), startCrawl(t, append(worker, "--metrics-listen", metricsAddr)...)
	at := r.domains / 3
	waitDone(t, victim, dsn, at)
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	// Saved before the snapshot, so that a domain saved between them counts as asked.
	doneAtKill := doneDomains(t, dsn, r.domains)
	soaAtKill := r.soa.snapshot()
	n := 0
	for _, d := range doneAtKill {
		if d {
			n++
		}
	}
	t.Logf("one worker killed at %d/%d domains done", n, r.domains)
	if n >= r.domains {
		t.Fatalf("the kill landed after the DNS stage (%d domains done): make the list longer", n)
	}
	waitState(t, dsn, store.RunDone, 3*time.Minute, other)
	// The surviving worker's metrics count what it saved: most of the list.
	m, err := scrape("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	done := m[`v6matrix_dns_domains_done_total{vantage="test"}`]
	t.Logf("the surviving worker saved %v domains", done)
	if done < float64(r.domains-n) || done > float64(r.domains) {
		t.Errorf("surviving worker's v6matrix_dns_domains_done_total %v, want %d to %d", done, r.domains-n, r.domains)
	}
	if err := other.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-other.exited:
		if other.err != nil {
			t.Errorf("worker stopped by SIGTERM: %v, want exit 0\n%s", other.err, other.stderr.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("worker did not stop within a minute of SIGTERM")
	}
	checkNotRepeated(t, r.soa, doneAtKill, soaAtKill)
	if got := listRuns(t, dsn)["1"]; got != r.row {
		t.Errorf("distributed run in `runs`: %+v, want %+v as the single-process run", got, r.row)
	}
	out := t.TempDir()
	mustRun(t, "export", "--db", dsn, "--out", out)
	sameFiles(t, r.out, out)
}

// freeAddr returns a loopback address with a port free now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
