package store_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/store"
)

// TestPostgresWithin: a Within view's writes belong to the caller's transaction, so a
// rolled-back job leaves no row and a committed one leaves its rows once.
func TestPostgresWithin(t *testing.T) {
	ctx := context.Background()
	pg := openPostgres(t).(*store.Postgres)
	run, err := pg.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "within", State: store.RunProbing})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("2001:db8::1")
	save := func(commit bool) {
		t.Helper()
		tx, err := pg.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if err := pg.Within(tx).SaveMeasurements(ctx, run, []store.Measurement{{IP: ip, Kind: "geo", Value: map[string]string{"cc": "DE"}}}); err != nil {
			t.Fatal(err)
		}
		if commit {
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	measured := func() int {
		t.Helper()
		m, err := pg.Measured(ctx, run, "")
		if err != nil {
			t.Fatal(err)
		}
		return len(m[ip])
	}
	save(false)
	if n := measured(); n != 0 {
		t.Fatalf("after rollback: %d kinds measured, want 0", n)
	}
	save(true)
	save(true) // at-least-once delivery: a retried job writes the same row again
	if n := measured(); n != 1 {
		t.Fatalf("after two commits: %d kinds measured, want 1", n)
	}
	if pg.Within(nil).Pool() != nil {
		t.Fatal("a Within view has a pool of its own")
	}
}
