package store

import (
	"context"
	"errors"
	"iter"
	"time"

	"github.com/v6matrix/v6matrix/internal/result"
)

// Summaries is the part of a store that keeps a run's summary (internal/summary builds
// it) and answers the website's questions from it, without reading every domain.
type Summaries interface {
	// SetSummaryFinal records that the run's final summary has begun (final), or that
	// the run is crawled again (a resumed crawl: not final). While it is, the writes of
	// a provisional summary of the run fail with ErrSuperseded.
	SetSummaryFinal(ctx context.Context, run int64, final bool) error
	// ClearSummary removes a run's summary before it is built again.
	ClearSummary(ctx context.Context, c Claim) error
	SaveSummaries(ctx context.Context, c Claim, ss []result.DomainSummary) error
	// SaveAggregates stores the aggregates and the located addresses and marks the
	// run summarised, in one transaction. as yields the addresses (nil: none) one at
	// a time, so that a large run's need not all be in memory as rows at once.
	SaveAggregates(ctx context.Context, c Claim, gs []result.Aggregate, as iter.Seq[result.AddressSummary]) error
	// BuildDiff records the domains whose IPv6 changed from run a to run b.
	BuildDiff(ctx context.Context, a, b int64) error

	// Summarised returns when the run's summary was built (zero when it was not).
	Summarised(ctx context.Context, run int64) (time.Time, error)
	// Aggregates returns the aggregates of a kind ("run", "tld", "country", "asn").
	Aggregates(ctx context.Context, run int64, kind string) ([]result.Aggregate, error)
	// Aggregate returns one aggregate; ErrNotFound when there is none.
	Aggregate(ctx context.Context, run int64, kind, key string) (result.Aggregate, error)
	// Trend returns one aggregate across every summarised run, oldest first.
	Trend(ctx context.Context, kind, key string) ([]TrendPoint, error)
	// DomainSummaries returns a page of a TLD's domains in the query's order.
	DomainSummaries(ctx context.Context, run int64, q SummaryQuery) ([]result.DomainSummary, error)
	// DomainSummary returns one domain's summary; ErrNotFound when the run has none.
	DomainSummary(ctx context.Context, run int64, name string) (result.DomainSummary, error)
	// History returns a domain's summary in every summarised run, oldest first.
	History(ctx context.Context, name string) ([]HistoryPoint, error)
	// Search returns, in one query, up to limit domains of the run whose name starts
	// with prefix and up to limit host names of the run that do, both in name order.
	Search(ctx context.Context, run int64, prefix string, limit int) ([]result.DomainSummary, []string, error)
	// Located returns the addresses of a country ("country", "DE") or an AS ("asn",
	// "64500"), the most used first.
	Located(ctx context.Context, run int64, kind, key string, limit, offset int) ([]result.AddressSummary, error)
	// Diff returns the counts of what changed between two runs (BuildDiff first).
	Diff(ctx context.Context, a, b int64) (DiffCounts, bool, error)
	// Changes returns a page of the domains whose IPv6 on a role changed.
	Changes(ctx context.Context, a, b int64, role result.Role, change string, after Cursor, limit int) ([]Change, error)
	// Domain returns one domain with its hosts and addresses, with the measurements of
	// a vantage ("" the run's own); ErrNotFound when the run does not list it.
	Domain(ctx context.Context, run int64, vantage, name string) (Detail, error)
	// SaveDocs stores each domain's document: its detail with only its own hosts,
	// addresses and checks (the run's own vantage's: the summary's), as one row, so that a domain's page reads one row
	// (DomainDoc) instead of the four tables Domain reads.
	SaveDocs(ctx context.Context, c Claim, ds []Detail) error
	// DomainDoc returns the detail SaveDocs stored, equal to what Domain returns;
	// ErrNotFound when there is none (the run is not summarised, or was by an older
	// v6matrix).
	DomainDoc(ctx context.Context, run int64, name string) (Detail, error)
	// DomainPage returns, in one query, a domain's history (History) and its document
	// in a run (DomainDoc). When the run has no document of it, the error is
	// ErrNotFound and the history is still returned.
	DomainPage(ctx context.Context, run int64, name string) (Detail, []HistoryPoint, error)
	// Documented reports whether SaveDocs stored documents of the run (a run summarised
	// by an older v6matrix has none).
	Documented(ctx context.Context, run int64) (bool, error)
}

// Claim names the run whose summary a builder writes, and whether the summary is
// provisional: one of a run still being crawled (summary.KeepCurrent, in serve), which
// another process's final summary (the crawl's own, begun beside its last probes, or a
// finished run's) must not find cleared or overwritten. Every write of a provisional
// summary fails with ErrSuperseded once the run's final summary has begun
// (SetSummaryFinal), atomically with the write. BuildDiff takes no claim: it derives
// the changes from the rows as they are in its transaction, and the final summary
// builds them again after its last rows.
type Claim struct {
	Run         int64
	Provisional bool
}

// ErrSuperseded is a provisional summary's write refused: the run's final summary has
// begun.
var ErrSuperseded = errors.New("the run's final summary has begun")

// SortKey names an order of a TLD's domains.
type SortKey string

// The orders of DomainSummaries: by rank, by name, or IPv6 on a role first (then rank).
const (
	SortRank SortKey = "rank"
	SortName SortKey = "name"
	SortNS   SortKey = "ns"
	SortMX   SortKey = "mx"
	SortWWW  SortKey = "www"
	SortNTP  SortKey = "ntp"
)

// SortKeys lists the orders.
var SortKeys = []SortKey{SortRank, SortName, SortNS, SortMX, SortWWW, SortNTP}

// SummaryQuery selects a page of a TLD's domains. After is the sort key of the last
// row of the previous page (SummaryCursor of it); the zero value starts at the top.
type SummaryQuery struct {
	TLD   string
	Sort  SortKey
	Desc  bool
	After *PageCursor
	Limit int
}

// PageCursor is a row's place in an order: the integer key and the name.
type PageCursor struct {
	Key  int64
	Name string
}

// SortValue returns the integer key of a summary in an order: the rank, or the role's
// value (yes first) folded with the rank; SortName orders by name alone.
func SortValue(s *result.DomainSummary, k SortKey) int64 {
	for i, r := range result.Roles {
		if SortKey(r) == k {
			return roleKey(s.Roles[i].IPv6, s.Rank)
		}
	}
	if k == SortName {
		return 0
	}
	return int64(s.Rank)
}

func roleKey(v result.Tri, rank int) int64 {
	order := map[result.Tri]int64{result.Yes: 0, result.Unknown: 1, result.No: 2, result.NA: 3}[v]
	return order<<32 | int64(uint32(rank))
}

// TrendPoint is one run's aggregate.
type TrendPoint struct {
	Run     int64
	Started time.Time
	result.Aggregate
}

// HistoryPoint is one run's summary of a domain.
type HistoryPoint struct {
	Run     int64
	Started time.Time
	result.DomainSummary
}

// Change is a domain whose IPv6 on a role was gained or lost between two runs.
type Change struct {
	Name   string      `json:"domain"`
	Rank   int         `json:"rank"`
	Role   result.Role `json:"role"`
	Change string      `json:"change"` // "gained" or "lost"
}

// DiffCounts counts the changes between two runs. Only a measured "no" turning into
// "yes" (gained) or back (lost) counts: an "unknown" on either side is no change.
type DiffCounts struct {
	A, B   int64
	Common int // domains listed in both runs
	OnlyA  int
	OnlyB  int
	Gained [4]int // per role (result.Roles order)
	Lost   [4]int
}
