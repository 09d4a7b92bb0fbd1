package summary_test

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/summary"
	"github.com/v6matrix/v6matrix/internal/synthrun"
)

// summaryTables are the queries that dump, in a fixed order, every row Build writes
// (but the summaries table's build time), byte for byte: documents as their version
// byte and JSON (inflated), what they hold whichever deflate encoder wrote them.
var summaryTables = []string{
	`SELECT * FROM domain_summary WHERE run_id = ? ORDER BY name`,
	`SELECT name, doc FROM domain_docs WHERE run_id = ? ORDER BY name`,
	`SELECT * FROM aggregates WHERE run_id = ? ORDER BY kind, key`,
	`SELECT * FROM address_summary WHERE run_id = ? ORDER BY ip`,
}

// tablesDigest returns the SHA-256 of the rows a run's summary wrote into the SQLite
// file at path, and how many rows there were.
func tablesDigest(t testing.TB, path string, run int64) (string, int) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h, n := sha256.New(), 0
	for _, q := range summaryTables {
		rows, err := db.Query(q, run)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if b, ok := v.([]byte); ok && cols[i] == "doc" {
					vals[i] = hex.EncodeToString(inflateDoc(t, b))
				}
			}
			fmt.Fprintf(h, "%q\n", vals)
			n++
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// inflateDoc returns a stored document's version byte and JSON: what it holds,
// whichever deflate encoder wrote it.
func inflateDoc(t testing.TB, doc []byte) []byte {
	t.Helper()
	if len(doc) == 0 {
		t.Fatal("an empty document")
	}
	js, err := io.ReadAll(flate.NewReader(bytes.NewReader(doc[1:])))
	if err != nil {
		t.Fatalf("document: %v", err)
	}
	return append(doc[:1:1], js...)
}

// filled returns a SQLite store (and its file) holding a synthetic run of 3,000
// domains (six pages of Details, name servers shared across them).
func filled(t *testing.T) (*store.SQLite, string, int64) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	st, err := store.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	run, err := synthrun.Fill(ctx, st, synthrun.Config{Domains: 3000, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	return st, path, run
}

// TestBuildTables: the rows Build writes for a synthetic run of 3,000 domains (six
// pages of Details, name servers shared across them) are those the v6matrix before the
// summary's caches wrote, byte for byte (the digest below was taken with it; the
// documents' JSON since they are deflated by klauspost/compress, whose bytes differ),
// so that the website and the export read the same tables.
func TestBuildTables(t *testing.T) {
	ctx := context.Background()
	st, path, run := filled(t)
	for range 2 { // a second build replaces the first
		if err := summary.Build(ctx, st, run, nil); err != nil {
			t.Fatal(err)
		}
	}
	const want = "d4a7febb9a8163911a1133a80f149f6a1c74dff03235137f2de18a59b951871e"
	got, n := tablesDigest(t, path, run)
	if got != want {
		t.Errorf("summary rows (%d) digest %s, want %s", n, got, want)
	}
}

// TestPartialTables: a summary built in two parts, a third of the domains (every third
// rank, so that many shared addresses' best-ranked domain comes in the second part) and
// those of one name server address left to Finish, writes the rows Build writes.
func TestPartialTables(t *testing.T) {
	ctx := context.Background()
	st, path, run := filled(t)
	if err := summary.Build(ctx, st, run, nil); err != nil {
		t.Fatal(err)
	}
	want, n := tablesDigest(t, path, run)

	p, err := summary.Begin(ctx, st, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ns netip.Addr // the first name server address seen: its domains wait too
	later := func(d *store.Detail) bool {
		for _, ref := range d.Hosts {
			if ref.Role != result.RoleNS {
				continue
			}
			h := d.HostsByName[ref.Name]
			for _, ip := range h.V4 {
				if !ns.IsValid() {
					ns = ip
				}
				if ip == ns {
					return true
				}
			}
		}
		return d.Rank%3 == 0
	}
	if err := p.First(ctx, later); err != nil {
		t.Fatal(err)
	}
	if p.Deferred() < 1000 || p.Deferred() > 2000 {
		t.Fatalf("%d domains deferred, want a third and those of one name server", p.Deferred())
	}
	if err := p.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if got, m := tablesDigest(t, path, run); got != want || m != n {
		t.Errorf("two-part summary rows (%d) digest %s, want Build's (%d) %s", m, got, n, want)
	}
}

// racing is a store on which the first write of a provisional summary's domains waits
// for during (another process's final summary) to run.
type racing struct {
	store.Store
	once   sync.Once
	during func()
}

func (r *racing) SaveSummaries(ctx context.Context, c store.Claim, ss []result.DomainSummary) error {
	if c.Provisional {
		r.once.Do(r.during)
	}
	return r.Store.SaveSummaries(ctx, c, ss)
}

// TestProvisionalGivesWay: serve summarises a run still being crawled (Provisional)
// while the crawl's final summary begins and ends on measurements that changed (here
// all of them gone). The provisional summary stops at its next write, and the final
// summary's rows stay as they were, where before the stale rows of the provisional
// one (read before the change) overwrote them.
func TestProvisionalGivesWay(t *testing.T) {
	ctx := context.Background()
	st, path, run := filled(t)
	r, err := st.GetRun(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	r.State = store.RunProbing
	if err := st.UpdateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := summary.Build(ctx, st, run, nil); err != nil {
		t.Fatal(err)
	}
	before, _ := tablesDigest(t, path, run)
	if err := st.SetSummaryFinal(ctx, run, false); err != nil { // the run is crawled on
		t.Fatal(err)
	}
	var want string
	var n int
	rs := &racing{Store: st, during: func() {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`DELETE FROM measurements WHERE run_id = ?`, run); err != nil {
			t.Fatal(err)
		}
		if err := summary.Build(ctx, st, run, nil); err != nil {
			t.Fatal(err)
		}
		want, n = tablesDigest(t, path, run)
	}}
	if err := summary.Provisional(ctx, rs, run, nil); !errors.Is(err, store.ErrSuperseded) {
		t.Fatalf("provisional summary = %v, want ErrSuperseded", err)
	}
	if want == before {
		t.Fatal("the final summary's rows are those before the measurements went: the test shows nothing")
	}
	if got, m := tablesDigest(t, path, run); got != want || m != n {
		t.Errorf("the final summary's rows (%d, %s) changed after the provisional summary stopped (%d, %s)", n, want, m, got)
	}
	// KeepCurrent leaves the run alone too (its provisional summary is refused at once).
	kctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	summary.KeepCurrent(kctx, st, 10*time.Millisecond, nil)
	if got, _ := tablesDigest(t, path, run); got != want {
		t.Error("KeepCurrent changed the final summary of a run in progress")
	}
}
