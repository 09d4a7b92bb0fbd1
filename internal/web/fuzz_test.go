package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzRequest: no path or query parameter, however hostile, makes the server fail
// (5xx) or panic, or echoes markup unescaped.
func FuzzRequest(f *testing.F) {
	for _, seed := range []string{"/", "/tlds?sort=www&dir=asc", "/tld/com?after=4294967296:d1.com&limit=5", "/tld/com?sort=ns&after=-1:",
		"/domain/xn--bcher-kva.example", "/domain/%FF%FE.com", "/search?q=%3Cscript%3E", "/country/de?offset=99999999999",
		"/asn/AS64501", "/runs/1/diff/latest", "/runs/0/diff/-1", "/api/v1/runs/latest/tlds/com/domains?limit=0",
		"/api/v1/runs/1/diff/2?role=www&change=gained&after=1:x", "/badge/..svg", "/api/v1/runs/latest/export/..%2f..%2fetc%2fpasswd",
		"/api/v1/trend?tld=%00", "/map?sort=name&dir=desc&format=csv"} {
		f.Add(seed)
	}
	fx := getFixture(f)
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !strings.HasPrefix(u.Path, "/") {
			return
		}
		req, err := http.NewRequest(http.MethodGet, "http://v6matrix.test/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL, req.RequestURI = u, u.RequestURI()
		rec := httptest.NewRecorder()
		fx.web.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("GET %s: %d\n%s", target, rec.Code, rec.Body.String())
		}
		if strings.Contains(rec.Header().Get("Content-Type"), "html") && strings.Contains(rec.Body.String(), "<script>") {
			t.Fatalf("GET %s: an unescaped <script> in the page", target)
		}
	})
}
