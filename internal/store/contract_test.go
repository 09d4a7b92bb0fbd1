package store_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/store/pgtest"
	"github.com/v6matrix/v6matrix/internal/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func openSQLite(t *testing.T) store.Store {
	s, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "contract.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgres(t *testing.T) store.Store {
	s, err := store.Open(context.Background(), pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSQLiteContract(t *testing.T)   { storetest.Run(t, openSQLite) }
func TestPostgresContract(t *testing.T) { storetest.Run(t, openPostgres) }

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
	tests := []struct{ name, dsn, want, secret string }{
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
