package infopage

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func newServer(t *testing.T, now *time.Time) (*httptest.Server, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "requests.jsonl")
	h := New(Config{Operator: "Example Lab", Contact: "abuse@example.org", Sources: []string{"192.0.2.7", "2001:db8::7"},
		Ports: []string{"tcp/25", "tcp/80", "tcp/443"}, Rate: "at most 50 probes per second", Version: "1.0",
		Requests: file, Now: func() time.Time { return *now }})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv, file
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPage(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	srv, _ := newServer(t, &now)
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page := body(t, resp)
	for _, want := range []string{"v6matrix", "Example Lab", "<code>tcp/443</code>", "<code>2001:db8::7</code>",
		"mailto:abuse@example.org", `action="/opt-out"`, "at most 50 probes per second"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for path, code := range map[string]int{"/nothing": 404, "/opt-out": 405} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, code)
		}
	}
}

func TestOptOut(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	srv, file := newServer(t, &now)
	post := func(form url.Values) (int, string) {
		resp, err := http.PostForm(srv.URL+"/opt-out", form)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body(t, resp)
	}

	tests := []struct {
		name     string
		form     url.Values
		advance  time.Duration
		wantCode int
		wantText string
	}{
		{"valid", url.Values{"targets": {"192.0.2.0/24\n2001:db8:1::5, Bücher.example"}, "contact": {"noc@example.net"}, "comment": {"our lab"}},
			0, 200, "<code>192.0.2.0/24</code>"},
		{"too soon from the same address", url.Values{"targets": {"example.com"}}, time.Second, 429, "one request every few seconds"},
		{"nothing named", url.Values{"targets": {"  "}}, time.Minute, 400, "name at least one network"},
		{"junk is escaped", url.Values{"targets": {"<script>x</script>"}}, time.Minute, 400,
			"&#34;&lt;script&gt;x&lt;/script&gt;&#34; is neither a network nor a domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = now.Add(tt.advance)
			code, page := post(tt.form)
			if code != tt.wantCode || !strings.Contains(page, tt.wantText) {
				t.Errorf("status %d, want %d with %q; page:\n%s", code, tt.wantCode, tt.wantText, page)
			}
		})
	}

	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 1 {
		t.Fatalf("requests file has %d lines, want only the valid request:\n%s", len(lines), data)
	}
	var got Request
	if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
		t.Fatal(err)
	}
	want := Request{Time: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), From: "127.0.0.1",
		Networks: []string{"192.0.2.0/24", "2001:db8:1::5/128"}, Domains: []string{"xn--bcher-kva.example"},
		Contact: "noc@example.net", Comment: "our lab"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored request (-want +got):\n%s", diff)
	}
}
