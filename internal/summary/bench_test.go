package summary_test

import (
	"context"
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
