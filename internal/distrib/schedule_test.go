package distrib

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/v6matrix/v6matrix/internal/run"
)

func TestParseSchedule(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		spec, err    string
		now          string
		next, period string
	}{
		{spec: "monthly@1T03:00", now: "2026-12-06T09:00:00Z", next: "2027-01-01T03:00:00Z", period: "2026-12-01T03:00:00Z"},
		{spec: "monthly@1T03:00", now: "2026-12-01T03:00:00Z", next: "2027-01-01T03:00:00Z", period: "2026-12-01T03:00:00Z"},
		{spec: "monthly@1T03:00", now: "2026-12-01T02:59:59Z", next: "2026-12-01T03:00:00Z", period: "2026-11-01T03:00:00Z"},
		{spec: "monthly@28T23:59", now: "2027-01-10T00:00:00Z", next: "2027-01-28T23:59:00Z", period: "2026-12-28T23:59:00Z"},
		{spec: "monthly@15T00:00", now: "2027-03-15T00:00:00+01:00", next: "2027-03-15T00:00:00Z", period: "2027-02-15T00:00:00Z"},
		{spec: "monthly@0T03:00", err: `schedule "monthly@0T03:00": day 0: want 1 to 28 (a day every month has)`},
		{spec: "monthly@31T03:00", err: `schedule "monthly@31T03:00": day 31: want 1 to 28 (a day every month has)`},
		{spec: "monthly@1T24:00", err: `schedule "monthly@1T24:00": time 24:00: want 00:00 to 23:59`},
		{spec: "monthly@1T03:60", err: `schedule "monthly@1T03:60": time 03:60: want 00:00 to 23:59`},
		{spec: "monthly@1T3:00", err: `schedule "monthly@1T3:00": want monthly@DTHH:MM (day D of every month at HH:MM UTC, e.g. monthly@1T03:00)`},
		{spec: "0 3 1 * *", err: `schedule "0 3 1 * *": want monthly@DTHH:MM (day D of every month at HH:MM UTC, e.g. monthly@1T03:00)`},
		{spec: "", err: `schedule "": want monthly@DTHH:MM (day D of every month at HH:MM UTC, e.g. monthly@1T03:00)`},
	} {
		s, err := ParseSchedule(c.spec)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("ParseSchedule(%q): %v, want error %q", c.spec, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseSchedule(%q): %v", c.spec, err)
			continue
		}
		if s.String() != c.spec {
			t.Errorf("ParseSchedule(%q).String() = %q", c.spec, s)
		}
		now := at(c.now)
		if got := s.Next(now); !got.Equal(at(c.next)) {
			t.Errorf("%s.Next(%s) = %s, want %s", c.spec, c.now, got, c.next)
		}
		if got := s.Period(now); !got.Equal(at(c.period)) {
			t.Errorf("%s.Period(%s) = %s, want %s", c.spec, c.now, got, c.period)
		}
	}
}

// every is a test's short schedule: a start every d.
type every time.Duration

func (e every) Next(t time.Time) time.Time   { return t.Truncate(time.Duration(e)).Add(time.Duration(e)) }
func (e every) Period(t time.Time) time.Time { return t.Truncate(time.Duration(e)) }

// TestScheduledRuns runs two workers with a schedule that starts every 2 s: each
// period starts one run (whichever worker is River's leader), of the list downloaded
// from a local HTTP server and stored with the run, its DNS shards enqueued; a job of
// a period enqueued again starts nothing.
func TestScheduledRuns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg := openPG(t, ctx)
	r := newRig(t, ctx)
	listBytes, err := os.ReadFile(r.list)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(listBytes) }))
	defer srv.Close()
	url := srv.URL + "/list.csv"
	q, err := Open(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	started := map[time.Time]int{} // StartRun calls by period
	startRun := func(ctx context.Context, period time.Time) (int64, error) {
		// A start is not cut short by the workers' stop at the end of the test, so that
		// every period has its run (an interrupted start keeps its claim, see Work).
		ctx = context.WithoutCancel(ctx)
		mu.Lock()
		started[period]++
		mu.Unlock()
		res, err := run.Create(ctx, pg, run.Config{List: url}, run.Meta{Vantage: "test"})
		if err != nil {
			return 0, err
		}
		if _, err := q.Enqueue(ctx, res.Run.ID, 20); err != nil {
			return 0, err
		}
		return res.Run.ID, nil
	}
	cfg := Config{Vantage: "test", Setup: r.setup, Lease: 6 * time.Second, Heartbeat: 200 * time.Millisecond,
		Schedule: every(2 * time.Second), ScheduleName: "test list", StartRun: startRun}

	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := range 2 {
		w, err := New(pg, cfg)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := w.Run(wctx); err != nil {
				t.Errorf("worker %d: %v", i, err)
			}
		})
	}
	for {
		runs, err := ScheduledRuns(ctx, pg.Pool())
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) >= 3 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("scheduled runs after %v: %+v", time.Minute, runs)
		case <-time.After(200 * time.Millisecond):
		}
	}
	stop()
	wg.Wait()

	sched, err := ScheduledRuns(ctx, pg.Pool())
	if err != nil {
		t.Fatal(err)
	}
	runs, err := pg.ListRuns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != len(sched) {
		t.Errorf("%d runs for %d periods: %+v", len(runs), len(sched), sched)
	}
	seen := map[int64]bool{}
	for i, s := range sched {
		if s.Run == 0 || seen[s.Run] || s.Name != "test list" {
			t.Errorf("period %+v: want a run of its own", s)
		}
		seen[s.Run] = true
		if i > 0 && s.Period.Sub(sched[i-1].Period) != 2*time.Second {
			t.Errorf("periods %s then %s: want every 2s", sched[i-1].Period, s.Period)
		}
		if n := started[s.Period]; n != 1 {
			t.Errorf("period %s: StartRun called %d times", s.Period, n)
		}
		rr, err := pg.GetRun(ctx, s.Run)
		if err != nil {
			t.Fatal(err)
		}
		if rr.ListName != url {
			t.Errorf("run %d: list %q, want %q", rr.ID, rr.ListName, url)
		}
		f, err := pg.OpenList(ctx, s.Run)
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := io.ReadAll(f)
		f.Close()
		if string(stored) != string(listBytes) {
			t.Errorf("run %d: stored list %q, want the served file", s.Run, stored)
		}
		jobs, err := Progress(ctx, pg, s.Run)
		if err != nil {
			t.Fatal(err)
		}
		dns := 0
		for _, j := range jobs {
			if j.Stage == "dns" {
				dns += j.Jobs
			}
		}
		if want := (nDomains + 19) / 20; dns != want {
			t.Errorf("run %d: %d DNS jobs, want %d", s.Run, dns, want)
		}
	}

	// The period's job again: River's unique jobs skip it; enqueued all the same (not
	// unique), it starts nothing.
	first := ScheduledArgs{Name: "test list", Period: sched[0].Period}
	res, err := q.client.Insert(ctx, first, nil)
	if err != nil || !res.UniqueSkippedAsDuplicate {
		t.Errorf("period %s enqueued again: %+v, %v; want skipped as a duplicate", first.Period, res, err)
	}
	w, err := New(pg, cfg)
	if err != nil {
		t.Fatal(err)
	}
	job := &river.Job[ScheduledArgs]{JobRow: &rivertype.JobRow{ID: 1 << 40}, Args: first}
	if err := (&scheduledWorker{w: w}).Work(ctx, job); err != nil {
		t.Errorf("the period's job again: %v", err)
	}
	if again, err := pg.ListRuns(ctx); err != nil || len(again) != len(runs) {
		t.Errorf("after the period's job again: %d runs (%v), want %d", len(again), err, len(runs))
	}
	if started[first.Period] != 1 {
		t.Errorf("period %s: StartRun called %d times", first.Period, started[first.Period])
	}
}
