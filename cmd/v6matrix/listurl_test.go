package main

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/v6matrix/v6matrix/internal/store"
)

// TestCrawlListByURL crawls a list served over HTTP (a ZIP, as Tranco ships it): the run
// records the URL and stores the downloaded copy.
func TestCrawlListByURL(t *testing.T) {
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	w, _ := zw.Create("top-1m.csv")
	io.WriteString(w, "1,d1.com\n2,d2.com\n3,d3.com\n")
	zw.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/top-1m.csv.zip" {
			http.NotFound(w, r)
			return
		}
		w.Write(zipped.Bytes())
	}))
	defer srv.Close()
	resolver, _ := syntheticServer(t, 20)
	db := filepath.Join(t.TempDir(), "url.db")
	url := srv.URL + "/top-1m.csv.zip"
	mustRun(t, "crawl", "--db", db, "--resolver", resolver, "--probes", "none", "--quiet", url)
	rows := listRuns(t, db)
	if r, ok := rows["1"]; !ok || r.Done != "3" {
		t.Fatalf("runs after a crawl of %s: %+v", url, rows)
	}
	st, err := store.OpenSQLite(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run, err := st.GetRun(context.Background(), 1)
	if err != nil || run.ListName != url {
		t.Errorf("run's list %q, %v; want the URL", run.ListName, err)
	}
	// A list that is not there fails the run with the URL in the message.
	r := runBinary(t, "crawl", "--db", db, "--resolver", resolver, "--probes", "none", "--quiet", srv.URL+"/gone.csv")
	if r.code != 1 || !strings.Contains(r.stderr, srv.URL+"/gone.csv") || !strings.Contains(r.stderr, "404") {
		t.Errorf("crawl of a missing URL: exit %d\n%s", r.code, r.stderr)
	}
}
