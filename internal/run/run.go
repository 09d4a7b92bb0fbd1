// Package run is one crawl's lifecycle: it creates a run (or finds the one to resume),
// stores and loads its list, runs the DNS stage then the probe stage, records the run's
// state at every step, and condenses the finished run for the website. cmd/v6matrix
// parses flags and prints; what a run does and in which order is decided here.
//
// A run's states (store.RunState): loading -> crawling -> probing -> done. When the
// context ends the run is recorded interrupted (resumable), or failed if it stopped
// before its list was stored (nothing to resume). An error while the list is stored or
// loaded fails the run; an error in a stage leaves it interrupted, so that a resume
// can go on from what was saved.
package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/v6matrix/v6matrix/internal/crawl"
	"github.com/v6matrix/v6matrix/internal/measure"
	"github.com/v6matrix/v6matrix/internal/pipeline"
	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/store"
)

// Config is what a run is made with: the stages' configurations, where the list comes
// from, and the hooks of the caller's progress display.
type Config struct {
	DNS    crawl.Config
	Client *resolve.Client
	Probe  *measure.Config // nil: no probe stage (DNS only)
	// List is the list's file, or "-" for Stdin. It is read once, when the run stores
	// its copy; the load and every resume read that copy. On Resume an empty List is
	// the run's own.
	List string
	// Stdin is read for List "-" in a goroutine, so that the run stops when its
	// context ends even while Stdin blocks (a feeding program that is idle): that
	// goroutine is left in Stdin's Read until it returns (data, the input closed, or
	// the process's exit).
	Stdin io.Reader
	// TLDs and Top select what part of the list is crawled (crawl.LoadOptions).
	TLDs []string
	Top  int
	// SkipSummary leaves out the website's summary of the finished run (bench).
	SkipSummary bool
	// EarlySummary and EarlyLeft say when the summary of the domains whose
	// measurements are final is built while the last probes run: once the DNS stage is
	// done, at most the share EarlySummary of the probes and checks (of those known) is
	// left, and the politeness lower bound leaves at least EarlyLeft (the probes then
	// wait on their limits, not on the processors). 0: 0.01 and a minute; below 0:
	// never (EarlySummary), no minimum (EarlyLeft).
	EarlySummary float64
	EarlyLeft    time.Duration
	Logger       *slog.Logger
	// Watch, if set, is called as a stage starts (store.RunCrawling for the DNS stage,
	// store.RunProbing for the probe stage) with the run's counters; the function it
	// returns is called when the stage ends. A progress bar hangs here.
	Watch func(stage store.RunState, p *Progress) (stop func())
	// Progress, if set, is where the run keeps its counters (for metrics read from
	// the start); nil: a new one.
	Progress *Progress
}

// Meta is what a new run records about itself besides its list.
type Meta struct {
	Options string // the settings, JSON, that a resume continues with
	Vantage string // where the crawl runs from
}

// Progress holds the counters of a run's stages, updated while they run; read them
// from another goroutine.
type Progress = pipeline.Progress

// Result is what a run did. On error it holds what was known when it stopped.
type Result struct {
	Run      store.Run    // as last recorded
	Counts   store.Counts // the finished run's domains and addresses (only when done)
	Progress *Progress
	// HostLookups is how many shared-host lookups the DNS stage's cache let through.
	HostLookups int64
	// Load is how long storing and loading the list took, DNS how long until every
	// domain was saved, Probe until the last probe (the stages overlap: both count from
	// the start of the DNS stage), in this invocation.
	Load, DNS, Probe time.Duration
}

// ErrInterrupted is wrapped by every error of a run stopped by its context.
var ErrInterrupted = errors.New("interrupted")

// ErrNothingToResume is wrapped by the error of a resume of a finished run.
var ErrNothingToResume = errors.New("nothing to resume")

// InterruptedError says where a run stopped when its context ended.
type InterruptedError struct {
	Run   int64
	Stage store.RunState // the state it was in: loading, crawling or probing
	State store.RunState // the state recorded: interrupted, or failed (list not stored)
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("run %d: stopped while %s, now %s: %v", e.Run, e.Stage, e.State, ErrInterrupted)
}

// Unwrap makes errors.Is(err, ErrInterrupted) hold.
func (e *InterruptedError) Unwrap() error { return ErrInterrupted }

// Start creates a run, stores its list, loads it and runs both stages to the end.
func Start(ctx context.Context, st store.Store, cfg Config, meta Meta) (Result, error) {
	r := newRunner(st, cfg)
	defer r.release()
	if err := r.create(ctx, meta); err != nil {
		return r.result(), err
	}
	return r.finish(ctx)
}

// Create creates a run and stores and loads its list, and leaves it crawling for
// others to run its stages (the distributed mode's workers, internal/distrib).
func Create(ctx context.Context, st store.Store, cfg Config, meta Meta) (Result, error) {
	r := newRunner(st, cfg)
	defer r.release()
	if err := r.create(ctx, meta); err != nil {
		return r.result(), err
	}
	return r.loaded(ctx)
}

// Reload makes sure that run id (see Resumable), to be resumed by others, has its
// list stored and loaded (a run stopped before that), as Resume would, and returns it.
// A non-empty options replaces the run's stored settings.
func Reload(ctx context.Context, st store.Store, id int64, cfg Config, options string) (Result, error) {
	r := newRunner(st, cfg)
	defer r.release()
	if err := r.resumable(ctx, id, options); err != nil {
		return r.result(), err
	}
	return r.loaded(ctx)
}

// create records a new run and stores its list.
func (r *runner) create(ctx context.Context, meta Meta) error {
	r.run = store.Run{Started: time.Now(), ListName: r.cfg.List, Options: meta.Options, Vantage: meta.Vantage, State: store.RunLoading}
	id, err := r.st.CreateRun(ctx, r.run)
	if err != nil {
		return err
	}
	r.run.ID = id
	if err := r.lock(ctx, r.run.Vantage); err != nil {
		return err
	}
	r.log.Info("run created", "run", id, "list", r.cfg.List)
	t0 := time.Now()
	if err := r.storeList(ctx); err != nil {
		return err
	}
	r.res.Load = time.Since(t0)
	return nil
}

// loadIfNeeded loads the list unless the run has it.
func (r *runner) loadIfNeeded(ctx context.Context) error {
	if r.run.Loaded {
		return nil
	}
	t0 := time.Now()
	err := r.load(ctx)
	r.res.Load += time.Since(t0)
	return err
}

// loaded loads the list if needed and records the run crawling.
func (r *runner) loaded(ctx context.Context) (Result, error) {
	if err := r.loadIfNeeded(ctx); err != nil {
		return r.result(), err
	}
	state := r.run.State
	if state != store.RunProbing {
		state = store.RunCrawling
	}
	if err := r.setState(ctx, state); err != nil { // also stores new options
		return r.result(), err
	}
	return r.result(), nil
}

// Resumable returns the run a resume continues: run id, or the latest run when id is 0.
// A done run is refused (ErrNothingToResume).
func Resumable(ctx context.Context, st store.Store, id int64) (store.Run, error) {
	run, err := Find(ctx, st, id)
	if err != nil {
		return run, err
	}
	if run.State == store.RunDone {
		return run, fmt.Errorf("run %d is already done: %w", run.ID, ErrNothingToResume)
	}
	return run, nil
}

// Resume continues run id (see Resumable) to the end: the list if it is not loaded yet,
// then the pending domains and the unmeasured addresses. A non-empty options replaces
// the run's stored settings (a resume may change how fast it goes).
func Resume(ctx context.Context, st store.Store, id int64, cfg Config, options string) (Result, error) {
	r := newRunner(st, cfg)
	defer r.release()
	if err := r.resumable(ctx, id, options); err != nil {
		return r.result(), err
	}
	return r.finish(ctx)
}

// resumable finds the run to resume and stores its list if it was stopped before.
func (r *runner) resumable(ctx context.Context, id int64, options string) error {
	run, err := Resumable(ctx, r.st, id)
	if err != nil {
		return err
	}
	r.run = run
	if err := r.lock(ctx, r.run.Vantage); err != nil {
		return err
	}
	// Read again under the lock: the crawl that held it may have finished the run.
	if run, err = Resumable(ctx, r.st, run.ID); err != nil {
		return err
	}
	r.run = run
	r.run.Finished = time.Time{} // a failed run resumed is not finished (record sets it)
	// The run is crawled again: serve may summarise it provisionally again, until its
	// final summary begins (a crawl killed during that summary left it begun).
	if err := r.st.SetSummaryFinal(ctx, run.ID, false); err != nil {
		return err
	}
	if r.cfg.List == "" {
		r.cfg.List = run.ListName
	}
	if options != "" {
		r.run.Options = options
	}
	r.log.Info("resuming run", "run", run.ID, "list", run.ListName, "list_sha256", run.ListSHA256, "state", run.State)
	t0 := time.Now()
	if err := r.storeListIfMissing(ctx); err != nil {
		return err
	}
	r.res.Load = time.Since(t0)
	return nil
}

// runner is one invocation of a run.
type runner struct {
	st   store.Store
	cfg  Config
	log  *slog.Logger
	run  store.Run
	prog *Progress
	res  Result
	// early is the summary begun while the last probes run (nil: none).
	early *early
	// unlock releases the run's crawl lock (store.LockRun); nil until it is taken.
	unlock func()
}

// release lets go of the run's crawl lock, if lock took it.
func (r *runner) release() {
	if r.unlock != nil {
		r.unlock()
	}
}

// lock takes the crawl lock of the run from vantage for this invocation: a second
// crawl of the run (a resume while it still runs) would crawl its pending domains and
// probe its addresses twice, each under politeness limits of its own.
func (r *runner) lock(ctx context.Context, vantage string) error {
	unlock, err := r.st.LockRun(ctx, r.run.ID, vantage)
	if err != nil {
		return fmt.Errorf("run %d: %w (wait for that crawl, or stop it, then resume)", r.run.ID, err)
	}
	r.unlock = unlock
	return nil
}

func newRunner(st store.Store, cfg Config) *runner {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &runner{st: st, cfg: cfg, log: log, prog: cfg.Progress}
	if r.prog == nil {
		r.prog = &Progress{}
	}
	r.res.Progress = r.prog
	return r
}

// result is what the caller learns, as of now.
func (r *runner) result() Result {
	res := r.res
	res.Run = r.run
	return res
}

// finish loads the list if needed, runs the stages and records how the run ended.
func (r *runner) finish(ctx context.Context) (Result, error) {
	if err := r.loadIfNeeded(ctx); err != nil {
		return r.result(), err
	}
	start := time.Now()
	defer func() { r.early.stop() }() // a summary begun and not finished (an error below)
	err := r.stages(ctx)
	if stopped(ctx, err) {
		stage := r.run.State
		if err := r.record(store.RunInterrupted, nil); err != nil {
			return r.result(), err
		}
		return r.result(), &InterruptedError{Run: r.run.ID, Stage: stage, State: store.RunInterrupted}
	}
	if err != nil {
		return r.result(), r.record(store.RunInterrupted, err)
	}
	// The run is done once summarised (as a distributed run's finish job does): until
	// then a serve beside it sees it in progress, whose provisional summary gives way
	// to this one, rather than done without a summary, which it would build again.
	r.run.Finished = time.Now()
	if !r.cfg.SkipSummary {
		if err := r.summarise(ctx); err != nil {
			r.log.Warn("the run's summary for the website was not built; v6matrix serve builds it when it starts", "run", r.run.ID, "err", err)
		}
	}
	if err := r.record(store.RunDone, nil); err != nil {
		return r.result(), err
	}
	counts, err := r.st.Counts(ctx, r.run.ID)
	if err != nil {
		return r.result(), err
	}
	r.res.Counts = counts
	r.log.Info("crawl done", "run", r.run.ID, "domains", counts.Done, "addresses", counts.Addresses,
		"skipped_lines", r.run.Skipped, "duplicates", r.run.Duplicates, "elapsed", time.Since(start).Round(time.Millisecond))
	return r.result(), nil
}

// setState records the state a stage starts in.
func (r *runner) setState(ctx context.Context, s store.RunState) error {
	r.run.State = s
	return r.st.UpdateRun(ctx, r.run)
}

// record records the run's end state; cause, if any, is returned. It writes even when
// ctx has ended (the state of an interrupted run must be saved).
func (r *runner) record(state store.RunState, cause error) error {
	r.run.State = state
	if (state == store.RunDone || state == store.RunFailed) && r.run.Finished.IsZero() {
		r.run.Finished = time.Now()
	}
	if err := r.st.UpdateRun(context.Background(), r.run); err != nil && cause == nil {
		return err
	}
	return cause
}

// stopped reports whether err came with ctx's end: the run was interrupted, not broken.
// Any error once ctx has ended counts: database/sql reports a statement of the
// transaction the cancellation rolled back as closed, not as the context's error.
func stopped(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() != nil
}
