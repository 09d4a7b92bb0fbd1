package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/v6matrix/v6matrix/internal/infopage"
	"github.com/v6matrix/v6matrix/internal/result"
)

// TestRoutes: every route answers with its status and content type, and shows what it is for.
func TestRoutes(t *testing.T) {
	f := getFixture(t)
	latest := strconv.FormatInt(f.runs[2], 10)
	first := strconv.FormatInt(f.runs[0], 10)
	tests := []struct {
		path   string
		status int
		ctype  string
		wants  []string
	}{
		{"/", 200, "text/html", []string{"IPv6 among the world", `data-chart="trend"`, "name servers (NS) with IPv6", "Broken IPv6", `href="/tld/com"`}},
		{"/tlds", 200, "text/html", []string{"The Matrix", `aria-sort="descending"`, `href="/tld/de"`, "/api/v1/runs/" + latest + "/tlds?format=csv"}},
		{"/tlds?sort=www&dir=asc", 200, "text/html", []string{`aria-sort="ascending"`}},
		{"/tld/com", 200, "text/html", []string{"<h1>.com</h1>", `href="/domain/d0000001.com"`, `rel="next"`, `data-src="/api/v1/trend?tld=com"`}},
		{"/tld/com?sort=www", 200, "text/html", []string{`class="yes">yes</span>`}},
		{"/map", 200, "text/html", []string{`data-chart="map"`, `href="/country/US"`, "DB-IP"}},
		{"/country/DE", 200, "text/html", []string{"Germany", "2001:db8:", "IPv6 addresses"}},
		{"/country/de", 200, "text/html", []string{"Germany"}},
		{"/asn/64501", 200, "text/html", []string{"AS64501", "Synthetic Networks 64501"}},
		{"/domain/d0000001.com", 200, "text/html", []string{"<h1>d0000001.com</h1>", "ns1.dns", "www.d0000001.com", "History", "/badge/d0000001.com.svg"}},
		{"/domain/D0000001.COM.", 200, "text/html", []string{"<h1>d0000001.com</h1>"}},
		{"/domain/d0000001.com?run=" + first, 200, "text/html", []string{"Run " + first + " of"}},
		{"/runs", 200, "text/html", []string{"<h1>Runs</h1>", "/runs/" + strconv.FormatInt(f.runs[1], 10) + "/diff/" + latest, "synthetic-2000"}},
		{"/runs/" + first + "/diff/" + latest, 200, "text/html", []string{"From run " + first + " to run " + latest, "Gained"}},
		{"/search?q=d000000", 200, "text/html", []string{`href="/domain/d0000001.com"`}},
		{"/search?q=NS1.DNS00", 200, "text/html", []string{"ns1.dns0001.net"}},
		{"/search", 200, "text/html", []string{"<h1>Search</h1>"}},
		{"/about", 200, "text/html", []string{"Test Lab", `name="token"`, "<code>tcp/25</code>", "mailto:abuse@example.org"}},
		{"/badge/d0000001.com.svg", 200, "image/svg+xml", []string{"<svg", "IPv6"}},
		{"/static/site.css", 200, "text/css", nil},
		{"/static/app.js", 200, "text/javascript", nil},
		{"/static/vendor/echarts.min.js", 200, "text/javascript", nil},
		{"/favicon.ico", 200, "image/svg+xml", []string{"<svg"}},
		{"/api/v1/openapi.json", 200, "application/json", []string{`"openapi"`}},
		{"/api/v1/runs", 200, "application/json", []string{`"runs"`, `"summarised":true`}},
		{"/api/v1/trend", 200, "application/json", []string{`"runs"`}},
		{"/api/v1/trend?tld=de", 200, "application/json", []string{`"key":"de"`}},
		{"/api/v1/runs/latest/tlds", 200, "application/json", []string{`"tlds"`, `"key":"com"`}},
		{"/api/v1/runs/latest/tlds?format=csv", 200, "text/csv", []string{"key,name,domains,measured,ns,mx,www,ntp,all,any,ns_pct"}},
		{"/api/v1/runs/latest/tlds/de/domains", 200, "application/json", []string{`"domains"`, `"tld":"de"`}},
		{"/api/v1/runs/latest/domains/d0000001.com", 200, "application/json", []string{`"domain":"d0000001.com"`, `"history"`, `"hosts"`}},
		{"/api/v1/runs/latest/countries", 200, "application/json", []string{`"key":"DE"`}},
		{"/api/v1/runs/" + first + "/diff/latest", 200, "application/json", []string{`"roles"`, `"role":"www"`}},
		{"/api/v1/runs/" + first + "/diff/latest?role=www&change=gained", 200, "application/json", []string{`"change":"gained"`}},
		{"/api/v1/runs/latest/export/ns.csv", 200, "text/csv", []string{"type,domain,host,ipv4,ipv6,rank"}},
		{"/api/v1/runs/latest/export/domains.jsonl", 200, "application/jsonl", []string{`"domain":"d0000001.com"`}},
		{"/metrics", 200, "text/plain", []string{"v6matrix_http_request_duration_seconds"}},
		// Unknown things are 404 pages (or JSON errors under /api), never 500s.
		{"/nothing", 404, "text/html", []string{"no page /nothing"}},
		{"/domain/unknown.example", 404, "text/html", []string{"unknown.example is not in run"}},
		{"/domain/-bad-", 404, "text/html", nil},
		{"/tld/zz", 404, "text/html", []string{"no domain of .zz"}},
		{"/country/XX", 404, "text/html", nil},
		{"/country/Germany", 404, "text/html", nil},
		{"/asn/notanumber", 404, "text/html", nil},
		{"/runs/999/diff/1", 404, "text/html", []string{"no run 999"}},
		{"/runs/" + latest + "/diff/" + first, 400, "text/html", []string{"from an earlier run to a later one"}},
		{"/api/v1/runs/" + first + "/diff/" + first, 400, "application/json", []string{"from an earlier run to a later one"}},
		{"/badge/unknown.example.svg", 404, "image/svg+xml", []string{"not measured"}},
		{"/badge/d0000001.com.png", 404, "text/html", nil},
		{"/api/v1/runs/999/tlds", 404, "application/json", []string{`"error":"no run 999"`}},
		{"/api/v1/runs/abc/tlds", 404, "application/json", nil},
		{"/api/v1/runs/latest/tlds/zz/domains", 404, "application/json", nil},
		{"/api/v1/runs/latest/domains/unknown.example", 404, "application/json", nil},
		{"/api/v1/runs/latest/export/passwd", 404, "application/json", []string{"has no file"}},
		{"/api/v1/runs/latest/export/..%2F..%2Fetc%2Fpasswd", 404, "application/json", nil},
		{"/static/..%2Fserver.go", 404, "text/html", nil},
		// Bad parameters are 400s that say what is wanted.
		{"/tlds?sort=bogus", 400, "text/html", []string{"want one of"}},
		{"/tld/com?dir=up", 400, "text/html", []string{"want asc or desc"}},
		{"/tld/com?after=garbage", 400, "text/html", []string{"want the next link"}},
		{"/api/v1/runs/latest/tlds/com/domains?limit=100000", 400, "application/json", []string{"want 1 to 500"}},
		{"/api/v1/runs/latest/tlds?format=xml", 400, "application/json", []string{"want json or csv"}},
		{"/api/v1/runs/1/diff/latest?role=www&change=maybe", 400, "application/json", nil},
		{"/country/DE?offset=-1", 400, "text/html", nil},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := f.get(t, tt.path)
			if resp.StatusCode != tt.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.ctype) {
				t.Fatalf("status %d, type %q; want %d, %q\n%.400s", resp.StatusCode, resp.Header.Get("Content-Type"), tt.status, tt.ctype, body)
			}
			contains(t, tt.path, body, tt.wants...)
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			if strings.HasPrefix(tt.ctype, "text/html") {
				for _, ext := range regexp.MustCompile(`(?:src|href|action)="(https?:)?//[^"]*"`).FindAllString(body, -1) {
					if !strings.Contains(ext, "db-ip.com") { // the attribution link, not a resource
						t.Errorf("page refers to another origin: %s", ext)
					}
				}
			}
		})
	}
}

// pctOf computes a percentage as the API does.
func pctOf(n, d int) float64 { return math.Round(result.Percent(n, d)*1000) / 1000 }

// TestTLDsEqualExport: the Matrix's figures equal those computed from ipv6domain.csv.
func TestTLDsEqualExport(t *testing.T) {
	f := getFixture(t)
	rows, err := csv.NewReader(strings.NewReader(readFile(t, f.records, "ipv6domain.csv"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	type count struct {
		domains, ok int
		v6          [4]int
		all         int
	}
	want := map[string]*count{}
	for _, r := range rows[1:] {
		c := want[r[5]]
		if c == nil {
			c = &count{}
			want[r[5]] = c
		}
		c.domains++
		if r[7] != "ok" {
			continue
		}
		c.ok++
		all := true
		for i := range 4 {
			if r[1+i] == "1" {
				c.v6[i]++
			} else {
				all = false
			}
		}
		if all {
			c.all++
		}
	}
	_, body := f.get(t, "/api/v1/runs/latest/tlds")
	var got struct {
		TLDs []aggRow `json:"tlds"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.TLDs) != len(want) {
		t.Fatalf("%d TLDs, ipv6domain.csv has %d", len(got.TLDs), len(want))
	}
	_, page := f.get(t, "/tlds")
	for _, g := range got.TLDs {
		c := want[g.Key]
		pcts := []float64{g.NSPct, g.MXPct, g.WWWPct, g.NTPPct}
		for i := range 4 {
			if pcts[i] != pctOf(c.v6[i], c.ok) {
				t.Errorf(".%s %s: %v %%, ipv6domain.csv gives %v %%", g.Key, result.Roles[i], pcts[i], pctOf(c.v6[i], c.ok))
			}
		}
		if g.Domains != c.domains || g.Measured != c.ok || g.AllPct != pctOf(c.all, c.ok) {
			t.Errorf(".%s: %d domains, %d measured, all four %v %%; the export: %d, %d, %v %%", g.Key, g.Domains, g.Measured, g.AllPct,
				c.domains, c.ok, pctOf(c.all, c.ok))
		}
		// The page shows the same figure, to one decimal.
		cell := fmt.Sprintf(`<td class="num">%s&nbsp;%%</td>`, strconv.FormatFloat(result.Percent(c.v6[2], c.ok), 'f', 1, 64))
		row := regexp.MustCompile(`(?s)<tr><th scope="row"><a href="/tld/` + g.Key + `">.*?</tr>`).FindString(page)
		if !strings.Contains(row, cell) {
			t.Errorf("/tlds row of .%s lacks the www figure %s:\n%s", g.Key, cell, row)
		}
	}
}

// TestDomainPaging: following the next links of a TLD's domain list gives every domain
// of the TLD once, in rank order; sorted by a role, IPv6 comes first.
func TestDomainPaging(t *testing.T) {
	f := getFixture(t)
	var agg struct {
		TLDs []aggRow `json:"tlds"`
	}
	_, body := f.get(t, "/api/v1/runs/latest/tlds")
	json.Unmarshal([]byte(body), &agg)
	total := 0
	for _, g := range agg.TLDs {
		if g.Key == "com" {
			total = g.Domains
		}
	}
	for _, sort := range []string{"rank", "name", "www", "ns"} {
		for _, dir := range []string{"asc", "desc"} {
			seen := map[string]bool{}
			var order []domainRow
			after := ""
			for pages := 0; pages < 100; pages++ {
				q := url.Values{"sort": {sort}, "dir": {dir}, "limit": {"97"}}
				if after != "" {
					q.Set("after", after)
				}
				_, body := f.get(t, "/api/v1/runs/latest/tlds/com/domains?"+q.Encode())
				var page struct {
					Domains []domainRow `json:"domains"`
					Next    string      `json:"next"`
				}
				if err := json.Unmarshal([]byte(body), &page); err != nil {
					t.Fatal(err)
				}
				for _, d := range page.Domains {
					if seen[d.Domain] {
						t.Fatalf("sort %s %s: %s twice", sort, dir, d.Domain)
					}
					seen[d.Domain] = true
				}
				order = append(order, page.Domains...)
				if after = page.Next; after == "" {
					break
				}
			}
			if len(order) != total {
				t.Errorf("sort %s %s: %d domains over the pages, .com has %d", sort, dir, len(order), total)
			}
			for i := 1; i < len(order); i++ {
				a, b := order[i-1], order[i]
				var ok bool
				switch sort {
				case "rank":
					ok = a.Rank < b.Rank
				case "name":
					ok = a.Domain < b.Domain
				case "www":
					ok = triOrder(a.WWW) < triOrder(b.WWW) || a.WWW == b.WWW && a.Rank < b.Rank
				case "ns":
					ok = triOrder(a.NS) < triOrder(b.NS) || a.NS == b.NS && a.Rank < b.Rank
				}
				if dir == "desc" {
					a, b = b, a
					ok = !ok
				}
				if !ok {
					t.Fatalf("sort %s %s: %+v before %+v", sort, dir, order[i-1], order[i])
				}
			}
		}
	}
}

func triOrder(v string) int {
	return map[string]int{"yes": 0, "unknown": 1, "no": 2, "": 3}[v]
}

// TestDiffEqualsExports: the diff's counts equal those of the two runs' ipv6domain.csv.
func TestDiffEqualsExports(t *testing.T) {
	f := getFixture(t)
	read := func(dir string) map[string][]string {
		rows, err := csv.NewReader(strings.NewReader(readFile(t, dir, "ipv6domain.csv"))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string][]string{}
		for _, r := range rows[1:] {
			out[r[0]] = r
		}
		return out
	}
	a, b := read(f.first), read(f.records)
	var gained, lost [4]int
	for name, ra := range a {
		rb, ok := b[name]
		if !ok || ra[7] != "ok" || rb[7] != "ok" {
			continue
		}
		for i := range 4 {
			switch {
			case ra[1+i] == "0" && rb[1+i] == "1":
				gained[i]++
			case ra[1+i] == "1" && rb[1+i] == "0":
				lost[i]++
			}
		}
	}
	_, body := f.get(t, fmt.Sprintf("/api/v1/runs/%d/diff/%d", f.runs[0], f.runs[2]))
	var got struct {
		Roles []diffRow `json:"roles"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	for i, r := range got.Roles {
		if r.Gained != gained[i] || r.Lost != lost[i] {
			t.Errorf("%s: gained %d lost %d; the exports say %d and %d", r.Role, r.Gained, r.Lost, gained[i], lost[i])
		}
	}
	if gained[2] == 0 {
		t.Error("the fixture's later run should have gained IPv6 on www")
	}
	// The list of gained www domains, page by page, has as many entries as the count.
	n, after := 0, ""
	for pages := 0; pages < 20; pages++ {
		_, body = f.get(t, fmt.Sprintf("/api/v1/runs/%d/diff/%d?role=www&change=gained&after=%s", f.runs[0], f.runs[2], url.QueryEscape(after)))
		var page struct {
			Domains []struct {
				Domain string `json:"domain"`
				Rank   int    `json:"rank"`
			} `json:"domains"`
		}
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatal(err)
		}
		n += len(page.Domains)
		if len(page.Domains) < maxPage {
			break
		}
		last := page.Domains[len(page.Domains)-1]
		after = fmt.Sprintf("%d:%s", last.Rank, last.Domain)
	}
	if n != gained[2] {
		t.Errorf("gained www list has %d domains, want %d", n, gained[2])
	}
}

// TestCSVMatchesJSON: ?format=csv has a header of the JSON field names and a row per item.
func TestCSVMatchesJSON(t *testing.T) {
	f := getFixture(t)
	for path, key := range map[string]string{"/api/v1/runs": "runs", "/api/v1/runs/latest/tlds": "tlds",
		"/api/v1/runs/latest/countries": "countries", "/api/v1/trend": "runs", "/api/v1/runs/latest/tlds/uk/domains": "domains"} {
		_, js := f.get(t, path)
		var doc map[string]json.RawMessage
		json.Unmarshal([]byte(js), &doc)
		var items []map[string]any
		if err := json.Unmarshal(doc[key], &items); err != nil || len(items) == 0 {
			t.Fatalf("%s: %v (%d items)", path, err, len(items))
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		resp, body := f.get(t, path+sep+"format=csv")
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
			t.Errorf("%s CSV: type %s", path, resp.Header.Get("Content-Type"))
		}
		rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatalf("%s CSV: %v", path, err)
		}
		if len(rows)-1 != len(items) || len(rows[0]) != len(items[0]) {
			t.Errorf("%s: CSV has %d rows of %d cells, JSON %d items of %d fields", path, len(rows)-1, len(rows[0]), len(items), len(items[0]))
		}
		for i, col := range rows[0] {
			v, ok := items[0][col]
			if !ok {
				t.Errorf("%s: CSV column %q is no JSON field", path, col)
				continue
			}
			if list, ok := v.([]any); ok {
				// A list (a run's jobs) is one line of text in CSV, empty when it is
				// (TestRunsJobs checks one that is not).
				if len(list) == 0 && rows[1][i] != "" {
					t.Errorf("%s: %s is %q in CSV, [] in JSON", path, col, rows[1][i])
				}
				continue
			}
			if s := fmt.Sprint(v); s != rows[1][i] && !(s == "true" && rows[1][i] == "1" || s == "false" && rows[1][i] == "0") {
				t.Errorf("%s: %s is %q in CSV, %v in JSON", path, col, rows[1][i], v)
			}
		}
	}
}

// TestExportDownloads: a bulk download is the file export writes, plain or gzip.
func TestExportDownloads(t *testing.T) {
	f := getFixture(t)
	for _, name := range []string{"ns.csv", "ipv6domain.csv", "ping.csv", "geoip.csv", "domains.jsonl"} {
		want := readFile(t, f.records, name)
		resp, body := f.get(t, "/api/v1/runs/latest/export/"+name)
		if body != want {
			t.Errorf("%s: download differs from the export (%d vs %d bytes)", name, len(body), len(want))
		}
		if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, name) {
			t.Errorf("%s: Content-Disposition %q", name, cd)
		}
		resp, body = f.get(t, "/api/v1/runs/latest/export/"+name, "Accept-Encoding", "gzip")
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("%s: not gzip-encoded", name)
		}
		zr, err := gzip.NewReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil || string(plain) != want {
			t.Errorf("%s: gzip download differs from the export (%v)", name, err)
		}
	}
}

// TestSafe: escaping, request limits, the opt-out form's token, origin and rate limit.
func TestSafe(t *testing.T) {
	f := getFixture(t)
	_, body := f.get(t, "/search?q="+url.QueryEscape(`"><script>alert(1)</script>`))
	if strings.Contains(body, "<script>alert") {
		t.Error("search text is not escaped")
	}
	contains(t, "search page", body, "&lt;script&gt;")

	// The opt-out form: without a token it is refused; with the page's token it is taken.
	post := func(form url.Values, origin string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/about", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := post(url.Values{"targets": {"example.com"}}, ""); code != http.StatusForbidden {
		t.Errorf("opt-out without token: %d, want 403", code)
	}
	_, page := f.get(t, "/about")
	token := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(page)
	if token == nil {
		t.Fatal("no token in the form")
	}
	if code, _ := post(url.Values{"targets": {"example.com"}, "token": {token[1]}}, "https://elsewhere.example"); code != http.StatusForbidden {
		t.Errorf("opt-out from another origin: %d, want 403", code)
	}
	code, body := post(url.Values{"targets": {"192.0.2.0/24\nexample.com"}, "token": {token[1]}}, f.srv.URL)
	if code != 200 || !strings.Contains(body, "Opt-out request received") || !strings.Contains(body, "<code>192.0.2.0/24</code>") {
		t.Errorf("opt-out: %d\n%.500s", code, body)
	}
	if code, body := post(url.Values{"targets": {"example.org"}, "token": {token[1]}}, ""); code != http.StatusTooManyRequests {
		t.Errorf("second opt-out at once: %d, want 429\n%.300s", code, body)
	}
	if code, _ := post(url.Values{"targets": {strings.Repeat("a", 100<<10)}, "token": {token[1]}}, ""); code != http.StatusBadRequest {
		t.Errorf("oversized form: %d, want 400", code)
	}
	if b := readFile(t, filepath.Dir(f.requests), filepath.Base(f.requests)); strings.Count(b, "\n") != 1 {
		t.Errorf("requests file has %d lines, want 1:\n%s", strings.Count(b, "\n"), b)
	}

	// The server's timeouts and limits.
	srv := HTTPServer(f.web)
	if srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.MaxHeaderBytes == 0 || srv.IdleTimeout == 0 {
		t.Errorf("server without timeouts or limits: %+v", srv)
	}
}

// TestInfoOnly: serve --info-only serves the info page and its assets, nothing else.
func TestInfoOnly(t *testing.T) {
	s, err := New(Config{InfoOnly: true, Info: infopage.Config{Contact: "noc@example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	for path, code := range map[string]int{"/about": 200, "/": 302, "/static/site.css": 200, "/tlds": 404, "/api/v1/runs": 404, "/metrics": 404} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != code {
			t.Errorf("info-only %s: %d, want %d", path, rec.Code, code)
		}
	}
}

// TestMetrics: requests show up in /metrics by route and code.
func TestMetrics(t *testing.T) {
	f := getFixture(t)
	f.get(t, "/tlds")
	f.get(t, "/domain/unknown.example")
	_, body := f.get(t, "/metrics")
	contains(t, "/metrics", body, `v6matrix_http_request_duration_seconds_count{code="200",route="tlds"}`,
		`v6matrix_http_request_duration_seconds_count{code="404",route="domain"}`, "go_goroutines")
}

// TestStatic: assets are served with an ETag, compressed when asked, and not modified.
func TestStatic(t *testing.T) {
	f := getFixture(t)
	resp, body := f.get(t, "/static/vendor/echarts.min.js", "Accept-Encoding", "gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("ETag") == "" {
		t.Fatalf("echarts: encoding %q etag %q", resp.Header.Get("Content-Encoding"), resp.Header.Get("ETag"))
	}
	zr, err := gzip.NewReader(bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !bytes.Equal(plain, f.web.assets["vendor/echarts.min.js"].body) {
		t.Error("gzip asset differs")
	}
	resp, _ = f.get(t, "/static/vendor/echarts.min.js", "If-None-Match", resp.Header.Get("ETag"))
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", resp.StatusCode)
	}
}

// TestNoRunYet: an empty store shows a page that says so, and the API says 404.
func TestNoRunYet(t *testing.T) {
	st := emptyStore(t)
	s, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	for path, code := range map[string]int{"/": 200, "/tlds": 404, "/runs": 200, "/api/v1/runs/latest/tlds": 404, "/api/v1/runs": 200} {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil).WithContext(context.Background()))
		if rec.Code != code {
			t.Errorf("empty store %s: %d, want %d", path, rec.Code, code)
		}
	}
}
