// Package distrib is a run's distributed mode: its work as jobs of a River queue
// (github.com/riverqueue/river) in the run's own PostgreSQL database, done by any
// number of worker processes on any number of machines (v6matrix crawl --distributed,
// v6matrix worker).
//
// A run's jobs, in order (each stage is enqueued by the job that completes the one
// before, with River's unique jobs, so that it is enqueued once):
//
//   - dns: one per shard of the run's domains in rank order (Enqueue), on the DNS queue;
//     the shard's commit files the addresses it found in their buckets (a hash of their
//     network, a /24 or /48: polite.Config.Network) and enqueues, for each vantage, a
//     probe job of each bucket that gained some (buckets.go);
//   - probe: a bucket's addresses measured by the probe stage (measure.Part), with the
//     name server checks of those addresses beside the probes as in one process, on the
//     vantage's queue, beside the DNS shards; one job of a bucket at a time, so that the
//     per-address and per-network limits of docs/POLITENESS.md hold wherever it runs;
//   - plan: when every shard is done, marks the run probing and enqueues every bucket
//     once more (an address found again may want more kinds);
//   - finish: when nothing else is left, builds the run's summary and records it done.
//
// A job's results are written in the transaction that completes it (river.JobCompleteTx)
// and every write is an upsert, so that a job delivered again never duplicates a row; a
// retried job skips what is saved. A long job stops after a slice of its lease, saves
// what it finished and snoozes (river.JobSnooze), so that a worker that dies loses at
// most a slice: River rescues its job after the lease (Config.Lease).
package distrib

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/v6matrix/v6matrix/internal/store"
)

// DNSQueue is the queue of the DNS shards and of the jobs that plan the next stages.
const DNSQueue = "v6matrix_dns"

// VantageQueue is the queue of a vantage's probe jobs.
func VantageQueue(vantage string) string { return "v6matrix_probe_" + vantage }

// vantageRE is what a vantage name may be: the rest of a River queue name.
var vantageRE = regexp.MustCompile(`^[a-z0-9]+(?:[_-]?[a-z0-9]+)*$`)

// CheckVantage says whether name can be a vantage of a distributed run: lower-case
// letters and digits, single - or _ between them (it names the vantage's queue).
func CheckVantage(name string) error {
	if !vantageRE.MatchString(name) || len(name) > 100 {
		return fmt.Errorf("vantage %q: want lower-case letters and digits, with single - or _ between them (at most 100 characters)", name)
	}
	return nil
}

// Vantages returns the vantages a distributed run is measured from: the "vantages" of
// its options (JSON), else its own vantage (store.Run.Vantage, the first of them).
func Vantages(r store.Run) []string {
	var o struct {
		Vantages []string `json:"vantages"`
	}
	if json.Unmarshal([]byte(r.Options), &o) == nil && len(o.Vantages) > 0 {
		return o.Vantages
	}
	return SplitVantages(r.Vantage)
}

// SplitVantages returns the vantages of a comma-separated list.
func SplitVantages(list string) []string {
	var out []string
	for _, v := range strings.Split(list, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// The job kinds, one per stage.
const (
	kindDNS    = "v6matrix_dns"
	kindPlan   = "v6matrix_plan"
	kindProbe  = "v6matrix_probe"
	kindFinish = "v6matrix_finish"
)

// Stages names the job kinds as `v6matrix runs` shows them, in the order they run.
var Stages = []struct{ Kind, Name string }{
	{kindDNS, "dns"}, {kindPlan, "plan"}, {kindProbe, "probe"}, {kindFinish, "finish"},
}

// unique makes a job's arguments its identity: the same job enqueued twice (a retried
// stage, a resume) is one job, also once it has completed.
var unique = river.UniqueOpts{ByArgs: true}

// ShardArgs is a DNS shard: the run's domains after After up to Last included, in
// (rank, name) order.
type ShardArgs struct {
	Run       int64  `json:"run"`
	AfterRank int    `json:"after_rank"`
	AfterName string `json:"after_name"`
	LastRank  int    `json:"last_rank"`
	LastName  string `json:"last_name"`
}

// Kind is the job kind.
func (ShardArgs) Kind() string { return kindDNS }

// InsertOpts puts the job on the DNS queue, once.
func (ShardArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: DNSQueue, UniqueOpts: unique}
}

// RunArgs are the arguments of the jobs that concern a whole run (plan, finish).
type RunArgs struct {
	Run int64 `json:"run"`
}

// PlanArgs plans the probe jobs of a run whose DNS stage is done.
type PlanArgs RunArgs

// Kind is the job kind.
func (PlanArgs) Kind() string { return kindPlan }

// InsertOpts puts the job on the DNS queue, once.
func (PlanArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: DNSQueue, UniqueOpts: unique, Priority: 1}
}

// FinishArgs builds a finished run's summary and records it done.
type FinishArgs RunArgs

// Kind is the job kind.
func (FinishArgs) Kind() string { return kindFinish }

// InsertOpts puts the job on the DNS queue, once.
func (FinishArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: DNSQueue, UniqueOpts: unique, Priority: 1}
}

// ProbeArgs is a probe job: a bucket's addresses (see buckets.go), probed (with their
// name server checks) from a vantage.
type ProbeArgs struct {
	Run     int64  `json:"run"`
	Vantage string `json:"vantage"`
	Bucket  int32  `json:"bucket"`
}

// Kind is the job kind.
func (ProbeArgs) Kind() string { return kindProbe }

// InsertOpts puts the job on the vantage's queue, once while it is open: a bucket
// whose job completed gets another when more addresses come.
func (a ProbeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: VantageQueue(a.Vantage), UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: uniqueStates}}
}

// schemaLock is the advisory lock under which River's migrations and ours run, so
// that workers starting at once on a fresh database do not race ("v6mq").
const schemaLock = 0x76366d71

// runLock is the first key of the advisory lock that serializes the completions of
// one run's jobs ("v6mr"): the targets a DNS shard merges, and the check whether a
// stage is over, see the commits before them.
const runLock = 0x76366d72

// Migrate brings River's tables (rivermigrate) and the workers' table up to date.
func Migrate(ctx context.Context, pg *store.Postgres) error {
	pool := pg.Pool()
	if pool == nil {
		return errors.New("distrib: the store has no connection pool")
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return err
	}
	// River's migrations each run in a transaction of their own (one adds an enum value
	// that the next uses): a session lock on a connection of its own serializes them.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("job queue migrations: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(schemaLock)); err != nil {
		return fmt.Errorf("job queue migrations: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(schemaLock))
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("job queue migrations: %w", err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS v6matrix_workers (
		id TEXT PRIMARY KEY, vantage TEXT NOT NULL, host TEXT NOT NULL, seen TIMESTAMPTZ NOT NULL)`); err != nil {
		return fmt.Errorf("workers table: %w", err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS v6matrix_bucket_ips (
		run_id BIGINT NOT NULL, bucket INT NOT NULL, ip TEXT NOT NULL, PRIMARY KEY (run_id, bucket, ip))`); err != nil {
		return fmt.Errorf("buckets table: %w", err)
	}
	// An address is in one bucket of its run (fileTargets), whatever the bucket a
	// worker computes for it.
	if _, err := pool.Exec(ctx, `CREATE UNIQUE INDEX IF NOT EXISTS v6matrix_bucket_ips_ip ON v6matrix_bucket_ips (run_id, ip)`); err != nil {
		return fmt.Errorf("buckets table: %w", err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS v6matrix_buckets (
		run_id BIGINT NOT NULL, bucket INT NOT NULL, gen BIGINT NOT NULL, PRIMARY KEY (run_id, bucket))`); err != nil {
		return fmt.Errorf("buckets table: %w", err)
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS v6matrix_schedule (
		name TEXT NOT NULL, period TIMESTAMPTZ NOT NULL, job BIGINT NOT NULL, run BIGINT, PRIMARY KEY (name, period))`); err != nil {
		return fmt.Errorf("schedule table: %w", err)
	}
	return nil
}

// lockRun takes the run's completion lock until tx ends.
func lockRun(ctx context.Context, tx pgx.Tx, run int64) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, int32(runLock), int32(run))
	return err
}
