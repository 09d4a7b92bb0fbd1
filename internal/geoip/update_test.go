package geoip

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func targz(t *testing.T, name string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "GeoLite2_20261201/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name string
		data []byte
	}{{"GeoLite2_20261201/LICENSE.txt", []byte("licence")}, {"GeoLite2_20261201/" + name, b}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return gz(t, buf.Bytes())
}

// fixtureServer serves files by path on loopback and records the requests.
type fixtureServer struct {
	*httptest.Server
	mu    sync.Mutex
	files map[string][]byte
	reqs  []*http.Request
}

func newFixtureServer(t *testing.T, files map[string][]byte) *fixtureServer {
	s := &fixtureServer{files: files}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		b, ok := s.files[r.URL.RequestURI()]
		s.mu.Unlock()
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *fixtureServer) set(path string, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[path] = b
}

var december = func() time.Time { return time.Date(2026, 12, 6, 4, 0, 0, 0, time.UTC) }

func TestUpdateDBIP(t *testing.T) {
	// December's files are not out yet: November's are taken.
	srv := newFixtureServer(t, map[string][]byte{
		"/free/dbip-city-lite-2026-11.mmdb.gz": gz(t, FixtureCity()),
		"/free/dbip-asn-lite-2026-11.mmdb.gz":  gz(t, FixtureASN()),
	})
	dir := filepath.Join(t.TempDir(), "geoip")
	c := UpdateConfig{Dir: dir, BaseURL: srv.URL + "/free", Now: december}
	got, err := Update(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Changed || !got[1].Changed {
		t.Fatalf("installed %+v, want two changed databases", got)
	}
	if got[0].URL != srv.URL+"/free/dbip-city-lite-2026-11.mmdb.gz" || got[0].Type != "GeoLite2-City" || got[1].Type != "GeoLite2-ASN" {
		t.Errorf("installed %+v", got)
	}
	var tried []string
	for _, r := range srv.reqs {
		tried = append(tried, r.URL.Path)
	}
	if want := "/free/dbip-city-lite-2026-12.mmdb.gz /free/dbip-city-lite-2026-11.mmdb.gz /free/dbip-asn-lite-2026-12.mmdb.gz /free/dbip-asn-lite-2026-11.mmdb.gz"; strings.Join(tried, " ") != want {
		t.Errorf("requests %q, want %q", tried, want)
	}
	city, asn := DefaultPaths(dir)
	db, err := Open(city, asn)
	if err != nil {
		t.Fatal(err)
	}
	rec := db.Lookup(netip.MustParseAddr("2001:db8:2::1"))
	db.Close()
	if rec.CountryCode != "DE" || rec.ASN == nil || *rec.ASN != 64501 {
		t.Errorf("lookup in the installed files: %+v", rec)
	}
	for _, f := range []string{CityFile, ASNFile} {
		side, err := os.ReadFile(filepath.Join(dir, f+".json"))
		if err != nil || !bytes.Contains(side, []byte(`"sha256"`)) {
			t.Errorf("sidecar of %s: %s %v", f, side, err)
		}
	}

	// The same files again: nothing replaced.
	again, err := Update(context.Background(), c)
	if err != nil || again[0].Changed || again[1].Changed {
		t.Fatalf("second update: %+v %v, want unchanged", again, err)
	}

	// December's city file appears, damaged: an error naming it, and the installed
	// file stays as it was.
	before, _ := os.ReadFile(city)
	srv.set("/free/dbip-city-lite-2026-12.mmdb.gz", gz(t, []byte("not a database")))
	_, err = Update(context.Background(), c)
	if err == nil || !strings.Contains(err.Error(), "dbip-city-lite-2026-12.mmdb.gz") || !strings.Contains(err.Error(), "not a usable MaxMind DB") {
		t.Fatalf("damaged download: %v", err)
	}
	if after, _ := os.ReadFile(city); !bytes.Equal(before, after) {
		t.Error("a failed update changed the installed file")
	}

	// An ASN database where the City one belongs is refused.
	srv.set("/free/dbip-city-lite-2026-12.mmdb.gz", gz(t, FixtureASN()))
	if _, err = Update(context.Background(), c); err == nil || !strings.Contains(err.Error(), `database type "GeoLite2-ASN", want a City database`) {
		t.Fatalf("wrong type: %v", err)
	}
	// Not gzip.
	srv.set("/free/dbip-city-lite-2026-12.mmdb.gz", FixtureCity())
	if _, err = Update(context.Background(), c); err == nil || !strings.Contains(err.Error(), "not gzip") {
		t.Fatalf("not gzip: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 4 {
		t.Errorf("directory holds %d entries after failures, want the 2 databases and 2 sidecars (no temporary file left)", len(entries))
	}
}

func TestUpdateMaxMind(t *testing.T) {
	city, asn := targz(t, "GeoLite2-City.mmdb", FixtureCity()), targz(t, "GeoLite2-ASN.mmdb", FixtureASN())
	sum := func(b []byte) []byte {
		s := sha256.Sum256(b)
		return []byte(hex.EncodeToString(s[:]) + "  GeoLite2-City_20261201.tar.gz\n")
	}
	srv := newFixtureServer(t, map[string][]byte{
		"/db/GeoLite2-City/download?suffix=tar.gz":        city,
		"/db/GeoLite2-City/download?suffix=tar.gz.sha256": sum(city),
		"/db/GeoLite2-ASN/download?suffix=tar.gz":         asn,
		"/db/GeoLite2-ASN/download?suffix=tar.gz.sha256":  sum(asn),
	})
	dir := t.TempDir()
	c := UpdateConfig{Dir: dir, Source: SourceMaxMind, BaseURL: srv.URL + "/db", AccountID: "12345", LicenseKey: "secret", Now: december}
	got, err := Update(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Type != "GeoLite2-City" || got[1].Type != "GeoLite2-ASN" {
		t.Fatalf("installed %+v", got)
	}
	for _, r := range srv.reqs {
		if u, p, ok := r.BasicAuth(); !ok || u != "12345" || p != "secret" {
			t.Errorf("%s: basic auth %q %q %v", r.URL, u, p, ok)
		}
	}
	if _, err := Open(filepath.Join(dir, CityFile), filepath.Join(dir, ASNFile)); err != nil {
		t.Fatal(err)
	}

	srv.set("/db/GeoLite2-City/download?suffix=tar.gz.sha256", []byte("00ff  GeoLite2-City.tar.gz\n"))
	if _, err := Update(context.Background(), c); err == nil || !strings.Contains(err.Error(), "download damaged") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("checksum mismatch: %v", err)
	}
	c.LicenseKey = ""
	if _, err := Update(context.Background(), c); err == nil || !strings.Contains(err.Error(), "licence key") {
		t.Fatalf("no licence key: %v", err)
	}
}
