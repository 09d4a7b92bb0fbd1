package main

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/geoip"
)

// TestGeoIPUpdateThenCrawl installs the GeoIP databases from a local HTTP server with
// `geoip update`, then crawls without --geoip-city/--geoip-asn: the crawl finds them.
func TestGeoIPUpdateThenCrawl(t *testing.T) {
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(b)
		w.Close()
		return buf.Bytes()
	}
	month := time.Now().UTC().Format("2006-01")
	files := map[string][]byte{
		"/free/dbip-city-lite-" + month + ".mmdb.gz": gz(geoip.FixtureCity()),
		"/free/dbip-asn-lite-" + month + ".mmdb.gz":  gz(geoip.FixtureASN()),
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()

	dir := t.TempDir()
	geoDir := filepath.Join(dir, "geoip")
	t.Setenv("V6MATRIX_GEOIP_DIR", geoDir)
	r := mustRun(t, "geoip", "update", "--base-url", srv.URL+"/free")
	if !strings.Contains(r.stdout, "city\tinstalled\t"+filepath.Join(geoDir, geoip.CityFile)) || !strings.Contains(r.stdout, "asn\tinstalled\t") {
		t.Fatalf("geoip update printed:\n%s", r.stdout)
	}
	if r = mustRun(t, "geoip", "update", "--base-url", srv.URL+"/free"); strings.Count(r.stdout, "unchanged") != 2 {
		t.Fatalf("second geoip update printed:\n%s", r.stdout)
	}
	if r = runBinary(t, "geoip", "update", "--base-url", srv.URL+"/nothing-here"); r.code != 1 || !strings.Contains(r.stderr, "/nothing-here/dbip-city-lite-") || !strings.Contains(r.stderr, "HTTP 404") {
		t.Fatalf("update from an empty server: exit %d\n%s", r.code, r.stderr)
	}

	resolver, _ := syntheticServer(t, 20)
	list, _ := writeList(t, dir, 5)
	db := filepath.Join(dir, "geo.db")
	r = mustRun(t, "crawl", "--db", db, "--resolver", resolver, "--probes", "geo", "--quiet", list)
	out := filepath.Join(dir, "out")
	mustRun(t, "export", "--db", db, "--out", out)
	csv, err := os.ReadFile(filepath.Join(out, "geoip.csv"))
	if err != nil {
		t.Fatal(err)
	}
	// The shared hosts are in 2001:db8:1::/64: AS64500, London, in the fixture.
	if !strings.Contains(string(csv), "64500") || !strings.Contains(string(csv), "London") {
		t.Errorf("geoip.csv without the installed databases' answers:\n%s", csv)
	}
}
