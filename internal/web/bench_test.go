package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/v6matrix/v6matrix/internal/synthrun"
)

// BenchmarkDomainPage renders the page of a different domain each op, in-process (no
// network, no cache hit): the CPU a page of the long tail costs.
func BenchmarkDomainPage(b *testing.B) {
	f := getFixture(b)
	i := 0
	for b.Loop() {
		n := (i*7919)%fixtureDomains + 1
		i++
		// A new URL each op (op=), so that the response cache never holds it.
		req := httptest.NewRequest(http.MethodGet, fmt.Sprintf("/domain/d%07d.%s?run=%d&op=%d", n, synthrun.SuffixOf(n-1), f.runs[i%3], i), nil)
		rec := httptest.NewRecorder()
		f.web.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s: %d", req.URL, rec.Code)
		}
	}
}
