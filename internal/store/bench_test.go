package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"

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

// BenchmarkSaveMeasurements writes 12,500 addresses' 8 kinds each (100,000 rows, about
// 200 bytes of JSON each) in the random order in which a crawl's probes end, in
// batches of the measure stage's size, on a new SQLite store per op.
func BenchmarkSaveMeasurements(b *testing.B) {
	const addrs, kinds = 12500, 8
	ctx := context.Background()
	type value struct {
		Sent, Received     int
		Min, Avg, Max, Std float64
		Note               string
	}
	var ms []store.Measurement
	for i := range addrs {
		ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
		if i%2 == 0 {
			ip = netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		}
		for k := range kinds {
			ms = append(ms, store.Measurement{IP: ip, Kind: fmt.Sprintf("kind%d", k),
				Value: value{Sent: 3, Received: 3, Min: 1.5, Avg: 2.25, Max: 3.125, Std: 0.5, Note: strings.Repeat("x", 100)}})
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
	for _, size := range []int{200, 2000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				st := openSQLite(b)
				run, err := st.CreateRun(ctx, store.Run{Started: time.Unix(1e9, 0), ListName: "l.csv", State: store.RunProbing})
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				for i := 0; i < len(ms); i += size {
					if err := st.SaveMeasurements(ctx, run, ms[i:min(i+size, len(ms))]); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*len(ms)), "µs/measurement")
		})
	}
}
