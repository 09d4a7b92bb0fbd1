package distrib

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"

	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/store"
)

// TestBuckets files addresses in their buckets on a real PostgreSQL: a network's
// addresses share a bucket, a bucket's generation rises only when it gains an address
// (and for every bucket at the plan), and a probe job's look at its generation (the
// row locked) holds back a shard that adds to the bucket until the job's transaction
// ends, so that the job either sees the addition or completes before it.
func TestBuckets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pg := openPG(t, ctx)
	if err := Migrate(ctx, pg); err != nil {
		t.Fatal(err)
	}
	network := polite.DefaultConfig().Network
	const run, n = 7, 1000
	targets := func(ips ...string) []store.Target {
		var ts []store.Target
		for _, ip := range ips {
			ts = append(ts, store.Target{IP: netip.MustParseAddr(ip)})
		}
		return ts
	}
	fileWith := func(network func(netip.Addr) netip.Prefix, all bool, ips ...string) []int32 {
		t.Helper()
		var got []int32
		if err := pgx.BeginFunc(ctx, pg.Pool(), func(tx pgx.Tx) error {
			var err error
			got, err = fileTargets(ctx, tx, run, targets(ips...), network, n, all)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	file := func(ips ...string) []int32 { return fileWith(network, false, ips...) }
	gen := func(b int32) int64 {
		t.Helper()
		g, err := bucketGen(ctx, pg.Pool(), run, b, false)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	b4 := bucketOf(netip.MustParsePrefix("192.0.2.0/24"), n)
	b6 := bucketOf(netip.MustParsePrefix("2001:db8:1::/48"), n)
	if b4 == b6 {
		t.Fatalf("test networks share bucket %d: pick others", b4)
	}
	want := []int32{min(b4, b6), max(b4, b6)}
	if got := file("192.0.2.1", "192.0.2.2", "2001:db8:1::1", "192.0.2.1"); !cmp.Equal(got, want) {
		t.Errorf("buckets raised %v, want %v", got, want)
	}
	if got := file("192.0.2.2", "2001:db8:1::1"); len(got) != 0 {
		t.Errorf("buckets raised by addresses filed before: %v, want none", got)
	}
	if got := file("192.0.2.3", "2001:db8:1::1"); !cmp.Equal(got, []int32{b4}) {
		t.Errorf("buckets raised %v, want [%d]", got, b4)
	}
	file("2001:db8:1:ffff::9") // the same /48
	if g4, g6 := gen(b4), gen(b6); g4 != 2 || g6 != 2 {
		t.Errorf("generations %d and %d, want 2 and 2", g4, g6)
	}
	ips, err := bucketIPs(ctx, pg.Pool(), run, b4)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Collect(func(yield func(string) bool) {
		for _, ip := range ips {
			yield(ip.String())
		}
	}); !cmp.Equal(got, []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"}) {
		t.Errorf("bucket %d holds %v", b4, got)
	}

	// A probe job's commit looks at its generation, the row locked: a shard adding to
	// the bucket waits for the job's transaction.
	job, err := pg.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, err := bucketGen(ctx, job, run, b4, true); err != nil || g != 2 {
		t.Fatalf("generation in the job's transaction: %d (%v), want 2", g, err)
	}
	added := make(chan []int32, 1)
	go func() { added <- file("192.0.2.4") }()
	select {
	case got := <-added:
		t.Fatalf("a shard added to the bucket (%v) while a job's commit held its row", got)
	case <-time.After(300 * time.Millisecond):
	}
	if err := job.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-added:
		if !cmp.Equal(got, []int32{b4}) {
			t.Errorf("buckets raised %v, want [%d]", got, b4)
		}
	case <-ctx.Done():
		t.Fatal("the shard still waits after the job's commit")
	}
	if g := gen(b4); g != 3 {
		t.Errorf("generation %d after the addition, want 3", g)
	}

	// The plan raises every bucket; a done run's buckets are dropped.
	if err := pgx.BeginFunc(ctx, pg.Pool(), func(tx pgx.Tx) error {
		got, err := raiseAll(ctx, tx, run)
		if err == nil && !cmp.Equal(got, want) {
			t.Errorf("raiseAll: %v, want %v", got, want)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if g4, g6 := gen(b4), gen(b6); g4 != 4 || g6 != 3 {
		t.Errorf("generations after the plan %d and %d, want 4 and 3", g4, g6)
	}

	// A shard after the plan (enqueued by a resume) raises the buckets of the addresses
	// it found again, where they are filed: they may want more kinds or checks.
	if got := fileWith(network, true, "192.0.2.1"); !cmp.Equal(got, []int32{b4}) {
		t.Errorf("late shard: buckets raised %v, want [%d]", got, b4)
	}
	// A worker that computes another network (other --net-bits) files nothing twice.
	host := func(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
	other := bucketOf(host(netip.MustParseAddr("192.0.2.1")), n)
	if other == b4 {
		t.Fatalf("192.0.2.1/32 is in bucket %d, as its /24: pick another address", b4)
	}
	if got := fileWith(host, false, "192.0.2.1"); len(got) != 0 {
		t.Errorf("an address filed again in another bucket: %v raised", got)
	}
	if got := fileWith(host, true, "192.0.2.1"); !cmp.Equal(got, []int32{b4}) {
		t.Errorf("late shard with other networks: buckets raised %v, want [%d] (where it is filed)", got, b4)
	}
	if ips, err := bucketIPs(ctx, pg.Pool(), run, other); err != nil || len(ips) != 0 {
		t.Errorf("bucket %d holds %v (%v), want nothing", other, ips, err)
	}
	if g := gen(b4); g != 6 {
		t.Errorf("generation %d after two late shards, want 6", g)
	}
	if err := pgx.BeginFunc(ctx, pg.Pool(), func(tx pgx.Tx) error { return dropBuckets(ctx, tx, run) }); err != nil {
		t.Fatal(err)
	}
	if g := gen(b4); g != 0 {
		t.Errorf("generation %d after the drop, want 0 (none)", g)
	}
}

// TestProbeJobUnique enqueues a bucket's probe job on a real PostgreSQL: it is unique
// in every state but completed, so that a job cancelled (or discarded by River) keeps
// its bucket's place: enqueued again, nothing new is inserted, and crawl --resume can
// retry it (a second job of the bucket made the retry fail on River's unique index).
func TestProbeJobUnique(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q, err := Open(ctx, openPG(t, ctx))
	if err != nil {
		t.Fatal(err)
	}
	args := ProbeArgs{Run: 7, Vantage: "test", Bucket: 3}
	first, err := q.client.Insert(ctx, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.client.JobCancel(ctx, first.Job.ID); err != nil {
		t.Fatal(err)
	}
	again, err := q.client.Insert(ctx, args, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !again.UniqueSkippedAsDuplicate || again.Job.ID != first.Job.ID {
		t.Errorf("enqueued again beside the cancelled job %d: job %d (duplicate %v), want the cancelled one", first.Job.ID, again.Job.ID, again.UniqueSkippedAsDuplicate)
	}
	retried, err := q.client.JobRetry(ctx, first.Job.ID)
	if err != nil {
		t.Fatalf("retry the cancelled job: %v", err)
	}
	if retried.State != rivertype.JobStateAvailable {
		t.Errorf("retried job %s, want available", retried.State)
	}
}
