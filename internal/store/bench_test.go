package store_test

import (
	"context"
	"testing"

	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/synthrun"
)

// BenchmarkStores writes a synthetic run of 2000 domains per op through the calls the
// crawl makes (AddDomains, Save, SaveMeasurements: write), and reads one back with
// Details as the exports do (read), on each store. See docs/PERFORMANCE.md.
func BenchmarkStores(b *testing.B) {
	const domains = 2000
	ctx := context.Background()
	for _, s := range []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		b.Run(s.name+"/write", func(b *testing.B) {
			st := s.open(b)
			for b.Loop() {
				if _, err := synthrun.Fill(ctx, st, synthrun.Config{Domains: domains, Seed: 1}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(domains*b.N)/b.Elapsed().Seconds(), "domains/s")
		})
		b.Run(s.name+"/read", func(b *testing.B) {
			st := s.open(b)
			run, err := synthrun.Fill(ctx, st, synthrun.Config{Domains: domains, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				n := 0
				if err := st.Details(ctx, run, "", func(store.Detail) error { n++; return nil }); err != nil || n != domains {
					b.Fatalf("Details: %d domains, %v", n, err)
				}
			}
			b.ReportMetric(float64(domains*b.N)/b.Elapsed().Seconds(), "domains/s")
		})
	}
}
