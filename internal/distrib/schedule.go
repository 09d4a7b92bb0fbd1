package distrib

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
)

// Schedule is when a worker starts scheduled runs (Config.Schedule): a River periodic
// schedule that also names the period a time falls in.
type Schedule interface {
	// Next is the first start after t.
	Next(t time.Time) time.Time
	// Period is the latest start at or before t: the period's identity.
	Period(t time.Time) time.Time
}

// Monthly is a schedule of one start a month, on a day (1 to 28) at a time of day, UTC.
type Monthly struct {
	Day          int
	Hour, Minute int
}

var monthlyRE = regexp.MustCompile(`^monthly@([0-9]{1,2})T([0-9]{2}):([0-9]{2})$`)

// ParseSchedule parses a schedule: monthly@DTHH:MM, day D (1 to 28) of every month at
// HH:MM UTC, e.g. monthly@1T03:00.
func ParseSchedule(spec string) (Monthly, error) {
	m := monthlyRE.FindStringSubmatch(spec)
	if m == nil {
		return Monthly{}, fmt.Errorf("schedule %q: want monthly@DTHH:MM (day D of every month at HH:MM UTC, e.g. monthly@1T03:00)", spec)
	}
	d, _ := strconv.Atoi(m[1])
	h, _ := strconv.Atoi(m[2])
	mi, _ := strconv.Atoi(m[3])
	switch {
	case d < 1 || d > 28:
		return Monthly{}, fmt.Errorf("schedule %q: day %d: want 1 to 28 (a day every month has)", spec, d)
	case h > 23 || mi > 59:
		return Monthly{}, fmt.Errorf("schedule %q: time %s:%s: want 00:00 to 23:59", spec, m[2], m[3])
	}
	return Monthly{Day: d, Hour: h, Minute: mi}, nil
}

// String is the schedule as ParseSchedule reads it.
func (s Monthly) String() string { return fmt.Sprintf("monthly@%dT%02d:%02d", s.Day, s.Hour, s.Minute) }

// at is the start in the month of t, offset by months.
func (s Monthly) at(t time.Time, months int) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month()+time.Month(months), s.Day, s.Hour, s.Minute, 0, 0, time.UTC)
}

// Next is the first start after t.
func (s Monthly) Next(t time.Time) time.Time {
	if n := s.at(t, 0); n.After(t) {
		return n
	}
	return s.at(t, 1)
}

// Period is the latest start at or before t.
func (s Monthly) Period(t time.Time) time.Time {
	if p := s.at(t, 0); !p.After(t) {
		return p
	}
	return s.at(t, -1)
}

// kindScheduled is the kind of the job that starts a scheduled run.
const kindScheduled = "v6matrix_scheduled"

// ScheduledArgs starts the scheduled run of a period. Its arguments are its identity
// (River's unique jobs, also once completed): one job per schedule and period.
type ScheduledArgs struct {
	Name   string    `json:"name"`
	Period time.Time `json:"period"`
}

// Kind is the job kind.
func (ScheduledArgs) Kind() string { return kindScheduled }

// InsertOpts puts the job on the DNS queue, once.
func (ScheduledArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: DNSQueue, UniqueOpts: unique, Priority: 1}
}

// periodMargin is how early River may fire a periodic job (it fires those due within
// 100 ms): the period is that of the firing time plus the margin.
const periodMargin = time.Second

// periodicJob is the River periodic job of the worker's schedule: on River's elected
// leader only, at every start and when the leader starts (a start missed while no
// worker ran is caught up), it enqueues the period's ScheduledArgs.
func (w *Worker) periodicJob() *river.PeriodicJob {
	s := w.cfg.Schedule
	return river.NewPeriodicJob(s, func() (river.JobArgs, *river.InsertOpts) {
		return ScheduledArgs{Name: w.cfg.ScheduleName, Period: s.Period(time.Now().Add(periodMargin)).UTC()}, nil
	}, &river.PeriodicJobOpts{ID: "v6matrix_schedule", RunOnStart: true})
}

// scheduledWorker starts the scheduled run of a period, once: the period is claimed in
// v6matrix_schedule before the run is started (Config.StartRun), so that a job of
// the period enqueued again (two leaders, a restart) starts nothing.
type scheduledWorker struct {
	river.WorkerDefaults[ScheduledArgs]
	w *Worker
}

func (s *scheduledWorker) Work(ctx context.Context, job *river.Job[ScheduledArgs]) error {
	w, a := s.w, job.Args
	if w.cfg.StartRun == nil {
		// A worker without the schedule: one that has it takes the job later.
		w.log.Warn("a scheduled run's job on a worker without --schedule: give every worker the same", "period", a.Period)
		return river.JobSnooze(10 * time.Second)
	}
	pool := w.pg.Pool()
	var claimed bool
	err := pool.QueryRow(ctx, `INSERT INTO v6matrix_schedule (name, period, job) VALUES ($1, $2, $3)
		ON CONFLICT (name, period) DO NOTHING RETURNING true`, a.Name, a.Period, job.ID).Scan(&claimed)
	if errors.Is(err, pgx.ErrNoRows) {
		w.log.Info("scheduled run already started", "schedule", a.Name, "period", a.Period)
		return nil
	}
	if err != nil {
		return fmt.Errorf("schedule table: %w", err)
	}
	id, err := w.cfg.StartRun(ctx, a.Period)
	if err != nil && ctx.Err() != nil {
		// The worker is stopping, perhaps after the run was created: the claim stays,
		// so that the period is skipped rather than started twice (v6matrix runs shows
		// a run left part queued; crawl --resume --run ID queues the rest).
		w.log.Warn("scheduled run interrupted while starting: its period stays claimed", "schedule", a.Name, "period", a.Period, "err", err)
		return err
	}
	if err != nil {
		// Nothing started: the claim goes, River retries the job.
		if _, derr := pool.Exec(context.WithoutCancel(ctx), `DELETE FROM v6matrix_schedule WHERE name = $1 AND period = $2`, a.Name, a.Period); derr != nil {
			w.log.Warn("schedule table", "err", derr)
		}
		return fmt.Errorf("scheduled run of %s: %w", a.Period.Format(time.RFC3339), err)
	}
	if _, err := pool.Exec(context.WithoutCancel(ctx), `UPDATE v6matrix_schedule SET run = $3 WHERE name = $1 AND period = $2`, a.Name, a.Period, id); err != nil {
		return fmt.Errorf("schedule table: run %d started: %w", id, err)
	}
	w.log.Info("scheduled run started", "schedule", a.Name, "period", a.Period, "run", id)
	return nil
}

// ScheduledRun is a period of a schedule and the run started for it (0: claimed, not
// (yet) started).
type ScheduledRun struct {
	Name   string
	Period time.Time
	Run    int64
}

// ScheduledRuns lists the periods started, oldest first.
func ScheduledRuns(ctx context.Context, db querier) ([]ScheduledRun, error) {
	rows, err := db.Query(ctx, `SELECT name, period, coalesce(run, 0) FROM v6matrix_schedule ORDER BY period, name`)
	if err != nil {
		return nil, fmt.Errorf("schedule table: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (ScheduledRun, error) {
		var s ScheduledRun
		err := row.Scan(&s.Name, &s.Period, &s.Run)
		s.Period = s.Period.UTC()
		return s, err
	})
}
