package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/synthrun"
)

// TestRunsDiffAndDelete compares two synthetic months with `runs diff` (the figures are
// the store's diff, and --domains lists as many domains as the counts say), then
// deletes runs by id and by retention.
func TestRunsDiffAndDelete(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "runs.db")
	st, err := store.OpenSQLite(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	var ids [3]int64
	for i := range 2 {
		if ids[i], err = synthrun.Fill(ctx, st, synthrun.Config{Domains: 400, Seed: uint64(i + 1), V6Boost: float64(15 * i),
			Started: time.Date(2026, time.Month(10+i), 1, 0, 0, 0, 0, time.UTC)}); err != nil {
			t.Fatal(err)
		}
	}
	// A third run that a killed crawl left "crawling".
	if ids[2], err = st.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "killed.csv", Options: "{}", Vantage: "test", State: store.RunCrawling}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	// Neither run is summarised yet: runs diff summarises them.
	_, out, errOut := cliRun(t, "runs", "diff", "--db", db, "--quiet", fmt.Sprint(ids[0]), fmt.Sprint(ids[1]))
	st, err = store.OpenSQLite(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	c, ok, err := st.Diff(ctx, ids[0], ids[1])
	st.Close()
	if err != nil || !ok {
		t.Fatalf("the diff was not recorded: %v %v\n%s", ok, err, errOut)
	}
	if c.Common != 400 || c.Gained == [4]int{} {
		t.Fatalf("diff counts %+v: want 400 common domains and some gained IPv6", c)
	}
	words := " " + strings.Join(strings.Fields(out), " ") + " "
	for i, role := range result.Roles {
		if line := fmt.Sprintf(" %s %d %d ", role, c.Gained[i], c.Lost[i]); !strings.Contains(words, line) {
			t.Errorf("runs diff output lacks the row %q:\n%s", line, out)
		}
	}
	_, out, _ = cliRun(t, "runs", "diff", "--db", db, "--domains", "--format", "csv", fmt.Sprint(ids[0]), fmt.Sprint(ids[1]))
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := 1
	for i := range result.Roles {
		want += c.Gained[i] + c.Lost[i]
	}
	if len(rows) != want || strings.Join(rows[0], ",") != "run_a,run_b,role,change,domain,rank" {
		t.Errorf("runs diff --domains --format csv: %d rows (header %q), want %d", len(rows), rows[0], want)
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"diff", "--db", db, "1"}, 2, "want two runs A and B, got 1 arguments"},
		{[]string{"diff", "--db", db, "1", "x"}, 2, `run "x": want a run id or latest`},
		{[]string{"diff", "--db", db, "1", "99"}, 1, "run 99"},
		{[]string{"delete", "--db", db}, 2, "want the runs to delete"},
		{[]string{"delete", "--db", db, "--keep", "1", "2"}, 2, "give run ids or --keep, not both"},
		{[]string{"delete", "--db", db, fmt.Sprint(ids[2])}, 1, fmt.Sprintf("run %d is crawling: a crawl may still be writing it", ids[2])},
		{[]string{"delete", "--db", filepath.Join(t.TempDir(), "missing.db"), "1"}, 1, "missing.db"},
	} {
		code, _, errOut := cliRun(t, append([]string{"runs"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) {
			t.Errorf("runs %s: exit %d, %q; want %d and %q", strings.Join(tc.args, " "), code, errOut, tc.code, tc.msg)
		}
	}

	// Retention keeps the newest finished run and leaves the one in progress.
	if _, out, _ = cliRun(t, "runs", "delete", "--db", db, "--keep", "1", "--dry-run"); out != fmt.Sprintf("would delete run %d (done, synthetic-400)\n", ids[0]) {
		t.Errorf("dry run printed %q", out)
	}
	if len(listRuns(t, db)) != 3 {
		t.Fatal("a dry run deleted something")
	}
	if code, out, errOut := cliRun(t, "runs", "delete", "--db", db, "--keep", "1"); code != 0 || out != fmt.Sprintf("deleted run %d (done, synthetic-400)\n", ids[0]) {
		t.Fatalf("runs delete --keep 1: exit %d %q %q", code, out, errOut)
	}
	if code, _, errOut := cliRun(t, "runs", "delete", "--db", db, "--force", fmt.Sprint(ids[2])); code != 0 {
		t.Fatalf("runs delete --force: exit %d %q", code, errOut)
	}
	rows2 := listRuns(t, db)
	if _, ok := rows2[fmt.Sprint(ids[1])]; len(rows2) != 1 || !ok {
		t.Errorf("runs left: %v, want run %d only", rows2, ids[1])
	}
}
