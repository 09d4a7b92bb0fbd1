package domains

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, text := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, text)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFetch(t *testing.T) {
	const list = "1,example.com\n2,example.net\n"
	files := map[string][]byte{
		"/top-1m.csv":     []byte(list),
		"/top-1m.csv.zip": zipOf(t, map[string]string{"top-1m.csv": list}),
		"/two.zip":        zipOf(t, map[string]string{"a.csv": list, "b.csv": list}),
		"/broken.zip":     []byte("PK\x03\x04 and then nothing"),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, ok := files[r.URL.Path]; ok {
			w.Write(b)
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	for _, tc := range []struct{ path, want, err string }{
		{"/top-1m.csv", list, ""},
		{"/top-1m.csv.zip", list, ""},
		{"/two.zip", "", "the ZIP holds 2 files, want one list"},
		{"/broken.zip", "", "damaged ZIP"},
		{"/missing.csv", "", "404 Not Found"},
	} {
		var out bytes.Buffer
		n, err := Fetch(context.Background(), srv.Client(), srv.URL+tc.path, &out)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), srv.URL+tc.path) {
				t.Errorf("%s: error %v, want one naming the URL and %q", tc.path, err, tc.err)
			}
			continue
		}
		if err != nil || out.String() != tc.want || n != int64(len(tc.want)) {
			t.Errorf("%s: %d bytes %q, %v", tc.path, n, out.String(), err)
		}
		// What was fetched reads as a list.
		r := NewReader(&out, tc.path)
		if e, err := r.Next(); err != nil || e.Name != "example.com" || e.Rank != 1 {
			t.Errorf("%s: first entry %+v, %v", tc.path, e, err)
		}
	}
}

func TestListSource(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if got := ListSource("tranco"); got != KnownLists["tranco"] {
		t.Errorf("ListSource(tranco) = %q", got)
	}
	if got := ListSource("Majestic"); got != KnownLists["majestic"] {
		t.Errorf("ListSource(Majestic) = %q", got)
	}
	if got := ListSource("https://example.org/list.csv"); got != "https://example.org/list.csv" {
		t.Errorf("ListSource(URL) = %q", got)
	}
	for _, local := range []string{"top.csv", "-", filepath.Join(dir, "x.csv")} {
		if got := ListSource(local); got != "" {
			t.Errorf("ListSource(%q) = %q, want a local file", local, got)
		}
	}
	// A file named like a known list is the file.
	if err := os.WriteFile("tranco", []byte("1,a.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := ListSource("tranco"); got != "" {
		t.Errorf("ListSource(tranco) with a file of that name = %q", got)
	}
}
