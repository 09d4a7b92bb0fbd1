package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/v6matrix/v6matrix/internal/export"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// testDelete deletes one of two summarised runs with a diff between them: nothing of
// it answers afterwards, and the other run exports the same bytes as before.
func testDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	a, b := FillSynthetic(t, s)
	if err := s.BuildDiff(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenList(ctx, a); err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	before := t.TempDir()
	if _, err := export.Write(ctx, s, b, before, []string{"csv", "jsonl"}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRun(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRun(ctx, a); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRun of the deleted run: %v, want ErrNotFound", err)
	}
	if err := s.DeleteRun(ctx, a); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteRun of a deleted run: %v, want ErrNotFound", err)
	}
	if c, err := s.Counts(ctx, a); err != nil || c.Total != 0 || c.Addresses != 0 {
		t.Errorf("Counts of the deleted run = %+v, %v; want nothing", c, err)
	}
	n := 0
	if err := s.Details(ctx, a, "", func(store.Detail) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("Details of the deleted run: %d domains, %v", n, err)
	}
	if when, err := s.Summarised(ctx, a); err != nil || !when.IsZero() {
		t.Errorf("Summarised of the deleted run = %v, %v", when, err)
	}
	if gs, err := s.Aggregates(ctx, a, "tld"); err != nil || len(gs) != 0 {
		t.Errorf("Aggregates of the deleted run: %d, %v", len(gs), err)
	}
	if _, ok, err := s.Diff(ctx, a, b); err != nil || ok {
		t.Errorf("Diff with the deleted run: built %v, %v", ok, err)
	}
	if cs, err := s.Changes(ctx, a, b, result.RoleWWW, "gained", store.Cursor{}, 10); err != nil || len(cs) != 0 {
		t.Errorf("Changes with the deleted run: %d, %v", len(cs), err)
	}
	if ts, err := s.Trend(ctx, "run", ""); err != nil || len(ts) != 1 || ts[0].Run != b {
		t.Errorf("Trend after the delete = %+v, %v; want run %d only", ts, err, b)
	}
	runs, err := s.ListRuns(ctx)
	if err != nil || len(runs) != 1 || runs[0].ID != b {
		t.Errorf("ListRuns after the delete = %+v, %v", runs, err)
	}
	after := t.TempDir()
	if _, err := export.Write(ctx, s, b, after, []string{"csv", "jsonl"}); err != nil {
		t.Fatal(err)
	}
	SameFiles(t, before, after)
}
