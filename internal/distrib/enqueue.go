package distrib

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/v6matrix/v6matrix/internal/store"
)

// DefaultShard is how many domains a DNS job takes.
const DefaultShard = 500

// Queue enqueues a distributed run's work: an insert-only River client on the store's
// database.
type Queue struct {
	pg     *store.Postgres
	client *river.Client[pgx.Tx]
}

// Open migrates the job queue's tables (Migrate) and returns the queue of the store's
// database.
func Open(ctx context.Context, pg *store.Postgres) (*Queue, error) {
	if err := Migrate(ctx, pg); err != nil {
		return nil, err
	}
	client, err := river.NewClient(riverpgxv5.New(pg.Pool()), &river.Config{})
	if err != nil {
		return nil, err
	}
	return &Queue{pg: pg, client: client}, nil
}

// Enqueue enqueues the DNS shards of the run's pending domains (shard domains each, in
// rank order), or, when none is pending, whatever next stage is due (a resume).
func (q *Queue) Enqueue(ctx context.Context, run int64, shard int) (shards int, err error) {
	return q.enqueueAfter(ctx, run, shard, store.Cursor{Rank: -1})
}

// enqueueAfter enqueues the shards of the pending domains after the cursor.
func (q *Queue) enqueueAfter(ctx context.Context, run int64, shard int, after store.Cursor) (shards int, err error) {
	if shard < 1 {
		shard = DefaultShard
	}
	for {
		var batch []river.InsertManyParams
		for range 100 {
			page, err := q.pg.Pending(ctx, run, after, shard)
			if err != nil {
				return shards, err
			}
			if len(page) == 0 {
				break
			}
			last := page[len(page)-1]
			batch = append(batch, river.InsertManyParams{Args: ShardArgs{Run: run, AfterRank: after.Rank, AfterName: after.Name, LastRank: last.Rank, LastName: last.Name}})
			after = store.Cursor{Rank: last.Rank, Name: last.Name}
			if len(page) < shard {
				break
			}
		}
		if len(batch) == 0 {
			break
		}
		if err := pgx.BeginFunc(ctx, q.pg.Pool(), func(tx pgx.Tx) error {
			_, err := q.client.InsertManyTx(ctx, tx, batch)
			return err
		}); err != nil {
			return shards, fmt.Errorf("enqueue the DNS shards of run %d: %w", run, err)
		}
		shards += len(batch)
	}
	if shards > 0 {
		return shards, nil
	}
	return 0, q.advance(ctx, run)
}

// Resume puts a distributed run's stopped work back: its jobs that River discarded (out
// of attempts) or that were cancelled are retried, its pending domains enqueued again
// (once: shards already queued are left alone) and whatever next stage is due is
// enqueued. It returns how many jobs it retried and how many shards it enqueued.
func (q *Queue) Resume(ctx context.Context, run int64, shard int) (retried, shards int, err error) {
	rows, err := q.pg.Pool().Query(ctx, `SELECT id FROM river_job
		WHERE kind LIKE 'v6matrix\_%' AND (args->>'run')::bigint = $1 AND state IN ('discarded', 'cancelled')`, run)
	if err != nil {
		return 0, 0, fmt.Errorf("read the jobs of run %d: %w", run, err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, 0, fmt.Errorf("read the jobs of run %d: %w", run, err)
	}
	for _, id := range ids {
		if _, err := q.client.JobRetry(ctx, id); err != nil {
			return retried, 0, fmt.Errorf("retry job %d: %w", id, err)
		}
		retried++
	}
	// Shards not completed save their domains; the pending domains after the last of
	// them (a crawl --distributed stopped while it enqueued) get shards of their own.
	// Before it, a pending domain is in a shard not completed: a shard completes only
	// once every domain of it is saved.
	after := store.Cursor{Rank: -1}
	err = q.pg.Pool().QueryRow(ctx, `SELECT (args->>'last_rank')::bigint, args->>'last_name' FROM river_job
		WHERE kind = $1 AND (args->>'run')::bigint = $2 AND state <> 'completed'
		ORDER BY (args->>'last_rank')::bigint DESC, args->>'last_name' COLLATE "C" DESC LIMIT 1`, kindDNS, run).Scan(&after.Rank, &after.Name)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return retried, 0, fmt.Errorf("read the DNS jobs of run %d: %w", run, err)
	}
	shards, err = q.enqueueAfter(ctx, run, shard, after)
	return retried, shards, err
}

// advance enqueues the stage that is due, in a transaction of its own.
func (q *Queue) advance(ctx context.Context, run int64) error {
	r, err := q.pg.GetRun(ctx, run)
	if err != nil {
		return err
	}
	return advanceLocked(ctx, q.pg, q.client, r)
}

// advanceLocked enqueues the run's stage that is due in a transaction of its own,
// under the run's lock.
func advanceLocked(ctx context.Context, pg *store.Postgres, client *river.Client[pgx.Tx], r store.Run) error {
	return pgx.BeginFunc(ctx, pg.Pool(), func(tx pgx.Tx) error {
		if err := lockRun(ctx, tx, r.ID); err != nil {
			return err
		}
		return advance(ctx, tx, client, r, nil)
	})
}

// advance enqueues the run's next stage when the one before is over (due). Called
// with the run locked (lockRun), after the caller's job is completed in tx, it sees
// every other completion. A job that River discarded counts as not done: the stage
// waits for crawl --resume to retry it.
//
// done is the job just completed (nil: none). While another job of its stage (and
// vantage) is open, nothing can be due: a look at the open jobs (River's index on
// state) answers that without counting every job of the run, which each completion did
// before (bench-net --distributed: O(jobs) per completion, under the run's lock).
func advance(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], r store.Run, done *rivertype.JobRow) error {
	if done != nil && (done.Kind == kindDNS || done.Kind == kindProbe) {
		open, err := othersOpen(ctx, tx, r.ID, done)
		if err != nil || open {
			return err
		}
	}
	c, err := jobCounts(ctx, tx, r.ID)
	if err != nil {
		return err
	}
	next := due(c, r)
	if len(next) == 0 {
		return nil
	}
	_, err = client.InsertManyTx(ctx, tx, next)
	return err
}

// due returns the jobs of the stage that is due given the run's jobs: the plan once
// no DNS shard is left, the finish once nothing else is left (every vantage's probe
// jobs done); none while a stage is still open.
func due(c counts, r store.Run) []river.InsertManyParams {
	var next []river.InsertManyParams
	switch {
	case c.open(kindDNS, "") > 0:
		return nil
	case c.total(kindPlan, "") == 0:
		next = append(next, river.InsertManyParams{Args: PlanArgs{Run: r.ID}})
	case c.open(kindPlan, "") > 0:
		return nil
	case c.allOpen() == 0 && c.total(kindFinish, "") == 0:
		next = append(next, river.InsertManyParams{Args: FinishArgs{Run: r.ID}})
	}
	return next
}

// othersOpen reports whether a job of done's stage (and vantage) other than done is
// still open, by River's index on state.
func othersOpen(ctx context.Context, db querier, run int64, done *rivertype.JobRow) (bool, error) {
	var open bool
	err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM river_job j
		WHERE j.state IN ('available', 'running', 'retryable', 'scheduled', 'pending') AND j.kind = $1
		AND (j.args->>'run')::bigint = $2 AND j.id <> $3
		AND j.args->>'vantage' IS NOT DISTINCT FROM (SELECT args->>'vantage' FROM river_job WHERE id = $3))`,
		done.Kind, run, done.ID).Scan(&open)
	if err != nil {
		return false, fmt.Errorf("run %d: open jobs: %w", run, err)
	}
	return open, nil
}

// querier is what jobCounts and othersOpen read with: a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// JobCount is how many jobs of one stage (and vantage) of a run are in one state.
type JobCount = store.JobCount

// counts are a run's jobs by kind, vantage and state.
type counts []JobCount

func (c counts) sum(match func(JobCount) bool) int {
	n := 0
	for _, j := range c {
		if match(j) {
			n += j.Jobs
		}
	}
	return n
}

// total counts the jobs of a kind (of a vantage, or all when vantage is "").
func (c counts) total(kind, vantage string) int {
	return c.sum(func(j JobCount) bool { return j.Stage == kind && (vantage == "" || j.Vantage == vantage) })
}

// open counts those not completed.
func (c counts) open(kind, vantage string) int {
	return c.sum(func(j JobCount) bool {
		return j.Stage == kind && (vantage == "" || j.Vantage == vantage) && j.State != "completed"
	})
}

// allOpen counts every job of the run not completed.
func (c counts) allOpen() int {
	return c.sum(func(j JobCount) bool { return j.State != "completed" })
}

// jobCounts reads the run's jobs by kind, vantage and state (Stage holds the kind).
func jobCounts(ctx context.Context, db querier, run int64) (counts, error) {
	rows, err := db.Query(ctx, `SELECT kind, coalesce(args->>'vantage', ''), state::text, count(*) FROM river_job
		WHERE kind LIKE 'v6matrix\_%' AND (args->>'run')::bigint = $1 GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, run)
	if err != nil {
		return nil, fmt.Errorf("read the jobs of run %d: %w", run, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (JobCount, error) {
		var j JobCount
		err := row.Scan(&j.Stage, &j.Vantage, &j.State, &j.Jobs)
		return j, err
	})
	if err != nil {
		return nil, fmt.Errorf("read the jobs of run %d: %w", run, err)
	}
	return out, nil
}

// Progress returns a run's jobs by stage, vantage and state, in the order the stages
// run; none for a run that is not distributed.
func Progress(ctx context.Context, pg *store.Postgres, run int64) ([]JobCount, error) {
	var exists bool
	if err := pg.Pool().QueryRow(ctx, `SELECT to_regclass('river_job') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		return nil, err
	}
	c, err := jobCounts(ctx, pg.Pool(), run)
	if err != nil {
		return nil, err
	}
	var out []JobCount
	for _, s := range Stages {
		for _, j := range c {
			if j.Stage == s.Kind {
				j.Stage = s.Name
				out = append(out, j)
			}
		}
	}
	return out, nil
}
