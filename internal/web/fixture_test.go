package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/export"
	"github.com/v6matrix/v6matrix/internal/infopage"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/store/pgtest"
	"github.com/v6matrix/v6matrix/internal/summary"
	"github.com/v6matrix/v6matrix/internal/synthrun"
)

// fixture is a store with three summarised synthetic runs (a month apart, IPv6 growing),
// the latest run's exported record files, and a server over them.
type fixture struct {
	st       store.Store
	runs     []int64
	records  string // the latest run's export
	first    string // the first run's export
	requests string // the opt-out requests file
	srv      *httptest.Server
	web      *Server
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

// fixtureDomains is the size of each synthetic run.
const fixtureDomains = 2000

func getFixture(t testing.TB) *fixture {
	t.Helper()
	fixOnce.Do(func() { fix, fixErr = newFixture() })
	if fixErr != nil {
		t.Fatalf("fixture: %v", fixErr)
	}
	return fix
}

func newFixture() (*fixture, error) {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "v6matrix-web-")
	if err != nil {
		return nil, err
	}
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "web.db"))
	if err != nil {
		return nil, err
	}
	f := &fixture{st: st, records: filepath.Join(dir, "records"), first: filepath.Join(dir, "first"),
		requests: filepath.Join(dir, "requests.jsonl")}
	for i := range 3 {
		id, err := synthrun.Fill(ctx, st, synthrun.Config{Domains: fixtureDomains, Seed: uint64(i + 1), V6Boost: float64(3 * i),
			Started: time.Date(2026, time.Month(9+i), 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			return nil, err
		}
		if err := summary.Build(ctx, st, id, nil); err != nil {
			return nil, err
		}
		f.runs = append(f.runs, id)
	}
	if _, err := export.Write(ctx, st, f.runs[2], f.records, export.Formats); err != nil {
		return nil, err
	}
	if _, err := export.Write(ctx, st, f.runs[0], f.first, []string{"csv"}); err != nil {
		return nil, err
	}
	f.web, err = New(Config{Store: st, Info: infopage.Config{Operator: "Test Lab", Contact: "abuse@example.org",
		Requests: f.requests, Ports: []string{"tcp/25", "tcp/80"}, Rate: "slowly"}})
	if err != nil {
		return nil, err
	}
	f.srv = httptest.NewServer(f.web)
	return f, nil
}

func TestMain(m *testing.M) {
	code := pgtest.Run(m) // the PostgreSQL cluster of the distributed runs' tests
	if fix != nil {
		fix.srv.Close()
		fix.st.Close()
	}
	os.Exit(code)
}

// get fetches a path of the fixture's server.
func (f *fixture) get(t *testing.T, path string, header ...string) (*http.Response, string) {
	t.Helper()
	return fetch(t, http.MethodGet, f.srv.URL+path, header...)
}

// fetch sends a request with the headers given as name, value pairs.
func fetch(t *testing.T, method, url string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req) // no redirects followed, no transparent gzip
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// readFile returns a file of an export directory.
func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func contains(t *testing.T, what, body string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

// emptyStore is a store without runs.
func emptyStore(t *testing.T) store.Store {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "empty.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
