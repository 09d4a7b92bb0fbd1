package web

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/synthrun"
)

// BenchmarkDomainPage renders the page of a different domain each op, in-process (no
// network, no cache hit): the CPU a page of the long tail costs.
func BenchmarkDomainPage(b *testing.B) {
	f := getFixture(b)
	benchLongTail(b, f.web, fixtureDomains, func(i int) string { return fmt.Sprintf("?run=%d", f.runs[i%3]) })
}

// BenchmarkDomainPageStore is BenchmarkDomainPage on a large store that bench-web made
// (V6MATRIX_BENCH_DB=/tmp/bw1m.db, V6MATRIX_BENCH_DOMAINS=1000000): what a page costs
// when the store is larger than any cache.
func BenchmarkDomainPageStore(b *testing.B) {
	db := os.Getenv("V6MATRIX_BENCH_DB")
	if db == "" {
		b.Skip("V6MATRIX_BENCH_DB names no store made by bench-web")
	}
	n := 1_000_000
	if v := os.Getenv("V6MATRIX_BENCH_DOMAINS"); v != "" {
		if _, err := fmt.Sscan(v, &n); err != nil {
			b.Fatalf("V6MATRIX_BENCH_DOMAINS %q: %v", v, err)
		}
	}
	st, err := store.Open(context.Background(), db)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	s, err := New(Config{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	for _, kind := range []string{"/domain/", "/api/v1/runs/latest/domains/"} {
		b.Run(kind, func(b *testing.B) {
			benchLongTail(b, s, n, func(int) string { return "" }, kind)
		})
	}
}

// benchLongTail requests the page (or API document, prefix) of a different domain of an
// n-domain synthetic run each op; query adds the op's query parameters.
func benchLongTail(b *testing.B, h http.Handler, n int, query func(i int) string, prefix ...string) {
	p := "/domain/"
	if len(prefix) > 0 {
		p = prefix[0]
	}
	i, nonce := 0, time.Now().UnixNano()
	for b.Loop() {
		k := (i*7919)%n + 1
		i++
		q := query(i)
		if q == "" {
			q = "?"
		} else {
			q += "&"
		}
		// A new URL each op (op=), so that the response cache never holds it.
		req := httptest.NewRequest(http.MethodGet, fmt.Sprintf("%sd%07d.%s%sop=%d-%d", p, k, synthrun.SuffixOf(k-1), q, nonce, i), nil)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d", req.URL, rec.Code)
		}
	}
}

// BenchmarkDomainTemplate renders one domain's page from its data already read: the
// template's share of BenchmarkDomainPage.
func BenchmarkDomainTemplate(b *testing.B) {
	f := getFixture(b)
	n := 1
	req := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/domain/d%07d.%s", n, synthrun.SuffixOf(n-1)), nil)
	req.SetPathValue("name", fmt.Sprintf("d%07d.%s", n, synthrun.SuffixOf(n-1)))
	dd, err := f.web.domainData(req, "latest")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rec := httptest.NewRecorder()
		f.web.renderDomain(rec, req, &dd)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d", rec.Code)
		}
	}
}
