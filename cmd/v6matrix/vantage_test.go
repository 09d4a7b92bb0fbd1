package main

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/store"
)

// TestSecondVantage crawls a synthetic list, then measures the finished run from a
// second vantage with crawl --resume --run 1 --vantage west: no DNS query is asked
// again, every address gets west's own measurements, the run stays done, runs lists
// both vantages, a second pass finds nothing left, and export --vantage takes either.
// (The synthetic addresses are opted out, so "measured" is their skipped record here:
// no probe packet leaves loopback; internal/measure tests the probes per vantage.)
func TestSecondVantage(t *testing.T) {
	dir := t.TempDir()
	const n = 300
	resolver, soa := syntheticServer(t, n)
	list, _ := writeList(t, dir, n)
	exclude := filepath.Join(dir, "exclude.txt")
	if err := os.WriteFile(exclude, []byte(syntheticRanges), 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "v.db")
	mustRun(t, append(crawlFlags(db, resolver, exclude), list)...)
	before := soa.snapshot()

	again := []string{"crawl", "--db", db, "--resolver", resolver, "--quiet", "--exclude", exclude, "--resume", "--run", "1", "--vantage", "west"}
	res := mustRun(t, again...)
	if !strings.HasPrefix(res.stdout, "run 1 measured from vantage west: ") {
		t.Errorf("stdout %q, want the vantage's summary", res.stdout)
	}
	if diff := cmp.Diff(before, soa.snapshot()); diff != "" {
		t.Errorf("SOA queries during the second vantage's measurement (-before +after):\n%s", diff)
	}
	if row := listRuns(t, db)["1"]; row.State != "done" {
		t.Errorf("run 1 after the second vantage: %+v, want still done", row)
	}
	if r := mustRun(t, "runs", "--db", db); !strings.Contains(r.stdout, " test,west ") {
		t.Errorf("runs does not list both vantages:\n%s", r.stdout)
	}
	if r := mustRun(t, again...); r.stdout != "run 1 measured from vantage west: 0 probes, 0 could not run\n" {
		t.Errorf("second pass from west: %q, want nothing left", r.stdout)
	}

	ctx := context.Background()
	st, err := store.OpenSQLiteReadOnly(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	own, err := st.Measured(ctx, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	west, err := st.Measured(ctx, 1, "west")
	st.Close()
	if diff := cmp.Diff(own, west, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); err != nil || len(own) == 0 || diff != "" {
		t.Errorf("measured from the run's own vantage and from west (%v; %d addresses) (-own +west):\n%s", err, len(own), diff)
	}

	outOwn, outWest := filepath.Join(dir, "own"), filepath.Join(dir, "west")
	mustRun(t, "export", "--db", db, "--out", outOwn)
	if r := mustRun(t, "export", "--db", db, "--vantage", "west", "--out", outWest); !strings.HasPrefix(r.stdout, "run 1 from vantage west exported to ") {
		t.Errorf("export --vantage west: %q", r.stdout)
	}
	sameFiles(t, outOwn, outWest) // the DNS records are the run's; the probe records are none here (opted out)
	r := runBinary(t, "export", "--db", db, "--vantage", "north", "--out", filepath.Join(dir, "north"))
	if want := `v6matrix export: run 1 has no vantage "north": its vantages are "test", "west"` + "\n"; r.code != 1 || r.stderr != want {
		t.Errorf("export --vantage north: exit %d, %q; want 1, %q", r.code, r.stderr, want)
	}
	if names, _ := os.ReadDir(dir); slices.ContainsFunc(names, func(e os.DirEntry) bool { return e.Name() == "north" }) {
		t.Errorf("export --vantage north left a directory")
	}
}
