package infopage

import (
	"encoding/json"
	"fmt"
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

func TestTake(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	file := filepath.Join(t.TempDir(), "requests.jsonl")
	h := New(Config{Operator: "Example Lab", Contact: "abuse@example.org", Requests: file, Now: func() time.Time { return now }})
	fresh := h.Token()
	tests := []struct {
		name       string
		form       url.Values
		origin     string
		advance    time.Duration
		wantStatus int
		wantErr    string
	}{
		{"valid", url.Values{"targets": {"192.0.2.0/24\n2001:db8:1::5, Bücher.example"}, "contact": {"noc@example.net"},
			"comment": {"our lab"}, "token": {fresh}}, "", 0, 200, ""},
		{"too soon from the same address", url.Values{"targets": {"example.com"}, "token": {fresh}}, "", time.Second, 429, "one request every few seconds"},
		{"nothing named", url.Values{"targets": {"  "}, "token": {fresh}}, "", time.Minute, 400, "name at least one network"},
		{"junk", url.Values{"targets": {"<script>x</script>"}, "token": {fresh}}, "", time.Minute, 400, `"<script>x</script>" is neither a network nor a domain`},
		{"no token", url.Values{"targets": {"example.com"}}, "", time.Minute, 403, "expired"},
		{"forged token", url.Values{"targets": {"example.com"}, "token": {"493000.00112233445566778899aabbccddeeff"}}, "", time.Minute, 403, "expired"},
		{"another site", url.Values{"targets": {"example.com"}, "token": {fresh}}, "https://evil.example", time.Minute, 403, "another site"},
		{"expired token", url.Values{"targets": {"example.com"}, "token": {fresh}}, "", 3 * time.Hour, 403, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = now.Add(tt.advance)
			r := httptest.NewRequest(http.MethodPost, "http://crawler.example/about", strings.NewReader(tt.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			o := h.Take(r)
			if o.Status != tt.wantStatus || !strings.Contains(strings.Join(o.Errors, "\n"), tt.wantErr) {
				t.Errorf("status %d errors %q, want %d with %q", o.Status, o.Errors, tt.wantStatus, tt.wantErr)
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
	want := Request{Time: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), From: "192.0.2.1",
		Networks: []string{"192.0.2.0/24", "2001:db8:1::5/128"}, Domains: []string{"xn--bcher-kva.example"},
		Contact: "noc@example.net", Comment: "our lab"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stored request (-want +got):\n%s", diff)
	}
}

// TestTakeLimits: a client rotating addresses within its IPv6 /64 is one client, and
// the requests of everyone are at most maxPerHour an hour (a script could otherwise
// fill the requests file until the form refused every request).
func TestTakeLimits(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	h := New(Config{Operator: "Example Lab", Contact: "abuse@example.org", Requests: filepath.Join(t.TempDir(), "r.jsonl"),
		Now: func() time.Time { return now }})
	take := func(from string) int {
		form := url.Values{"targets": {"example.com"}, "token": {h.Token()}}
		r := httptest.NewRequest(http.MethodPost, "http://crawler.example/about", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.RemoteAddr = from
		return h.Take(r).Status
	}
	if a, b := take("[2001:db8:1:2::1]:4000"), take("[2001:db8:1:2::2]:4000"); a != 200 || b != 429 {
		t.Errorf("two addresses of one /64 at once: %d then %d, want 200 then 429", a, b)
	}
	if c := take("[2001:db8:1:3::1]:4000"); c != 200 {
		t.Errorf("another /64: %d, want 200", c)
	}
	n := 2
	for i := 0; n < maxPerHour+5; i++ {
		now = now.Add(time.Second)
		if take(fmt.Sprintf("198.51.100.%d:4000", i)) == 200 {
			n++
			continue
		}
		break
	}
	if n != maxPerHour {
		t.Errorf("%d requests taken in the hour from rotating addresses, want %d", n, maxPerHour)
	}
	now = now.Add(time.Hour)
	if s := take("203.0.113.1:4000"); s != 200 {
		t.Errorf("an hour later: %d, want 200", s)
	}
}
