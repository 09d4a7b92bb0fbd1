package distrib

import (
	"context"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/v6matrix/v6matrix/internal/store"
)

// The probe stage runs beside the DNS stage, as in one process: the addresses a DNS
// shard saves are probed while the next shards are resolved. An address belongs to a
// bucket, a hash of its network (polite.Config.Network: a /24 or a /48), so that a
// network is always in the same bucket; a probe job measures a bucket for a vantage,
// and at most one job of a bucket and vantage is open at a time (unique while open).
// A network's addresses are thus never probed by two jobs at once, and its limits
// hold wherever the job runs, however many shards add to it.
//
// A bucket has a generation, raised in the transaction that adds addresses to it (a
// DNS shard's) and, once the DNS stage is over, by the plan job for every bucket (an
// address found again may want more kinds: a web server that is also a mail
// exchanger). A probe job reads the generation before it reads its addresses and
// completes only if the generation is unchanged when it commits (the bucket's row
// locked, see commit): otherwise it is snoozed and measures what was added. A shard
// that adds to a bucket whose job is open enqueues nothing (the job is unique); one
// that adds after the job's completion enqueues a new one.

// defaultBuckets is how many buckets a run's addresses are spread over: twice the job
// slots of two workers at 64 probe jobs each, ~175 addresses a bucket at 100,000
// domains (bench-net), ~700 at a million.
const defaultBuckets = 256

// uniqueStates are the states in which a probe job of a bucket is unique: every one
// but completed, so that a bucket whose job completed gets another. A job River
// discarded (out of attempts) or that was cancelled keeps its bucket's: crawl --resume
// retries it, and it then measures whatever was added meanwhile (a second job of the
// bucket would make the retry fail on River's unique index, and probe the bucket's
// networks beside the first).
var uniqueStates = []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStateCancelled,
	rivertype.JobStateDiscarded, rivertype.JobStatePending, rivertype.JobStateRetryable,
	rivertype.JobStateRunning, rivertype.JobStateScheduled}

// bucketOf returns the bucket of a network among n.
func bucketOf(network netip.Prefix, n int) int32 {
	h := fnv.New32a()
	b, _ := network.MarshalBinary()
	h.Write(b)
	return int32(h.Sum32() % uint32(n))
}

// bucketWait is how long a bucket's job waits while the DNS stage runs: enqueued by a
// shard, or snoozed because shards added to its bucket meanwhile, so that the shards
// of the next seconds add to it rather than each making the bucket's job run again
// (River's scheduler makes such a job available within 5 s more). Each run of a job
// reads its bucket's targets again: without the wait, a 100k run made 3,593 of them.
const bucketWait = 3 * time.Second

func (w *Worker) bucketWait() time.Duration {
	if w.cfg.bucketWait != 0 {
		return max(w.cfg.bucketWait, 0)
	}
	return bucketWait
}

// buckets is how many buckets the worker spreads addresses over.
func (w *Worker) buckets() int {
	if w.cfg.buckets > 0 {
		return w.cfg.buckets
	}
	return defaultBuckets
}

// fileTargets records the targets' addresses in their buckets (network gives an
// address's network) and raises the generation of every bucket that gained one, or,
// with all (the DNS stage is over: a shard enqueued late, by a resume), of every bucket
// that holds one of them, since an address found again may want more kinds or name
// server checks. It returns those buckets, their rows locked until tx ends. An address
// is filed once, in the bucket of the first shard that found it, even if a later one
// computes another (a worker with other --net-bits-v4/v6).
func fileTargets(ctx context.Context, tx pgx.Tx, run int64, ts []store.Target, network func(netip.Addr) netip.Prefix, n int, all bool) ([]int32, error) {
	if len(ts) == 0 {
		return nil, nil
	}
	buckets := make([]int32, len(ts))
	ips := make([]string, len(ts))
	for i, t := range ts {
		buckets[i], ips[i] = bucketOf(network(t.IP), n), t.IP.String()
	}
	// The buckets' rows are locked in bucket order: every writer takes them in that
	// order, a probe job only its own. filed reads the rows as they were before the
	// insert: those of addresses filed by earlier shards.
	rows, err := tx.Query(ctx, `WITH ins AS (
		INSERT INTO v6matrix_bucket_ips (run_id, bucket, ip) SELECT $1, * FROM unnest($2::int[], $3::text[])
		ON CONFLICT DO NOTHING RETURNING bucket),
		filed AS (SELECT bucket FROM v6matrix_bucket_ips WHERE $4 AND run_id = $1 AND ip = ANY($3::text[])),
		b AS (SELECT bucket FROM ins UNION SELECT bucket FROM filed)
		INSERT INTO v6matrix_buckets (run_id, bucket, gen) SELECT $1::bigint, bucket, 1::bigint FROM b ORDER BY 2
		ON CONFLICT (run_id, bucket) DO UPDATE SET gen = v6matrix_buckets.gen + 1
		RETURNING bucket`, run, buckets, ips, all)
	if err != nil {
		return nil, fmt.Errorf("run %d: file %d addresses in their buckets: %w", run, len(ts), err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("run %d: file %d addresses in their buckets: %w", run, len(ts), err)
	}
	slices.Sort(out)
	return out, nil
}

// fileMissing files the run's targets that no shard filed (an older v6matrix's shards
// filed none; so does a shard of a run without probes, resumed with them) and returns
// how many. The plan calls it before raising every bucket: any address the DNS stage
// saved is then in a bucket. A run of this version has none to file (an anti-join).
func fileMissing(ctx context.Context, tx pgx.Tx, run int64, network func(netip.Addr) netip.Prefix, n int) (int, error) {
	ips, err := queryIPs(ctx, tx, fmt.Sprintf("run %d: targets in no bucket", run), `SELECT t.ip FROM targets t
		WHERE t.run_id = $1 AND NOT EXISTS
		(SELECT 1 FROM v6matrix_bucket_ips b WHERE b.run_id = $1 AND b.ip = (t.ip COLLATE "default"))`, run)
	if err != nil {
		return 0, err
	}
	ts := make([]store.Target, len(ips))
	for i, ip := range ips {
		ts[i].IP = ip
	}
	_, err = fileTargets(ctx, tx, run, ts, network, n, false)
	return len(ts), err
}

// queryIPs reads the addresses (as text) that sql returns; what names them in errors.
func queryIPs(ctx context.Context, db querier, what, sql string, args ...any) ([]netip.Addr, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out := make([]netip.Addr, len(texts))
	for i, s := range texts {
		if out[i], err = netip.ParseAddr(s); err != nil {
			return nil, fmt.Errorf("%s: damaged address %q: %w", what, s, err)
		}
	}
	return out, nil
}

// raiseAll raises the generation of every bucket of the run and returns them.
func raiseAll(ctx context.Context, tx pgx.Tx, run int64) ([]int32, error) {
	rows, err := tx.Query(ctx, `WITH b AS (SELECT bucket FROM v6matrix_buckets WHERE run_id = $1 ORDER BY bucket FOR UPDATE)
		UPDATE v6matrix_buckets u SET gen = u.gen + 1 FROM b WHERE u.run_id = $1 AND u.bucket = b.bucket RETURNING u.bucket`, run)
	if err != nil {
		return nil, fmt.Errorf("run %d: raise the buckets' generation: %w", run, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("run %d: raise the buckets' generation: %w", run, err)
	}
	slices.Sort(out)
	return out, nil
}

// enqueueBuckets enqueues a probe job of each bucket for each vantage of the run, due
// after wait; a bucket whose job is open (waiting: what was added is measured when it
// runs; or running: it goes on, see commit) is left to it.
func enqueueBuckets(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], r store.Run, buckets []int32, wait time.Duration) error {
	var ps []river.InsertManyParams
	var opts *river.InsertOpts
	if wait > 0 {
		opts = &river.InsertOpts{ScheduledAt: time.Now().Add(wait)}
	}
	for _, v := range Vantages(r) {
		for _, b := range buckets {
			ps = append(ps, river.InsertManyParams{Args: ProbeArgs{Run: r.ID, Vantage: v, Bucket: b}, InsertOpts: opts})
		}
	}
	for len(ps) > 0 {
		k := min(len(ps), 1000)
		if _, err := client.InsertManyTx(ctx, tx, ps[:k]); err != nil {
			return fmt.Errorf("run %d: enqueue probe jobs: %w", r.ID, err)
		}
		ps = ps[k:]
	}
	return nil
}

// bucketGen reads a bucket's generation (0: none yet); lock locks its row until the
// transaction ends.
func bucketGen(ctx context.Context, db querier, run int64, bucket int32, lock bool) (int64, error) {
	q := `SELECT coalesce(max(gen), 0) FROM v6matrix_buckets WHERE run_id = $1 AND bucket = $2`
	if lock {
		q = `SELECT coalesce((SELECT gen FROM v6matrix_buckets WHERE run_id = $1 AND bucket = $2 FOR UPDATE), 0)`
	}
	var gen int64
	if err := db.QueryRow(ctx, q, run, bucket).Scan(&gen); err != nil {
		return 0, fmt.Errorf("run %d: bucket %d: %w", run, bucket, err)
	}
	return gen, nil
}

// bucketIPs reads a bucket's addresses.
func bucketIPs(ctx context.Context, db querier, run int64, bucket int32) ([]netip.Addr, error) {
	return queryIPs(ctx, db, fmt.Sprintf("run %d: bucket %d", run, bucket),
		`SELECT ip FROM v6matrix_bucket_ips WHERE run_id = $1 AND bucket = $2 ORDER BY ip`, run, bucket)
}

// dropBuckets removes a done run's buckets.
func dropBuckets(ctx context.Context, tx pgx.Tx, run int64) error {
	for _, table := range []string{"v6matrix_bucket_ips", "v6matrix_buckets"} {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE run_id = $1`, run); err != nil {
			return fmt.Errorf("run %d: drop its buckets: %w", run, err)
		}
	}
	return nil
}
