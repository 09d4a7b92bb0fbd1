package synthnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/store/pgcluster"
)

// NameDistributed is the run name of the distributed crawl.
const NameDistributed = "v6matrix crawl --distributed"

// pgSettings are the benchmark cluster's: durable (fsync on) but without a flush per
// commit, like SQLite's WAL with synchronous=NORMAL; pg_stat_statements for the
// statement figures.
const pgSettings = "-c synchronous_commit=off -c shared_preload_libraries=pg_stat_statements -c max_connections=200"

// DistStats are the queue and store figures of a distributed run.
type DistStats struct {
	Workers int
	// Jobs are River's jobs of the run by kind, in the order their kind first appeared.
	Jobs []JobStats
	// PGCPU is the user and system time of the PostgreSQL server during the run.
	PGCPU time.Duration
	// Commits and Rollbacks are the database's transactions (pg_stat_database).
	Commits, Rollbacks int64
	// Active is the time the server's backends spent running statements; IdleInTx the
	// time their transactions stood open between statements (pg_stat_database).
	Active, IdleInTx time.Duration
	// Tables are the rows written per table.
	Tables []TableStats
	// Statements are the statements that took the most time (pg_stat_statements).
	Statements []StatementStats
	// SizeBytes is the database's size at the end, jobs included.
	SizeBytes int64
	// ExportDiffs are the differences between the distributed run's CSV export and the
	// single-process run's (volatile columns left out); empty: identical.
	ExportDiffs []string
	// Compared is the number of CSV rows compared (0: no comparison made).
	Compared int
}

// JobStats are the figures of one kind of job.
type JobStats struct {
	Kind            string
	Count, Attempts int
	// Wait is from the time a job was due to its (last) start; Run from that start to
	// its completion; both averaged and their maximum; Busy is the sum of Run.
	WaitAvg, WaitMax, RunAvg, RunMax, Busy time.Duration
	// Span is from the kind's first start to its last completion.
	Span time.Duration
}

// TableStats are the rows written to a table and its size (indexes included).
type TableStats struct {
	Name                    string
	Inserted, Updated, Live int64
	SizeBytes               int64
}

// StatementStats are one statement's calls and time.
type StatementStats struct {
	Query string
	Calls int64
	Total time.Duration
	Rows  int64
}

// runDistributed starts a PostgreSQL cluster, runs crawl --distributed into it and
// cfg.Distributed workers in the vantage until the run is done, and measures it.
func (w *World) runDistributed(ctx context.Context, cfg Config, list string) (RunStats, *DistStats, error) {
	st := RunStats{Name: NameDistributed}
	ds := &DistStats{Workers: cfg.Distributed}
	bin := pgcluster.BinDir(pgcluster.InitdbGlob)
	pgcluster.Reap(bin, "")
	c, err := pgcluster.Start(bin, "", pgSettings)
	if err != nil {
		return st, nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	defer c.Stop()
	dsn, err := c.CreateDB(ctx, "bench")
	if err != nil {
		return st, nil, err
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return st, nil, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `CREATE EXTENSION pg_stat_statements`); err != nil {
		return st, nil, err
	}
	pg, err := store.OpenPostgres(ctx, dsn)
	if err != nil {
		return st, nil, err
	}
	defer pg.Close()
	cpu0 := procTreeCPU(c.PID())
	st, err = w.measure(ctx, NameDistributed, func(ctx context.Context) (int, time.Time, error) {
		return w.distributed(ctx, cfg, list, dsn, pg)
	})
	ds.PGCPU = procTreeCPU(c.PID()) - cpu0
	if err != nil || st.ExitCode != 0 {
		return st, ds, err
	}
	if err := ds.query(ctx, conn); err != nil {
		return st, ds, fmt.Errorf("queue and store figures: %w", err)
	}
	if cfg.Crawl {
		if err := export(ctx, cfg, dsn, filepath.Join(cfg.Dir, exportDistributed)); err != nil {
			return st, ds, err
		}
	}
	return st, ds, nil
}

// distributed runs crawl --distributed, then the workers, waits until the run is done
// and stops them (SIGTERM). The end is when the run was seen done.
func (w *World) distributed(ctx context.Context, cfg Config, list, dsn string, pg *store.Postgres) (int, time.Time, error) {
	logPath := filepath.Join(cfg.Dir, "distributed_crawl.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return 0, time.Time{}, err
	}
	defer logf.Close()
	extra := []string{"--distributed"}
	if cfg.Shard > 0 {
		extra = append(extra, "--shard", strconv.Itoa(cfg.Shard))
	}
	code, err := w.Lab.Exec(ctx, crawlArgv(cfg, dsn, list, extra...), nil, nil, logf)
	if err != nil || code != 0 {
		return code, time.Now(), errors.Join(err, fmt.Errorf("crawl --distributed exited with status %d; the end of its log %s:\n%s", code, logPath, logTail(logPath, 10)))
	}
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	exits := make(chan workerExit, cfg.Distributed)
	var wg sync.WaitGroup
	logs := make([]string, cfg.Distributed)
	for i := range cfg.Distributed {
		logs[i] = filepath.Join(cfg.Dir, fmt.Sprintf("worker%d.log", i+1))
		f, err := os.Create(logs[i])
		if err != nil {
			stop()
			wg.Wait()
			return 0, time.Now(), err
		}
		argv := append([]string{cfg.Self, "worker", "--db", dsn, "--vantage", "synthnet"}, cfg.WorkerArgs...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer f.Close()
			code, err := w.Lab.Exec(wctx, argv, nil, nil, f)
			exits <- workerExit{i, code, err}
		}()
	}
	end, err := waitDone(ctx, pg, exits, logs)
	stop()
	wg.Wait()
	close(exits)
	if err != nil {
		return 1, end, err
	}
	for e := range exits {
		if e.err != nil || e.code != 0 {
			return e.code, end, errors.Join(e.err, fmt.Errorf("worker %d stopped with status %d; the end of its log %s:\n%s", e.i+1, e.code, logs[e.i], logTail(logs[e.i], 10)))
		}
	}
	return 0, end, nil
}

// workerExit is how worker i ended.
type workerExit struct {
	i, code int
	err     error
}

// waitDone polls the run's state until it is done; a worker that exits first or a
// failed run is an error.
func waitDone(ctx context.Context, pg *store.Postgres, exits <-chan workerExit, logs []string) (time.Time, error) {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return time.Now(), ctx.Err()
		case e := <-exits:
			return time.Now(), fmt.Errorf("worker %d exited (status %d, %v) before the run was done; the end of its log %s:\n%s", e.i+1, e.code, e.err, logs[e.i], logTail(logs[e.i], 10))
		case <-tick.C:
		}
		r, err := pg.LatestRun(ctx)
		if err != nil {
			continue // not created yet, or a passing error: the context bounds the wait
		}
		switch r.State {
		case store.RunDone:
			return time.Now(), nil
		case store.RunFailed:
			return time.Now(), fmt.Errorf("run %d failed", r.ID)
		}
	}
}

// query reads River's jobs and the server's statistics.
func (ds *DistStats) query(ctx context.Context, conn *pgx.Conn) error {
	secs := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	rows, err := conn.Query(ctx, `SELECT kind, count(*), sum(attempt),
		coalesce(extract(epoch FROM avg(attempted_at - scheduled_at)), 0)::float8,
		coalesce(extract(epoch FROM max(attempted_at - scheduled_at)), 0)::float8,
		coalesce(extract(epoch FROM avg(finalized_at - attempted_at)), 0)::float8,
		coalesce(extract(epoch FROM max(finalized_at - attempted_at)), 0)::float8,
		coalesce(extract(epoch FROM sum(finalized_at - attempted_at)), 0)::float8,
		coalesce(extract(epoch FROM max(finalized_at) - min(attempted_at)), 0)::float8
		FROM river_job GROUP BY kind ORDER BY min(created_at)`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var j JobStats
		var wa, wm, ra, rm, busy, span float64
		if err := rows.Scan(&j.Kind, &j.Count, &j.Attempts, &wa, &wm, &ra, &rm, &busy, &span); err != nil {
			return err
		}
		j.WaitAvg, j.WaitMax, j.RunAvg, j.RunMax, j.Busy, j.Span = secs(wa), secs(wm), secs(ra), secs(rm), secs(busy), secs(span)
		ds.Jobs = append(ds.Jobs, j)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var active, idle float64
	if err := conn.QueryRow(ctx, `SELECT xact_commit, xact_rollback, coalesce(active_time, 0)::float8,
		coalesce(idle_in_transaction_time, 0)::float8, pg_database_size(datname)
		FROM pg_stat_database WHERE datname = current_database()`).Scan(&ds.Commits, &ds.Rollbacks, &active, &idle, &ds.SizeBytes); err != nil {
		return err
	}
	ds.Active, ds.IdleInTx = secs(active/1000), secs(idle/1000)
	rows, err = conn.Query(ctx, `SELECT relname, n_tup_ins, n_tup_upd, n_live_tup, pg_total_relation_size(relid) FROM pg_stat_user_tables
		WHERE n_tup_ins + n_tup_upd > 0 ORDER BY n_tup_ins + n_tup_upd DESC`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var t TableStats
		if err := rows.Scan(&t.Name, &t.Inserted, &t.Updated, &t.Live, &t.SizeBytes); err != nil {
			return err
		}
		ds.Tables = append(ds.Tables, t)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows, err = conn.Query(ctx, `SELECT regexp_replace(query, '\s+', ' ', 'g'), calls, total_exec_time, rows
		FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var s StatementStats
		var ms float64
		if err := rows.Scan(&s.Query, &s.Calls, &ms, &s.Rows); err != nil {
			return err
		}
		s.Total = secs(ms / 1000)
		ds.Statements = append(ds.Statements, s)
	}
	return rows.Err()
}

// procTreeCPU returns the CPU time of process pid, its waited-for children and its
// live children (PostgreSQL's postmaster and backends).
func procTreeCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	ticks := statTicks(pid, true)
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == pid {
			continue
		}
		if f := statFields(p); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			ticks += statTicks(p, false)
		}
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ
}

// statFields returns /proc/pid/stat's fields after the command: state, ppid, ...
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(b[i+1:]))
}

// statTicks returns utime+stime (and cutime+cstime with children) of pid.
func statTicks(pid int, children bool) int64 {
	f := statFields(pid)
	if len(f) < 15 {
		return 0
	}
	n := 2 // utime, stime: fields 14 and 15 of stat, 11 and 12 here
	if children {
		n = 4
	}
	var t int64
	for _, v := range f[11 : 11+n] {
		x, _ := strconv.ParseInt(v, 10, 64)
		t += x
	}
	return t
}
