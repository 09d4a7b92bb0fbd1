package synthnet

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/store/pgcluster"
)

// TestDistributedBench runs bench-net's distributed mode on a synthetic Internet of 300
// domains: the single-process crawl into SQLite, then crawl --distributed into a
// throw-away PostgreSQL cluster with two workers in the vantage. The run must be done,
// its CSV export equal to the single-process crawl's (ping RTTs left out), and the
// queue and store figures filled in. Run it under flock /tmp/v6matrix-lab.lock.
func TestDistributedBench(t *testing.T) {
	needRoot(t)
	if pgcluster.BinDir(pgcluster.InitdbGlob) == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal(pgcluster.ErrMissing)
		}
		t.Skip(pgcluster.ErrMissing)
	}
	dir, bin := buildSelf(t)
	data := Data{Domains: 300}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	prefix := "snd" + strconv.Itoa(os.Getpid()%10_000_000) + "-"
	rep, err := Run(ctx, Config{Data: data, Dir: dir, Self: bin, Prefix: prefix, Crawl: true, Distributed: 2, Shard: 50,
		DistributedFirst: true, CrawlArgs: lifted, RefConcurrency: 1, RefWorkers: 1, Logger: log})
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	if len(rep.Runs) != 2 || rep.Runs[0].Name != NameDistributed || rep.Runs[1].Name != NameCrawl {
		t.Fatalf("runs %+v, want the distributed crawl, then the single-process one", rep.Runs)
	}
	if r := rep.Runs[0]; r.Wall <= 0 || r.CPU <= 0 || r.PeakRSSKiB <= 0 || r.ExitCode != 0 {
		t.Errorf("distributed run: wall %v, CPU %v, peak RSS %d KiB, exit %d: want all above 0 but the exit", r.Wall, r.CPU, r.PeakRSSKiB, r.ExitCode)
	}
	d := rep.Dist
	if d == nil {
		t.Fatal("no distributed figures")
	}
	if d.Compared == 0 || len(d.ExportDiffs) > 0 {
		t.Errorf("exports: %d rows compared, differences %q; want rows and none", d.Compared, d.ExportDiffs)
	}
	kinds := map[string]JobStats{}
	for _, j := range d.Jobs {
		kinds[j.Kind] = j
	}
	if j := kinds["v6matrix_dns"]; j.Count != data.Domains/50 || j.Busy <= 0 {
		t.Errorf("DNS jobs %+v, want %d with their run time", j, data.Domains/50)
	}
	for _, k := range []string{"v6matrix_plan", "v6matrix_probe", "v6matrix_finish"} {
		if kinds[k].Count == 0 {
			t.Errorf("no %s jobs among %+v", k, d.Jobs)
		}
	}
	if d.Commits == 0 || d.PGCPU <= 0 || d.SizeBytes == 0 || len(d.Tables) == 0 || len(d.Statements) == 0 {
		t.Errorf("store figures: %d commits, PostgreSQL CPU %v, %d bytes, %d tables, %d statements: want all above 0",
			d.Commits, d.PGCPU, d.SizeBytes, len(d.Tables), len(d.Statements))
	}
}
