package web

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// TestRunsLive: in Chromium, /runs follows a run in progress without reloading: the
// domains done change in place as the crawl saves them, then the state when the run
// ends, and from then on the page asks no more.
func TestRunsLive(t *testing.T) {
	deadline := time.Now().Add(browserBound)
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "live.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, err := st.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "live-list", Vantage: "here", State: store.RunCrawling})
	if err != nil {
		t.Fatal(err)
	}
	var es []domains.Entry
	for i := range 3 {
		es = append(es, domains.Entry{Rank: i + 1, Name: fmt.Sprintf("d%d.test", i), TLD: "test", Suffix: "test"})
	}
	if _, err := st.AddDomains(ctx, id, es); err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{Store: st, Live: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	f := &fixture{srv: srv}

	b := newBrowser(t, srv.URL, deadline)
	b.open(t, "/runs")
	if got := b.attr(t, "#runs", "data-live"); got != "1" {
		t.Fatalf("/runs: data-live %q, want 1 (a run is crawling)", got)
	}
	const doneCell, stateCell = `#runs tbody tr td:nth-of-type(7)`, `#runs tbody tr td:nth-of-type(3)`
	text := func(sel string) string {
		return strings.TrimSpace(run(t, b, "text of "+sel, chromedp.Evaluate[string](
			`document.querySelector(`+strconv.Quote(sel)+`)?.textContent ?? ''`)))
	}
	if got := text(doneCell); got != "0" {
		t.Fatalf("/runs: %q done, want 0", got)
	}
	run(t, b, "mark the page", chromedp.Evaluate[bool](`window.v6mMark = true`))
	// waitFor waits until sel's text is want, the page refreshing itself.
	waitFor := func(what, sel, want string) {
		t.Helper()
		got := run(t, b, "/runs: wait for "+what, chromedp.Poll[string](
			`(() => { const t = document.querySelector(`+strconv.Quote(sel)+`)?.textContent?.trim(); return t === `+strconv.Quote(want)+` ? t : null })()`,
			chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout-time.Second)))
		if got != want {
			t.Fatalf("/runs: %s: %q, want %q", what, got, want)
		}
		if !run(t, b, "the mark", chromedp.Evaluate[bool](`window.v6mMark === true`)) {
			t.Fatalf("/runs: the page was reloaded for %s; want the table replaced in place", what)
		}
	}

	// The crawl saves two domains: the table shows them (the counts are up to
	// countsTTL old).
	var batch store.Batch
	for _, e := range es[:2] {
		batch.Domains = append(batch.Domains, result.Domain{Name: e.Name, Rank: e.Rank, TLD: e.TLD, Suffix: e.Suffix, Status: result.StatusNXDomain})
	}
	if err := st.Save(ctx, id, batch); err != nil {
		t.Fatal(err)
	}
	waitFor("2 domains done", doneCell, "2")
	if n, _ := strconv.Atoi(b.attr(t, "#runs", "data-refreshed")); n < 1 {
		t.Errorf("/runs: data-refreshed %d, want at least 1", n)
	}
	b.checkA11y(t, "/runs")
	b.checkEvents(t, "/runs")

	// The run ends: the page shows it and stops asking.
	r, err := st.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	r.State, r.Finished = store.RunDone, time.Now()
	if err := st.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	waitFor("the run done", stateCell, "done")
	if got := b.attr(t, "#runs", "data-live"); got != "" {
		t.Errorf("/runs: data-live %q after the run ended, want none", got)
	}
	b.checkEvents(t, "/runs")
	time.Sleep(3 * time.Second) // three of its refresh intervals
	b.mu.Lock()
	asked := len(b.requests)
	b.mu.Unlock()
	if asked != 0 {
		t.Errorf("/runs: %d requests after the run ended, want none", asked)
	}
	if _, page := f.get(t, "/runs"); strings.Contains(page, "app.js") || strings.Contains(page, "data-live") {
		t.Errorf("/runs with no run in progress asks for the script or marks the table live")
	}
}
