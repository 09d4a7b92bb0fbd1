package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/store/pgtest"
)

// TestWorkerSchedule starts two workers with a monthly schedule: the elected leader
// starts this month's run at once (a start missed while no worker ran is caught up),
// of the list downloaded from a local HTTP server, and the workers do it; a worker
// restarted in the same month starts nothing. Bad schedules and crawls are refused
// before anything starts.
func TestWorkerSchedule(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/list.csv" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte("1,d1.com\n2,d2.com\n3,d3.com\n"))
	}))
	defer srv.Close()
	url := srv.URL + "/list.csv"
	resolver, _ := syntheticServer(t, 20)
	dsn := pgtest.DSN(t)
	base := []string{"worker", "--db", dsn, "--vantage", "test", "--lease", "10s"}
	crawl := []string{"--", "--resolver", resolver, "--probes", "none", "--quiet", url}

	for _, c := range []struct {
		args []string
		want string
	}{
		{append(append(base, "--schedule", "monthly@31T03:00"), crawl...), `--schedule: schedule "monthly@31T03:00": day 31: want 1 to 28`},
		{append(base, "--schedule", "monthly@1T03:00"), "--schedule monthly@1T03:00: give the crawl to start after --"},
		{append(base, "--schedule", "monthly@1T03:00", "--", "--db", dsn, url), "the crawl after -- takes no --db"},
		{append(base, "--schedule", "monthly@1T03:00", "--", "--rate", "-3", url), "--schedule: the crawl after --: "},
		{append(base, url), `unexpected argument "` + url + `"`},
	} {
		r := runBinary(t, c.args...)
		if r.code == 0 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want an error with %q", strings.Join(c.args[5:], " "), r.code, r.stderr, c.want)
		}
	}
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	nRuns := func() int {
		t.Helper()
		runs, err := st.ListRuns(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(runs)
	}
	if n := nRuns(); n != 0 {
		t.Fatalf("%d runs after refused workers", n)
	}

	args := append(append(base, "--schedule", "monthly@1T03:00"), crawl...)
	a, b := startCrawl(t, args...), startCrawl(t, args...)
	for deadline := time.Now().Add(30 * time.Second); nRuns() == 0; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no run started within 30s:\n%s\n%s", a.stderr.String(), b.stderr.String())
		}
	}
	waitState(t, dsn, store.RunDone, time.Minute, a)
	stop := func(c *child) {
		t.Helper()
		c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.exited:
			if c.err != nil {
				t.Errorf("worker stopped by SIGTERM: %v\n%s", c.err, c.stderr.String())
			}
		case <-time.After(time.Minute):
			t.Fatal("worker did not stop within a minute of SIGTERM")
		}
	}
	stop(a)
	stop(b)
	logs := a.stderr.String() + b.stderr.String()
	if n := strings.Count(logs, "scheduled run started"); n != 1 {
		t.Errorf("%d scheduled runs started, want 1:\n%s", n, logs)
	}
	// Restarted in the same month: the leader enqueues the month's job again, a duplicate.
	c := startCrawl(t, args...)
	time.Sleep(4 * time.Second)
	stop(c)
	runs := listRuns(t, dsn)
	if len(runs) != 1 || runs["1"].Done != "3" {
		t.Errorf("runs after the scheduled run: %+v, want run 1, 3 domains done", runs)
	}
	if r, err := st.GetRun(context.Background(), 1); err != nil || r.ListName != url {
		t.Errorf("run 1: list %q, %v; want %s", r.ListName, err, url)
	}
	if strings.Contains(c.stderr.String(), "scheduled run started") {
		t.Errorf("restarted worker started a run:\n%s", c.stderr.String())
	}
}
