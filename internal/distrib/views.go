package distrib

import (
	"context"
	"sync"
	"time"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// shardView is the store as a DNS job's crawl sees it: only the shard's pending
// domains, and its saves kept for the transaction that completes the job.
type shardView struct {
	*store.Postgres
	shard ShardArgs

	mu    sync.Mutex
	saved store.Batch
}

// Pending returns the shard's pending domains after the cursor.
func (v *shardView) Pending(ctx context.Context, run int64, after store.Cursor, limit int) ([]result.Domain, error) {
	from := store.Cursor{Rank: v.shard.AfterRank, Name: v.shard.AfterName}
	if less(after, from) {
		after = from
	}
	page, err := v.Postgres.Pending(ctx, run, after, limit)
	if err != nil {
		return nil, err
	}
	last := store.Cursor{Rank: v.shard.LastRank, Name: v.shard.LastName}
	for i, d := range page {
		if less(last, store.Cursor{Rank: d.Rank, Name: d.Name}) {
			return page[:i], nil
		}
	}
	return page, nil
}

// less orders cursors as the store pages domains: by rank, then name.
func less(a, b store.Cursor) bool {
	return a.Rank < b.Rank || a.Rank == b.Rank && a.Name < b.Name
}

// Save keeps the batch for the job's completion.
func (v *shardView) Save(_ context.Context, _ int64, b store.Batch) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.saved.Domains = append(v.saved.Domains, b.Domains...)
	v.saved.Hosts = append(v.saved.Hosts, b.Hosts...)
	v.saved.Addresses = append(v.saved.Addresses, b.Addresses...)
	v.saved.Targets = append(v.saved.Targets, b.Targets...)
	v.saved.NSTargets = append(v.saved.NSTargets, b.NSTargets...)
	return nil
}

// take returns what was saved since the last take.
func (v *shardView) take() store.Batch {
	v.mu.Lock()
	defer v.mu.Unlock()
	b := v.saved
	v.saved = store.Batch{}
	return b
}

// measureView is the store as a probe job's stage sees it: measurements are kept for
// the transaction that completes the job, except that those older than checkpoint are
// written at once (idempotent upserts), so that a job that dies re-sends little.
type measureView struct {
	*store.Postgres
	checkpoint time.Duration

	mu     sync.Mutex
	kept   []store.Measurement
	oldest time.Time
}

// SaveMeasurements keeps ms, writing what is kept once the oldest is a checkpoint old.
func (v *measureView) SaveMeasurements(ctx context.Context, run int64, ms []store.Measurement) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.kept) == 0 {
		v.oldest = time.Now()
	}
	v.kept = append(v.kept, ms...)
	if time.Since(v.oldest) < v.checkpoint {
		return nil
	}
	if err := v.Postgres.SaveMeasurements(ctx, run, v.kept); err != nil {
		return err
	}
	v.kept = nil
	return nil
}

// take returns what is kept.
func (v *measureView) take() []store.Measurement {
	v.mu.Lock()
	defer v.mu.Unlock()
	ms := v.kept
	v.kept = nil
	return ms
}

// Counts answers the shard's crawl without reading the run: a shard's progress is the
// worker's counters (what it saved). Counting the run's domains at every shard was 9 s
// of PostgreSQL's time in a 100k run (bench-net --distributed, 203 calls).
func (v *shardView) Counts(context.Context, int64) (store.Counts, error) {
	return store.Counts{}, nil
}
