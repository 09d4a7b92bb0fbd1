package summary

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/v6matrix/v6matrix/internal/store"
)

// Diff returns what changed from run a to run b, summarising either run first if it
// was not, and recording the diff if it was not recorded yet.
func Diff(ctx context.Context, st store.Store, a, b int64, log *slog.Logger) (store.DiffCounts, error) {
	c, ok, err := st.Diff(ctx, a, b)
	if err != nil || ok {
		return c, err
	}
	for _, run := range []int64{a, b} {
		when, err := st.Summarised(ctx, run)
		if err != nil {
			return c, err
		}
		if when.IsZero() {
			if err := Build(ctx, st, run, log); err != nil {
				return c, err
			}
		}
	}
	if err := st.BuildDiff(ctx, a, b); err != nil {
		return c, fmt.Errorf("diff of runs %d and %d: %w", a, b, err)
	}
	c, _, err = st.Diff(ctx, a, b)
	return c, err
}
