package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/geoip"
)

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// scrape returns the value of every sample of a Prometheus text exposition: by name,
// and by name with its labels (name{a="x",b="y"}, as exposed).
func scrape(url string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		series := line[:i]
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[series] = v
			name, _, _ := strings.Cut(series, "{")
			out[name] = v
		}
	}
	return out, sc.Err()
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
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- dispatch(ctx, []string{"crawl", "--db", filepath.Join(dir, "m.db"), "--resolver", resolver, "--probes", "geo",
			"--geoip-city", city, "--geoip-asn", asn, "--concurrency", "2", "--vantage", "metrics-test", "--metrics-listen", "127.0.0.1:0", "--log-progress", "0", list}, io.Discard, &stderr)
	}()
	urlRE := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+/metrics)`)
	var url string
	var samples []map[string]float64
	finished := -1
	for finished < 0 && ctx.Err() == nil {
		select {
		case code := <-done:
			finished = code
			continue
		case <-time.After(50 * time.Millisecond):
		}
		if url == "" {
			if m := urlRE.FindStringSubmatch(stderr.String()); m != nil {
				url = m[1]
			}
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
	if _, ok := last["go_goroutines"]; !ok {
		t.Error("no Go runtime metrics")
	}
	if _, err := scrape(url); err == nil {
		t.Error("the metrics server still answers after the crawl ended")
	}
}
