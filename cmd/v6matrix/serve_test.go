package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/store/pgtest"
	"github.com/v6matrix/v6matrix/internal/synthrun"
)

// lineBuffer hands the lines the server prints to the test.
type lineBuffer struct {
	ch chan string
}

func (b lineBuffer) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		select {
		case b.ch <- l:
		default:
		}
	}
	return len(p), nil
}

// startServe runs serve of db in the test's process until ctx ends, and returns the
// base URL it prints, its exit code's channel and its stderr.
func startServe(t *testing.T, ctx context.Context, db string) (string, <-chan int, *bytes.Buffer) {
	t.Helper()
	out := lineBuffer{ch: make(chan string, 16)}
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, []string{"serve", "--db", db, "--listen", "127.0.0.1:0", "--quiet"}, out, &stderr)
	}()
	select {
	case l := <-out.ch:
		u, ok := strings.CutPrefix(l, "serving on ")
		if !ok {
			t.Fatalf("first line %q", l)
		}
		base, _, _ := strings.Cut(u, " ")
		return strings.TrimSuffix(base, "/"), done, &stderr
	case code := <-done:
		t.Fatalf("serve exited %d: %s", code, stderr.String())
	case <-time.After(20 * time.Second):
		t.Fatal("serve printed no address in 20 s")
	}
	return "", nil, nil
}

// waitServe waits for serve to stop after its context's end: exit 0 (or 130).
func waitServe(t *testing.T, done <-chan int, stderr *bytes.Buffer) {
	t.Helper()
	select {
	case code := <-done:
		if code != 0 && code != 130 {
			t.Errorf("serve exited %d after cancellation: %s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop within 10 s")
	}
}

// TestServe: serve summarises a finished run that has no summary yet, serves it on the
// address it prints, and stops cleanly on cancellation; a missing database is an error
// that names it and creates nothing.
func TestServe(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "s.db")
	st, err := store.OpenSQLite(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := synthrun.Fill(context.Background(), st, synthrun.Config{Domains: 300, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, done, stderr := startServe(t, ctx, db)
	// The run gets its summary in the background: the Matrix appears within seconds.
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/api/v1/runs/latest/tlds?format=csv")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 && strings.Contains(string(body), "\ncom,") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no Matrix after 20 s: %d %s", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// /metrics counts the requests above by route and code.
	m, err := scrape(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if n := m[`v6matrix_http_request_duration_seconds_count{code="200",route="api_tlds"}`]; n < 1 {
		t.Errorf("/metrics: %v successful requests of the TLD API, want 1 or more; has %d series", n, len(m))
	}
	cancel()
	waitServe(t, done, stderr)

	missing := filepath.Join(dir, "nope.db")
	var e bytes.Buffer
	if code := dispatch(context.Background(), []string{"serve", "--db", missing}, io.Discard, &e); code != 1 ||
		!strings.Contains(e.String(), missing) || !strings.Contains(e.String(), "crawl first") {
		t.Errorf("serve of a missing database: exit %d, %q", code, e.String())
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("serve of a missing database created it")
	}
}

// TestServeDistributedJobs: serve of a PostgreSQL database shows the jobs of a
// distributed run in progress on /runs and /api/v1/runs, as `v6matrix runs` does.
func TestServeDistributedJobs(t *testing.T) {
	dsn := pgtest.DSN(t)
	dir := t.TempDir()
	list, _ := writeList(t, dir, 30)
	exclude := filepath.Join(dir, "exclude.txt")
	if err := os.WriteFile(exclude, []byte(syntheticRanges), 0o644); err != nil {
		t.Fatal(err)
	}
	// Nothing is resolved: the run is only queued, for workers that do not run.
	mustRun(t, append(crawlFlags(dsn, "127.0.0.1:53", exclude), "--distributed", "--shard", "10", list)...)
	if out := mustRun(t, "runs", "--db", dsn).stdout; !strings.Contains(out, "1    dns    -        available  3") {
		t.Fatalf("runs shows no queued DNS jobs:\n%s", out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, done, stderr := startServe(t, ctx, dsn)
	for path, want := range map[string]string{
		"/runs":                   `<td>dns</td><td>-</td><td class="num">0 of 3</td>`,
		"/api/v1/runs":            `"jobs":[{"stage":"dns","vantage":"","done":0,"total":3,"running":0,"available":3,`,
		"/api/v1/runs?format=csv": ",dns 0/3 (available 3)\n",
	} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d, want %q in\n%s", path, resp.StatusCode, want, body)
		}
	}
	cancel()
	waitServe(t, done, stderr)
}
