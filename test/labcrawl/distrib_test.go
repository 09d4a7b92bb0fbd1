package labcrawl_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/export"
	"github.com/v6matrix/v6matrix/internal/geoip"
	"github.com/v6matrix/v6matrix/internal/lab"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/store/pgtest"
)

// labWorker is a `v6matrix worker` running in the lab's vantage.
type labWorker struct {
	stop func(sig syscall.Signal)
	done chan struct{}
	code int
	err  error
	out  syncBuffer
}

// syncBuffer is a log written by a process and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startWorker(l *lab.Lab, argv []string) *labWorker {
	ctx, cancel := context.WithCancelCause(context.Background())
	w := &labWorker{done: make(chan struct{}), stop: func(sig syscall.Signal) { cancel(lab.SignalCause{Signal: sig}) }}
	go func() {
		defer close(w.done)
		w.code, w.err = l.Exec(ctx, argv, nil, &w.out, &w.out)
	}()
	return w
}

// TestLabDistributedKill is issue 11's done-criterion for the job queue: a distributed
// crawl of the lab (crawl --distributed and two workers in the vantage, PostgreSQL
// reached through the test cluster's Unix socket), one worker killed with SIGKILL part
// way: the run finishes, its exports are those of an uninterrupted single-process lab
// crawl but for timing fields, and no measurement is stored twice.
func TestLabDistributedKill(t *testing.T) {
	needLab(t)
	dsn := pgtest.DSN(t)
	l := startLab(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	list := filepath.Join(dir, "lab-domains.csv")
	if err := os.WriteFile(list, l.Scenario().DomainList(), 0o644); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(filepath.Join(l.StateDir(), "ca.pem"))
	if err != nil {
		t.Fatalf("lab CA: %v", err)
	}
	ca := filepath.Join(dir, "lab-ca.pem")
	if err := os.WriteFile(ca, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	city, asn, err := geoip.WriteFixtures(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	flags := []string{"--resolver", l.ResolverAddr().String(), "--allow-ranges", l.Scenario().AllowRangesArg(),
		"--tls-roots", ca, "--geoip-city", city, "--geoip-asn", asn, "--ehlo-name", ehloName, "--vantage", "lab", "--quiet"}
	exec := func(argv ...string) string {
		t.Helper()
		var out strings.Builder
		code, err := l.Exec(ctx, append([]string{bin}, argv...), nil, &out, &out)
		if err != nil || code != 0 {
			t.Fatalf("%s in the vantage: exit %d, %v\n%s", argv[0], code, err, out.String())
		}
		return out.String()
	}

	// The reference: one process, uninterrupted, into SQLite.
	refDB := filepath.Join(dir, "ref.db")
	start := time.Now()
	exec(append(append([]string{"crawl", "--db", refDB}, flags...), list)...)
	t.Logf("single-process lab crawl: %v", time.Since(start).Round(time.Second))

	start = time.Now()
	out := exec(append(append([]string{"crawl", "--db", dsn, "--distributed", "--shard", "4"}, flags...), list)...)
	t.Logf("crawl --distributed: %s", strings.TrimSpace(out))
	worker := []string{bin, "worker", "--db", dsn, "--vantage", "lab", "--lease", "60s", "--probe-jobs", "4"}
	victim, other := startWorker(l, worker), startWorker(l, worker)
	defer func() {
		for _, w := range []*labWorker{victim, other} {
			w.stop(syscall.SIGKILL)
			<-w.done
		}
	}()
	st, err := store.OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n := len(l.Scenario().Domains)
	for {
		c, err := st.Counts(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if c.Done >= n/3 {
			t.Logf("killing a worker at %d/%d domains done", c.Done, c.Total)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d/%d domains done when the test timed out\n%s", c.Done, c.Total, victim.out.String())
		case <-victim.done:
			t.Fatalf("worker exited (%d, %v)\n%s", victim.code, victim.err, victim.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	victim.stop(syscall.SIGKILL)
	<-victim.done
	if victim.code != 128+int(syscall.SIGKILL) {
		t.Errorf("killed worker exited %d (%v), want %d", victim.code, victim.err, 128+int(syscall.SIGKILL))
	}
	for {
		r, err := st.GetRun(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if r.State == store.RunDone {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("run 1 still %s when the test timed out\n%s", r.State, other.out.String())
		case <-other.done:
			t.Fatalf("worker exited (%d, %v)\n%s", other.code, other.err, other.out.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Logf("distributed lab crawl with a worker killed: %v", time.Since(start).Round(time.Second))
	other.stop(syscall.SIGTERM)
	<-other.done
	if other.code != 0 {
		t.Errorf("worker stopped by SIGTERM exited %d (%v), want 0\n%s", other.code, other.err, other.out.String())
	}

	var rows, distinct int
	if err := st.Pool().QueryRow(ctx, `SELECT count(*), count(DISTINCT (ip, kind)) FROM measurements WHERE run_id = 1`).Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	if rows != distinct || rows == 0 {
		t.Errorf("%d measurement rows for %d (address, kind) pairs: want each once", rows, distinct)
	}
	ref, err := store.Open(ctx, refDB)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	da, db := filepath.Join(dir, "ref"), filepath.Join(dir, "distributed")
	files, err := export.Write(ctx, ref, 1, da, export.Formats)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := export.Write(ctx, st, 1, db, export.Formats); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		a, b := untimed(t, f), untimed(t, filepath.Join(db, name))
		if diff := cmp.Diff(a, b); diff != "" {
			t.Errorf("%s differs but for timing fields (-single-process +distributed):\n%s", name, diff)
		}
	}
}

// pingColumns are ping.csv's RTT columns.
var pingColumns = []string{"min", "avg", "max", "std", "min6", "avg6", "max6", "std6"}

// clockRE and portRE find what no two crawls share in an error's text: the clock (a
// certificate "expired ... current time ...") and the local port of a connection.
var (
	clockRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	portRE  = regexp.MustCompile(`([\]\d]):\d+(->|-\\u003e)`) // JSON escapes > as \u003e
)

// untimed reads an exported file without what no two crawls share: the timing fields
// (JSON keys and CSV columns ending in _ms, ping.csv's RTT columns: RTTs and NTP
// offsets) and the clock readings and local ports in error texts.
func untimed(t *testing.T, file string) []string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ping := filepath.Base(file) == "ping.csv"
	timed := func(name string) bool {
		return strings.HasSuffix(name, "_ms") || ping && slices.Contains(pingColumns, name)
	}
	var out []string
	if strings.HasSuffix(file, ".jsonl") {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var v any
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			drop(v, timed)
			b, _ := json.Marshal(v)
			out = append(out, scrub(string(b)))
		}
		return out
	}
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var keep []int
	for i, h := range recs[0] {
		if !timed(h) {
			keep = append(keep, i)
		}
	}
	for _, r := range recs {
		var row []string
		for _, i := range keep {
			row = append(row, r[i])
		}
		out = append(out, scrub(strings.Join(row, ",")))
	}
	slices.Sort(out[1:])
	return out
}

// scrub replaces the clock readings and local ports of error texts.
func scrub(s string) string {
	return portRE.ReplaceAllString(clockRE.ReplaceAllString(s, "<clock>"), "$1:<port>$2")
}

// drop removes the keys that timed says are timing fields, at every depth.
func drop(v any, timed func(string) bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if timed(k) {
				delete(x, k)
				continue
			}
			drop(e, timed)
		}
	case []any:
		for _, e := range x {
			drop(e, timed)
		}
	}
}
