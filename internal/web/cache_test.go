package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/summary"
	"github.com/v6matrix/v6matrix/internal/synthrun"
)

// failingStore fails GetRun with err while err is set.
type failingStore struct {
	store.Store
	err atomic.Pointer[error]
}

func (s *failingStore) GetRun(ctx context.Context, id int64) (store.Run, error) {
	if err := s.err.Load(); err != nil {
		return store.Run{}, *err
	}
	return s.Store.GetRun(ctx, id)
}

// TestCacheKeepsOnlyAnswers: the response cache keeps a page's answer, not what a HEAD,
// a failing store or an ended request left: a HEAD first, a store error (a 500, not a
// 404) or a request whose store call was cancelled (nothing written) leave the next GET
// of the page its full answer. Each of them blanked or hid the page for every visitor
// until the store changed.
func TestCacheKeepsOnlyAnswers(t *testing.T) {
	f := getFixture(t)
	st := &failingStore{Store: f.st}
	web, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web)
	defer srv.Close()
	do := func(method, path string) (int, string) {
		t.Helper()
		resp, body := fetch(t, method, srv.URL+path)
		return resp.StatusCode, body
	}
	run := strconv.FormatInt(f.runs[1], 10)
	cases := []struct {
		name, path string
		before     func() int // the first request's status
	}{
		{"HEAD first", "/tlds?run=" + run, func() int { code, _ := do(http.MethodHead, "/tlds?run="+run); return code }},
		{"store error", "/api/v1/runs/" + run + "/countries", func() int {
			err := errors.New("disk I/O error")
			st.err.Store(&err)
			defer st.err.Store(nil)
			code, _ := do(http.MethodGet, "/api/v1/runs/"+run+"/countries")
			return code
		}},
		{"cancelled store call", "/api/v1/runs/" + run + "/tlds", func() int {
			err := context.Canceled
			st.err.Store(&err)
			defer st.err.Store(nil)
			code, _ := do(http.MethodGet, "/api/v1/runs/"+run+"/tlds")
			return code
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			first := tc.before()
			if tc.name == "store error" && first != http.StatusInternalServerError {
				t.Errorf("a store error answered %d, want 500", first)
			}
			code, body := do(http.MethodGet, tc.path)
			if code != http.StatusOK || len(body) < 100 {
				t.Errorf("GET %s after it: %d, %d bytes; want 200 with the page", tc.path, code, len(body))
			}
		})
	}
}

// TestNextLinksKeepParameters: the next page of a CSV download is CSV, of the same
// run (the Link header kept only the cursor's parameters).
func TestNextLinksKeepParameters(t *testing.T) {
	f := getFixture(t)
	run := strconv.FormatInt(f.runs[0], 10)
	resp, _ := f.get(t, "/api/v1/runs/"+run+"/tlds/com/domains?format=csv&limit=10")
	link := resp.Header.Get("Link")
	if resp.StatusCode != http.StatusOK || !strings.Contains(link, "format=csv") || !strings.Contains(link, "/runs/"+run+"/") ||
		!strings.Contains(link, "after=") {
		t.Errorf("%d, Link %q: want the next page of run %s in CSV", resp.StatusCode, link, run)
	}
	next := strings.TrimSuffix(strings.TrimPrefix(strings.Split(link, ";")[0], "<"), ">")
	resp, body := f.get(t, next)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || strings.Contains(body, "d0000001.com,") {
		t.Errorf("next page %s: %d %q, want CSV after the first page", next, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestRunsDoneOfProvisional: a run being crawled, summarised provisionally (serve
// follows it), is listed with the domains its crawl has done, not every domain of its
// list as if finished.
func TestRunsDoneOfProvisional(t *testing.T) {
	ctx := context.Background()
	st := emptyStore(t)
	id, err := synthrun.Fill(ctx, st, synthrun.Config{Domains: 50, Seed: 1, Started: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	run, err := st.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	run.State = store.RunCrawling // and 10 more domains to come
	if err := st.UpdateRun(ctx, run); err != nil {
		t.Fatal(err)
	}
	var more []domains.Entry
	for i := range 10 {
		more = append(more, domains.Entry{Rank: 1000 + i, Name: fmt.Sprintf("later%d.com", i), TLD: "com"})
	}
	if _, err := st.AddDomains(ctx, id, more); err != nil {
		t.Fatal(err)
	}
	if err := summary.Provisional(ctx, st, id, nil); err != nil {
		t.Fatal(err)
	}
	web, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web)
	defer srv.Close()
	_, body := fetch(t, http.MethodGet, srv.URL+"/api/v1/runs")
	var got struct {
		Runs []runRow `json:"runs"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got.Runs) != 1 {
		t.Fatalf("/api/v1/runs: %v %s", err, body)
	}
	if r := got.Runs[0]; !r.Summarised || r.Done != 50 {
		t.Errorf("run crawling, 50 of 60 domains done: listed %+v, want done 50", r)
	}
}
