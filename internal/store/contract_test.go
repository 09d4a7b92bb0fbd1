package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/store/pgtest"
	"github.com/v6matrix/v6matrix/internal/store/storetest"
	"github.com/v6matrix/v6matrix/internal/summary"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func openSQLite(t testing.TB) store.Store {
	s, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "contract.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t testing.TB) store.Store {
	s, err := store.Open(context.Background(), pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLiteContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openSQLite(t) })
}

func TestPostgresContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openPostgres(t) })
}

// TestStoresAgree fills both stores alike and requires the same answers and exports.
func TestStoresAgree(t *testing.T) { storetest.Compare(t, openSQLite(t), openPostgres(t)) }

// TestPostgresOpen: processes opening a fresh database at once migrate it once (the
// advisory lock), and opening it again applies nothing.
func TestPostgresOpen(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			s, err := store.OpenPostgres(ctx, dsn)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("open %d: %v", i, err)
		}
	}
	s, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetRun(ctx, 7); err == nil || !strings.Contains(err.Error(), "run 7 in postgres:///") {
		t.Errorf("GetRun(7) = %v, want an error naming the database", err)
	}
}

func TestPostgresErrors(t *testing.T) {
	ctx := context.Background()
	future := pgtest.DSN(t)
	s, err := store.OpenPostgres(ctx, future)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn, err := pgx.Connect(ctx, future)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, `UPDATE schema_version SET version = 99`)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, dsn, want, secret string }{
		{"newer schema", future, "database " + future + ": schema version 99 is newer than this v6matrix knows (", "s3cret"},
		{"no server", "postgres://v6:s3cret@/nodb?host=/nonexistent-dir&connect_timeout=2", "database postgres://v6@/nodb?", "s3cret"},
		{"bad port", "postgres://v6:s3cret@localhost:99999/db", "database postgres://v6@localhost:99999/db:", "s3cret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := store.Open(ctx, tt.dsn)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), tt.secret) {
				t.Errorf("error %v, want prefix %q and no password", err, tt.want)
			}
		})
	}
}

// TestCopy copies a summarised run from SQLite to PostgreSQL and back: the copies
// hold the same documents before they are summarised, export byte-identically and
// summarise to the same aggregates. An unfinished run's copies give a resume the same
// input (targets, name server pairs, checks, pending domains).
func TestCopy(t *testing.T) {
	ctx := context.Background()
	src, pg, back := openSQLite(t), openPostgres(t), openSQLite(t)
	a, _ := storetest.FillSynthetic(t, src)
	list := []byte("1,d0000001.com\n2,d0000002.net\n")
	if _, _, err := src.SaveList(ctx, a, bytes.NewReader(list)); err != nil {
		t.Fatal(err)
	}
	for _, run := range []int64{a} {
		for _, hop := range [][2]store.Store{{src, pg}, {pg, back}} {
			id, err := store.Copy(ctx, hop[0], hop[1], run)
			if err != nil {
				t.Fatal(err)
			}
			if id != run {
				t.Fatalf("copy of run %d is run %d in an empty store", run, id)
			}
			storetest.SameDocs(t, hop[0], run, hop[1], id)
			if err := summary.Build(ctx, hop[1], id, nil); err != nil {
				t.Fatal(err)
			}
		}
		storetest.Same(t, src, pg, run)
		storetest.Same(t, src, back, run)
		for _, s := range []store.Store{pg, back} {
			rc, err := s.OpenList(ctx, run)
			if err != nil {
				t.Fatalf("the copy's list: %v", err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(got, list) {
				t.Errorf("the copy's list is %q, want %q", got, list)
			}
		}
		for _, s := range []store.Store{pg, back} {
			want, _ := src.Aggregates(ctx, run, "tld")
			got, err := s.Aggregates(ctx, run, "tld")
			if err != nil || !cmp.Equal(want, got) {
				t.Errorf("aggregates of the copy of run %d: %v\n%s", run, err, cmp.Diff(want, got))
			}
		}
	}
	u := storetest.FillUnfinished(t, src)
	upg, err := store.Copy(ctx, src, pg, u)
	if err != nil {
		t.Fatal(err)
	}
	ub, err := store.Copy(ctx, pg, back, upg)
	if err != nil {
		t.Fatal(err)
	}
	storetest.SameInput(t, src, u, pg, upg)
	storetest.SameInput(t, src, u, back, ub)
	if _, err := store.Copy(ctx, src, pg, 99); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("copy of a missing run = %v, want ErrNotFound", err)
	}
}

// TestManyLocated: SaveAggregates takes a run's located addresses one at a time
// (25,000: the PostgreSQL store sends them in pages of 10,000) and stores every one.
func TestManyLocated(t *testing.T) {
	for name, open := range map[string]func(testing.TB) store.Store{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s := open(t)
			run, err := s.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "many", State: store.RunDone})
			if err != nil {
				t.Fatal(err)
			}
			const n = 25_000
			as := func(yield func(result.AddressSummary) bool) {
				for i := range n {
					ip := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
					if !yield(result.AddressSummary{IP: ip.String(), Family: 4, CountryCode: "DE", Domains: 1 + i%3, Domain: "a.test"}) {
						return
					}
				}
			}
			if err := s.SaveAggregates(ctx, store.Claim{Run: run}, nil, as); err != nil {
				t.Fatal(err)
			}
			got, err := s.Located(ctx, run, "country", "DE", n+1, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n {
				t.Fatalf("%d addresses located in DE, want %d", len(got), n)
			}
			if got[0].Domains != 3 || got[n-1].Domains != 1 {
				t.Errorf("most used first: %d ... %d domains, want 3 ... 1", got[0].Domains, got[n-1].Domains)
			}
		})
	}
}

// TestLockRun takes a run's crawl lock from a vantage through two handles of one
// database, as two processes would: the second fails with ErrRunLocked until the
// first lets go; another run's lock, and the run's from another vantage, are free
// meanwhile.
func TestLockRun(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opens := map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store {
			s, err := store.OpenSQLite(ctx, filepath.Join(dir, "lock.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		"postgres": func() func(t *testing.T) store.Store {
			var dsn string
			return func(t *testing.T) store.Store {
				if dsn == "" {
					dsn = pgtest.DSN(t)
				}
				s, err := store.Open(ctx, dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { s.Close() })
				return s
			}
		}(),
	}
	for name, open := range opens {
		t.Run(name, func(t *testing.T) {
			a, b := open(t), open(t)
			unlock, err := a.LockRun(ctx, 3, "east")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.LockRun(ctx, 3, "east"); !errors.Is(err, store.ErrRunLocked) {
				t.Errorf("second lock of run 3 from east: %v, want ErrRunLocked", err)
			}
			for _, other := range []struct {
				run     int64
				vantage string
			}{{4, "east"}, {3, "west"}} {
				unlock, err := b.LockRun(ctx, other.run, other.vantage)
				if err != nil {
					t.Errorf("lock of run %d from %s beside run 3's from east: %v", other.run, other.vantage, err)
				} else {
					unlock()
				}
			}
			unlock()
			again, err := b.LockRun(ctx, 3, "east")
			if err != nil {
				t.Fatalf("lock of run 3 from east after its unlock: %v", err)
			}
			again()
		})
	}
}
