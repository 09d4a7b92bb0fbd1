package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/distrib"
	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/store/pgtest"
)

// distributedRun creates a crawling run of n domains in a fresh PostgreSQL database and
// enqueues its DNS shards of shard domains, with no worker: the jobs wait, available.
func distributedRun(t *testing.T, ctx context.Context, n, shard int) (*store.Postgres, int64) {
	t.Helper()
	pg, err := store.OpenPostgres(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pg.Close() })
	id, err := pg.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "jobs-list", Vantage: "ams", State: store.RunCrawling})
	if err != nil {
		t.Fatal(err)
	}
	es := make([]domains.Entry, n)
	for i := range es {
		es[i] = domains.Entry{Rank: i + 1, Name: fmt.Sprintf("d%d.example", i), TLD: "example", Suffix: "example", Line: i + 1}
	}
	if _, err := pg.AddDomains(ctx, id, es); err != nil {
		t.Fatal(err)
	}
	q, err := distrib.Open(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	if shards, err := q.Enqueue(ctx, id, shard); err != nil || shards != (n+shard-1)/shard {
		t.Fatalf("enqueue: %d shards (%v), want %d", shards, err, (n+shard-1)/shard)
	}
	return pg, id
}

// moveJob puts one of the run's jobs in state from into state to, as a worker would
// (by River's table, so that no worker needs to run).
func moveJob(t *testing.T, ctx context.Context, pg *store.Postgres, run int64, from, to string) {
	t.Helper()
	tag, err := pg.Pool().Exec(ctx, `UPDATE river_job SET state = $3::river_job_state, attempt = 1, attempted_at = now(),
		finalized_at = CASE WHEN $3 IN ('completed', 'discarded', 'cancelled') THEN now() END
		WHERE id = (SELECT min(id) FROM river_job WHERE (args->>'run')::bigint = $1 AND state = $2::river_job_state)`, run, from, to)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("move a job of run %d from %s to %s: %v (%d rows)", run, from, to, err, tag.RowsAffected())
	}
}

// TestRunsJobs: /runs and /api/v1/runs (JSON and CSV) show a distributed run's jobs by
// stage and state; jobs that move show on the first request after versionTTL (the
// store's version does not see them), an unchanged answer is still served from the
// cache, and a run done shows no jobs. Chromium shows the jobs' table with no
// accessibility or CSP fault.
func TestRunsJobs(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pg, id := distributedRun(t, ctx, 40, 10)
	w, err := New(Config{Store: pg, Jobs: func(ctx context.Context, run int64) ([]store.JobCount, error) {
		return distrib.Progress(ctx, pg, run)
	}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w)
	defer srv.Close()
	f := &fixture{srv: srv}
	var doc openapiDoc
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatal(err)
	}
	runsSchema := doc.Paths["/api/v1/runs"]["get"].Responses["200"].Content["application/json"].Schema

	// check asserts what the three views show of the run's jobs (none: want nil).
	check := func(when string, want runJobs) {
		t.Helper()
		_, page := f.get(t, "/runs")
		if len(want) == 0 {
			if strings.Contains(page, `id="jobs"`) {
				t.Errorf("%s: /runs shows jobs", when)
			}
		} else {
			s := want[0]
			contains(t, when+": /runs", page, `<h2 id="jobs">`, fmt.Sprintf(`<tr><th scope="row">%d</th><td>dns</td><td>-</td><td class="num">%d of %d</td>`, id, s.Done, s.Total),
				fmt.Sprintf(`<progress max="%d" value="%d">`, s.Total, s.Done),
				fmt.Sprintf(`<td class="num">%d</td><td class="num">%d</td><td class="num">%d</td><td class="num">%d</td><td class="num">%d</td><td class="num">%d</td></tr>`,
					s.Running, s.Available, s.Scheduled, s.Retryable, s.Discarded, s.Cancelled))
		}
		_, body := f.get(t, "/api/v1/runs")
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		for _, e := range doc.validate(runsSchema, v, when+": /api/v1/runs") {
			t.Error(e)
		}
		var got struct{ Runs []runRow }
		if err := json.Unmarshal([]byte(body), &got); err != nil || len(got.Runs) != 1 {
			t.Fatalf("%s: /api/v1/runs: %v %s", when, err, body)
		}
		if want == nil {
			want = runJobs{}
		}
		if diff := cmp.Diff(want, got.Runs[0].Jobs); diff != "" {
			t.Errorf("%s: /api/v1/runs jobs (-want +got):\n%s", when, diff)
		}
		_, csv := f.get(t, "/api/v1/runs?format=csv")
		header, row, _ := strings.Cut(csv, "\n")
		if !strings.HasSuffix(header, ",jobs") || !strings.HasSuffix(strings.TrimSpace(row), ","+csvQuote(want.String())) {
			t.Errorf("%s: CSV %q, want a last column jobs of %q", when, csv, want.String())
		}
	}
	check("queued", runJobs{{Stage: "dns", Total: 4, Available: 4}})
	if got := runJobs([]stageJobs{{Stage: "dns", Total: 4, Available: 4}}).String(); got != "dns 0/4 (available 4)" {
		t.Errorf("progress in a line: %q", got)
	}

	// An answer not changed is kept: a second request is the cache's (its ETag).
	res, _ := f.get(t, "/api/v1/runs")
	if res, _ := f.get(t, "/api/v1/runs", "If-None-Match", res.Header.Get("ETag")); res.StatusCode != http.StatusNotModified {
		t.Errorf("unchanged progress: %d, want 304 from the cache", res.StatusCode)
	}

	moveJob(t, ctx, pg, id, "available", "completed")
	moveJob(t, ctx, pg, id, "available", "running")
	moveJob(t, ctx, pg, id, "available", "discarded")
	time.Sleep(versionTTL)
	check("moved", runJobs{{Stage: "dns", Done: 1, Total: 4, Running: 1, Available: 1, Discarded: 1}})
	if got := w.jobs[id].jobs.String(); got != "dns 1/4 (running 1, available 1, discarded 1)" {
		t.Errorf("progress in a line: %q", got)
	}
	// In Chromium: the jobs' table passes the accessibility basics, nothing breaks the CSP.
	b := newBrowser(t, srv.URL, time.Now().Add(browserBound))
	b.open(t, "/runs")
	b.checkA11y(t, "/runs")
	b.screenshot(t, artifactDir(t), "runs-jobs")
	b.checkEvents(t, "/runs")

	r, err := pg.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	r.State, r.Finished = store.RunDone, time.Now()
	if err := pg.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	time.Sleep(versionTTL)
	check("done", nil)
}

// csvQuote is a CSV cell as encoding/csv writes it.
func csvQuote(s string) string {
	if strings.ContainsAny(s, `",`+"\n") {
		return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
	}
	return s
}
