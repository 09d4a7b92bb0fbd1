package main

import (
	"context"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/geoip"
	"github.com/v6matrix/v6matrix/internal/metrics/metricstest"
)

// scrape reads a /metrics page (metricstest.Scrape), bounded by 5 s.
func scrape(url string) (metricstest.Samples, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return metricstest.Scrape(ctx, nil, url)
}

// TestCrawlMetrics scrapes a crawl's /metrics while it runs: the DNS stage's counters
// move, the query counter grows with them, the GeoIP lookups (which send nothing: the
// synthetic addresses are special-purpose, so the gate refuses every probe and no
// parent server is asked; never give this test --allow-ranges) are counted by kind,
// and the server goes away with the crawl.
func TestCrawlMetrics(t *testing.T) {
	const n = 3000
	resolver, _ := syntheticServer(t, n)
	dir := t.TempDir()
	list, _ := writeList(t, dir, n)
	city, asn, err := geoip.WriteFixtures(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var stderr metricstest.Log
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, []string{"crawl", "--db", filepath.Join(dir, "m.db"), "--resolver", resolver, "--probes", "geo",
			"--geoip-city", city, "--geoip-asn", asn, "--concurrency", "2", "--vantage", "metrics-test", "--metrics-listen", "127.0.0.1:0", "--log-progress", "0", list}, io.Discard, &stderr)
	}()
	var url string
	var samples []metricstest.Samples
	finished := -1
	for finished < 0 && ctx.Err() == nil {
		select {
		case code := <-done:
			finished = code
			continue
		case <-time.After(50 * time.Millisecond):
		}
		if url == "" {
			url = stderr.URL()
			continue
		}
		if s, err := scrape(url); err == nil && s["v6matrix_dns_domains_done_total"] > 0 {
			samples = append(samples, s)
		}
	}
	if finished != 0 {
		t.Fatalf("crawl exit %d\n%s", finished, stderr.String())
	}
	if url == "" {
		t.Fatalf("the crawl did not log its metrics URL:\n%s", stderr.String())
	}
	if len(samples) < 2 {
		t.Fatalf("%d scrapes during the crawl with domains done; want 2 or more", len(samples))
	}
	first, last := samples[0], samples[len(samples)-1]
	if last["v6matrix_dns_domains_done_total"] <= first["v6matrix_dns_domains_done_total"] ||
		last["v6matrix_dns_queries_total"] <= first["v6matrix_dns_queries_total"] {
		t.Errorf("counters did not move: first %v, last %v", first, last)
	}
	if first["v6matrix_dns_domains_pending"] <= 0 || first["v6matrix_dns_domains_done_total"]+first["v6matrix_dns_domains_pending"] != n {
		t.Errorf("first scrape: done %v + pending %v, want %d", first["v6matrix_dns_domains_done_total"], first["v6matrix_dns_domains_pending"], n)
	}
	ptr := `v6matrix_probes_total{kind="geo",outcome="measured",vantage="metrics-test"}`
	if last[ptr] <= 0 || last[`v6matrix_probes_total{kind="tls443",outcome="measured",vantage="metrics-test"}`] != 0 {
		t.Errorf("last scrape: %s = %v (want GeoIP lookups counted), tls443 %v (want 0)", ptr, last[ptr],
			last[`v6matrix_probes_total{kind="tls443",outcome="measured",vantage="metrics-test"}`])
	}
	for _, name := range []string{"go_goroutines", "v6matrix_probes_in_flight", "v6matrix_probe_efficiency_ratio", "v6matrix_probe_lower_bound_seconds"} {
		if _, ok := last[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	if _, err := scrape(url); err == nil {
		t.Error("the metrics server still answers after the crawl ended")
	}
}
