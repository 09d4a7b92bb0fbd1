// Package store keeps runs and their results. Store is the interface the crawl, the
// exports and the website use; SQLite (embedded, the default) implements it, and a
// PostgreSQL implementation can sit beside it.
package store

import (
	"context"
	"errors"
	"io"
	"net/netip"
	"time"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/probe/dns53"
	"github.com/v6matrix/v6matrix/internal/result"
)

// ErrNotFound is returned when a run does not exist.
var ErrNotFound = errors.New("not found")

// RunState is where a run is in its life.
type RunState string

// Run states.
const (
	RunLoading     RunState = "loading"     // reading the list into the store
	RunCrawling    RunState = "crawling"    // list loaded; domains being measured
	RunProbing     RunState = "probing"     // DNS done; addresses being probed
	RunInterrupted RunState = "interrupted" // stopped by a signal; resume with crawl --resume
	RunDone        RunState = "done"
	RunFailed      RunState = "failed"
)

// Run describes one crawl.
type Run struct {
	ID         int64
	Started    time.Time
	Finished   time.Time // zero until the run ends
	ListName   string
	ListSHA256 string
	Options    string // the crawl's settings, JSON
	Vantage    string
	State      RunState
	Loaded     bool // the whole list is in the store
	Skipped    int  // invalid list lines
	Duplicates int  // list lines naming a domain already seen
}

// Counts summarises a run's domains.
type Counts struct {
	Total, Done int
	ByStatus    map[result.Status]int
	Addresses   int
}

// JobCount is how many jobs of one stage (and vantage) of a distributed run are in one
// state: its progress as internal/distrib reads it from the job queue's table, for the
// views that show it (the runs command, the website).
type JobCount struct {
	Stage   string // distrib.Stages' name
	Vantage string // "" for the stages of the whole run
	State   string // River's: available, running, retryable, scheduled, completed, discarded, ...
	Jobs    int
}

// Cursor pages through a run's domains in (rank, name) order.
type Cursor struct {
	Rank int
	Name string
}

// Batch is what the crawl saves in one transaction: finished domains, the hosts they
// looked up first, the addresses seen first, and the probe stage's input: the targets
// (merged into the run's rows by address; Save sets their Added and Changed) and the
// name server pairs.
type Batch struct {
	Domains   []result.Domain
	Hosts     []result.Host
	Addresses []result.Address
	Targets   []Target
	NSTargets []NSTarget
}

// Detail is a domain with its hosts and their addresses, for exports and the website.
type Detail struct {
	result.Domain
	HostsByName map[string]result.Host
	Addrs       map[netip.Addr]result.Address
	// NSChecks are the domain's SOA checks by name server address (nil when none).
	NSChecks map[netip.Addr]*dns53.Result
}

// Store is the interface of every store implementation.
type Store interface {
	CreateRun(ctx context.Context, r Run) (int64, error)
	// LockRun takes the crawl lock of the run from the vantage until unlock is called
	// or the process ends, however it ends: meanwhile another LockRun of them, in this
	// process or another, fails with ErrRunLocked (two crawls of one run from one
	// vantage would send everything twice, each under politeness limits of its own).
	LockRun(ctx context.Context, run int64, vantage string) (unlock func(), err error)
	UpdateRun(ctx context.Context, r Run) error
	GetRun(ctx context.Context, id int64) (Run, error)
	// LatestRun returns the run with the highest id.
	LatestRun(ctx context.Context) (Run, error)
	ListRuns(ctx context.Context) ([]Run, error)
	// DeleteRun removes a run and every row of it; ErrNotFound when there is no such run.
	DeleteRun(ctx context.Context, id int64) error
	Counts(ctx context.Context, run int64) (Counts, error)

	// AddDomains adds list entries as pending domains; a name already present keeps the
	// better rank. It returns how many were new.
	// SaveList stores the exact list the run crawls (and its SHA-256); OpenList reads
	// it back, for the load and every resume.
	SaveList(ctx context.Context, run int64, r io.Reader) (sha256 string, size int64, err error)
	OpenList(ctx context.Context, run int64) (io.ReadCloser, error)
	AddDomains(ctx context.Context, run int64, es []domains.Entry) (int, error)
	// KeepTop drops all but the n best-ranked domains of each TLD; it returns how many
	// were dropped.
	KeepTop(ctx context.Context, run int64, n int) (int, error)
	// Pending returns up to limit unfinished domains after the cursor, in rank order.
	Pending(ctx context.Context, run int64, after Cursor, limit int) ([]result.Domain, error)
	// Save stores a batch and marks its domains done, atomically. A host row is
	// written once: a host the run already holds keeps its row (the first lookup saved
	// is the one its done domains use).
	Save(ctx context.Context, run int64, b Batch) error
	// Hosts returns the run's stored hosts among names (a name it lacks is left out):
	// the crawl reads them before looking a host up again (a resume).
	Hosts(ctx context.Context, run int64, names []string) (map[string]result.Host, error)

	// The calls below that answer what is measured, or return results, answer for one
	// vantage (Measurement.Vantage): "" is the run's own (Run.Vantage).

	// Targets pages through the run's probe targets in address text order (after ""
	// for the first page), each with the kinds the vantage already measured: the probe
	// stage's input on resume, which keeps those with kinds left. PendingNSTargets pages
	// through the name server pairs the vantage has not checked yet, NSTargets through
	// all of them (store.Copy).
	Targets(ctx context.Context, run int64, vantage, after string, limit int) ([]Target, error)
	PendingNSTargets(ctx context.Context, run int64, vantage string, after NSCursor, limit int) ([]NSTarget, error)
	NSTargets(ctx context.Context, run int64, after NSCursor, limit int) ([]NSTarget, error)

	// SaveMeasurements writes per-address probe results, each under its vantage;
	// Measured and MeasuredKinds say what a vantage of the run already has (resume, and
	// which record files to export).
	SaveMeasurements(ctx context.Context, run int64, ms []Measurement) error
	Measured(ctx context.Context, run int64, vantage string) (map[netip.Addr]map[string]bool, error)
	MeasuredKinds(ctx context.Context, run int64, vantage string) (map[string]bool, error)
	// NSChecked says which (domain, name server address) SOA checks a vantage has.
	NSChecked(ctx context.Context, run int64, vantage string) (map[string]map[netip.Addr]bool, error)
	// Vantages lists the vantages that measured the run: its own first (even before
	// it measured anything), then the others in name order.
	Vantages(ctx context.Context, run int64) ([]string, error)
	// VantageResults calls fn with each address that vantage a measured with one of
	// kinds, in address text order after an address (after "" for the first): a's
	// results of those kinds, and b's of the same kinds that a has. It stops when fn
	// returns false. The website compares vantages with it.
	VantageResults(ctx context.Context, run int64, a, b string, kinds []string, after string, fn func(VantagePair) bool) error

	// Details calls fn for every domain of the run in (rank, name) order, with the
	// vantage's measurements.
	Details(ctx context.Context, run int64, vantage string, fn func(Detail) error) error
	// DetailsOf is Details of the named domains only (names in (rank, name) order; a
	// name the run lacks is left out), read a page at a time.
	DetailsOf(ctx context.Context, run int64, vantage string, names []string, fn func(Detail) error) error

	Summaries

	Close() error
}
