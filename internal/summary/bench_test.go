package summary_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/summary"
	"github.com/v6matrix/v6matrix/internal/synthrun"
)

// BenchmarkBuild summarises a synthetic run of 20,000 domains (one op), reading it
// through Details and writing the summary tables, as a finished crawl does.
func BenchmarkBuild(b *testing.B) {
	const domains = 20000
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "b.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	run, err := synthrun.Fill(ctx, st, synthrun.Config{Domains: domains, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if err := summary.Build(ctx, st, run, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(domains*b.N)/b.Elapsed().Seconds(), "domains/s")
}

// BenchmarkBuildStore summarises run 1 of the SQLite store named by
// V6MATRIX_BENCH_DB (e.g. a bench-net --keep crawl.db; it is rewritten), to profile
// the summary of a real crawl's data.
func BenchmarkBuildStore(b *testing.B) {
	path := os.Getenv("V6MATRIX_BENCH_DB")
	if path == "" {
		b.Skip("V6MATRIX_BENCH_DB is not set")
	}
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for b.Loop() {
		if err := summary.Build(ctx, st, 1, nil); err != nil {
			b.Fatal(err)
		}
	}
}
