package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/v6matrix/v6matrix/internal/crawl"
	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/store"
)

// storeList copies the run's list (file or Stdin) into the store, so that the load and
// every resume read exactly this list wherever they run from. Stopped here, the run has
// nothing to resume: it is failed.
func (r *runner) storeList(ctx context.Context) error {
	in, err := r.openList(ctx)
	if err != nil {
		return r.record(store.RunFailed, err)
	}
	defer in.Close()
	sum, size, err := r.st.SaveList(ctx, r.run.ID, in)
	if stopped(ctx, err) {
		if err := r.record(store.RunFailed, nil); err != nil {
			return err
		}
		return &InterruptedError{Run: r.run.ID, Stage: store.RunLoading, State: store.RunFailed}
	}
	if err != nil {
		return r.record(store.RunFailed, fmt.Errorf("%s: %w", r.cfg.List, err))
	}
	r.run.ListSHA256 = sum
	r.log.Info("list stored", "run", r.run.ID, "bytes", size, "sha256", sum)
	return nil
}

// storeListIfMissing stores the list of a resumed run that was stopped before its list
// was stored (between the run's creation and the end of storeList): nothing of it was
// loaded, so the list the file holds now becomes the run's list, and nothing is mixed.
func (r *runner) storeListIfMissing(ctx context.Context) error {
	if r.run.Loaded || r.run.ListSHA256 != "" {
		return nil
	}
	in, err := r.st.OpenList(ctx, r.run.ID)
	if err == nil {
		in.Close()
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	c, err := r.st.Counts(ctx, r.run.ID)
	if err != nil {
		return err
	}
	if c.Total > 0 || r.cfg.List == "-" {
		return nil // load says what is wrong
	}
	r.log.Warn("the run stopped before its list was stored: storing it now", "run", r.run.ID, "list", r.cfg.List)
	if err := r.storeList(ctx); err != nil {
		return err
	}
	return r.st.UpdateRun(ctx, r.run)
}

// load streams the run's stored list into its domains. Stopped here, the run is
// interrupted (a resume loads again); a list without a valid domain fails it.
func (r *runner) load(ctx context.Context) error {
	in, err := r.st.OpenList(ctx, r.run.ID)
	if errors.Is(err, store.ErrNotFound) {
		return r.record(store.RunFailed, fmt.Errorf("run %d has no stored copy of its list (stopped before the list was stored, or made by an older v6matrix): start a new crawl of %s", r.run.ID, r.cfg.List))
	}
	if stopped(ctx, err) {
		if err := r.record(store.RunInterrupted, nil); err != nil {
			return err
		}
		return &InterruptedError{Run: r.run.ID, Stage: store.RunLoading, State: store.RunInterrupted}
	}
	if err != nil {
		// A damaged store: the run is failed with the reason, not left loading.
		return r.record(store.RunFailed, fmt.Errorf("run %d: the stored copy of its list %s: %w", r.run.ID, r.cfg.List, err))
	}
	defer in.Close()
	name := listName(r.cfg.List)
	opt := crawl.LoadOptions{Top: r.cfg.Top, TLDs: map[string]bool{},
		OnSkip: func(e *domains.LineError) {
			r.log.Warn("skipped list line", "where", fmt.Sprintf("%s:%d", e.File, e.Line), "reason", e.Reason)
		}}
	for _, t := range r.cfg.TLDs {
		opt.TLDs[t] = true
	}
	stats, err := crawl.Load(ctx, r.st, r.run.ID, in, name, opt)
	if stopped(ctx, err) {
		if err := r.record(store.RunInterrupted, nil); err != nil {
			return err
		}
		return &InterruptedError{Run: r.run.ID, Stage: store.RunLoading, State: store.RunInterrupted}
	}
	if err != nil {
		if errors.Is(err, crawl.ErrNoDomains) {
			err = fmt.Errorf("%s: %w (%d lines skipped, %d outside the selection)", name, err, stats.Skipped, stats.Filtered)
		}
		return r.record(store.RunFailed, err)
	}
	if r.run.ListSHA256 != "" && stats.SHA256 != r.run.ListSHA256 {
		return r.record(store.RunFailed, fmt.Errorf("run %d: its stored list reads back with SHA-256 %s, not %s: the database is damaged", r.run.ID, stats.SHA256, r.run.ListSHA256))
	}
	r.run.Loaded, r.run.ListSHA256, r.run.Skipped, r.run.Duplicates = true, stats.SHA256, stats.Skipped, stats.Duplicates
	r.log.Info("list loaded", "domains", stats.Added, "skipped_lines", stats.Skipped, "duplicates", stats.Duplicates, "filtered", stats.Filtered)
	return nil
}

// listClient downloads lists given by URL or known name.
var listClient = &http.Client{Timeout: 30 * time.Minute}

// openList opens the list to store: the file, Stdin for "-", or the download of a URL
// or known list name (domains.ListSource).
func (r *runner) openList(ctx context.Context) (io.ReadCloser, error) {
	if u := domains.ListSource(r.cfg.List); u != "" {
		r.log.Info("downloading the list", "url", u)
		pr, pw := io.Pipe()
		go func() {
			_, err := domains.Fetch(ctx, listClient, u, pw)
			pw.CloseWithError(err)
		}()
		return pr, nil
	}
	if r.cfg.List == "-" {
		if r.cfg.Stdin == nil {
			return nil, errors.New("list: - names standard input, and none was given")
		}
		return io.NopCloser(newCtxReader(ctx, r.cfg.Stdin)), nil
	}
	f, err := os.Open(r.cfg.List)
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	return f, nil
}

// listName is how messages name a list: its file name, or stdin for "-".
func listName(path string) string {
	if path == "-" {
		return "stdin"
	}
	return filepath.Base(path)
}

// ctxReader reads r in a goroutine of its own, so that a Read gives up with ctx.Err()
// once ctx ends even when r blocks: standard input fed by a program that is idle, or
// stuck, would otherwise keep a stopped run (SIGTERM) from ending. A Read that gave up
// leaves its goroutine waiting in r.Read, the only one ever left: it ends when the
// input has data or closes, or with the process. Reads must not be concurrent.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
	buf []byte
	res chan readResult
}

type readResult struct {
	n   int
	err error
}

// ctxReadMax bounds the reading goroutine's buffer, a Read's size at most.
const ctxReadMax = 64 << 10

func newCtxReader(ctx context.Context, r io.Reader) *ctxReader {
	return &ctxReader{ctx: ctx, r: r, res: make(chan readResult, 1)}
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Into a buffer of its own: after a Read that gave up, p is the caller's again.
	// No read of r is in flight here: the last one returned, or ctx has ended.
	if c.buf == nil {
		c.buf = make([]byte, ctxReadMax)
	}
	buf := c.buf[:min(len(p), len(c.buf))]
	go func() {
		n, err := c.r.Read(buf)
		c.res <- readResult{n, err}
	}()
	select {
	case res := <-c.res:
		return copy(p, buf[:res.n]), res.err
	case <-c.ctx.Done():
		return 0, c.ctx.Err()
	}
}
