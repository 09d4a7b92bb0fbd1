package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/v6matrix/v6matrix/internal/result"
)

// summaryLock is the first key of the advisory lock of a run's summary ("v6ms"):
// SetSummaryFinal holds it, a provisional summary's writes share it.
const summaryLock = 0x76366d73

// SetSummaryFinal records whether the run's final summary has begun. It waits for the
// provisional writes in progress (they hold the run's summary lock shared).
func (s *Postgres) SetSummaryFinal(ctx context.Context, run int64, final bool) error {
	what := fmt.Sprintf("summary of run %d", run)
	return s.inTx(ctx, what, func(tx pgx.Tx) error {
		q := `DELETE FROM summary_final WHERE run_id = $1`
		if final {
			q = `INSERT INTO summary_final (run_id) VALUES ($1) ON CONFLICT DO NOTHING`
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1::int, $2::int)`, int32(summaryLock), int32(run)); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if _, err := tx.Exec(ctx, q, run); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// summaryWrite runs fn, writes of c's summary, on s; a provisional summary's in one
// transaction that holds the run's summary lock shared and fails with ErrSuperseded
// when the run's final summary has begun.
func (s *Postgres) summaryWrite(ctx context.Context, c Claim, what string, fn func(s *Postgres) error) error {
	if !c.Provisional {
		return fn(s)
	}
	return s.inTx(ctx, what, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1::int, $2::int)`, int32(summaryLock), int32(c.Run)); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		var final bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM summary_final WHERE run_id = $1)`, c.Run).Scan(&final); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if final {
			return fmt.Errorf("%s: %w", what, ErrSuperseded)
		}
		return fn(s.Within(tx))
	})
}

// ClearSummary removes a run's summary rows.
func (s *Postgres) ClearSummary(ctx context.Context, c Claim) error {
	what := fmt.Sprintf("clear summary of run %d", c.Run)
	return s.summaryWrite(ctx, c, what, func(s *Postgres) error { return s.clearSummary(ctx, c.Run, what) })
}

func (s *Postgres) clearSummary(ctx context.Context, run int64, what string) error {
	return s.inTx(ctx, what, func(tx pgx.Tx) error {
		var q batch
		for _, sql := range []string{
			`DELETE FROM summaries WHERE run_id = $1`,
			`DELETE FROM domain_summary WHERE run_id = $1`,
			`DELETE FROM domain_docs WHERE run_id = $1`,
			`DELETE FROM aggregates WHERE run_id = $1`,
			`DELETE FROM address_summary WHERE run_id = $1`,
			`DELETE FROM run_diffs WHERE run_a = $1 OR run_b = $1`,
			`DELETE FROM domain_changes WHERE run_a = $1 OR run_b = $1`,
		} {
			q.add(what, sql, run)
		}
		return q.run(ctx, tx)
	})
}

// SaveSummaries writes domain summaries in one statement, the rows as arrays.
func (s *Postgres) SaveSummaries(ctx context.Context, c Claim, ss []result.DomainSummary) error {
	run := c.Run
	var rows [][]any
	for _, d := range lastOf(ss, func(d *result.DomainSummary) string { return d.Name }) {
		rows = append(rows, summaryArgs(d))
	}
	if len(rows) == 0 {
		return nil
	}
	err := s.summaryWrite(ctx, c, "save summaries", func(s *Postgres) error {
		_, err := s.pool.Exec(ctx, `INSERT INTO domain_summary (run_id, name, tld, rank, status,
		ns, mx, www, ntp, ns_reach, mx_reach, www_reach, ntp_reach, broken, k_ns, k_mx, k_www, k_ntp)
		SELECT $1, * FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
			$10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[])
		ON CONFLICT (run_id, name) DO UPDATE SET tld = excluded.tld, rank = excluded.rank, status = excluded.status,
		ns = excluded.ns, mx = excluded.mx, www = excluded.www, ntp = excluded.ntp,
		ns_reach = excluded.ns_reach, mx_reach = excluded.mx_reach, www_reach = excluded.www_reach, ntp_reach = excluded.ntp_reach,
		broken = excluded.broken, k_ns = excluded.k_ns, k_mx = excluded.k_mx, k_www = excluded.k_www, k_ntp = excluded.k_ntp`,
			append([]any{run}, columns(rows)...)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("save %d summaries: %w", len(rows), err)
	}
	return nil
}

// SaveAggregates writes the aggregates and located addresses and marks the run summarised.
func (s *Postgres) SaveAggregates(ctx context.Context, c Claim, gs []result.Aggregate, as iter.Seq[result.AddressSummary]) error {
	return s.summaryWrite(ctx, c, "save aggregates", func(s *Postgres) error { return s.saveAggregates(ctx, c.Run, gs, as) })
}

// addrPage is how many located addresses saveAggregates sends a statement.
const addrPage = 10_000

func (s *Postgres) saveAggregates(ctx context.Context, run int64, gs []result.Aggregate, as iter.Seq[result.AddressSummary]) error {
	var aggs [][]any
	for _, g := range lastOf(gs, func(g *result.Aggregate) string { return g.Kind + " " + g.Key }) {
		js, _ := json.Marshal(g)
		aggs = append(aggs, []any{g.Kind, g.Key, string(js)})
	}
	return s.inTx(ctx, "save aggregates", func(tx pgx.Tx) error {
		var q batch
		if len(aggs) > 0 {
			q.add(fmt.Sprintf("save %d aggregates", len(aggs)), `INSERT INTO aggregates (run_id, kind, key, data)
				SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[])
				ON CONFLICT (run_id, kind, key) DO UPDATE SET data = excluded.data`, append([]any{run}, columns(aggs)...)...)
		}
		q.add("mark summarised", `INSERT INTO summaries (run_id, built) VALUES ($1, $2)
			ON CONFLICT (run_id) DO UPDATE SET built = excluded.built`, run, formatTime(time.Now()))
		if err := q.run(ctx, tx); err != nil {
			return err
		}
		if as == nil {
			return nil
		}
		var page []result.AddressSummary
		save := func() error {
			var addrs [][]any
			for _, a := range lastOf(page, func(a *result.AddressSummary) string { return a.IP }) {
				js, _ := json.Marshal(a)
				addrs = append(addrs, []any{a.IP, a.Family, a.CountryCode, int64(a.ASN), a.Domains, string(js)})
			}
			page = page[:0]
			_, err := tx.Exec(ctx, `INSERT INTO address_summary (run_id, ip, family, cc, asn, domains, data)
				SELECT $1, * FROM unnest($2::text[], $3::int[], $4::text[], $5::bigint[], $6::bigint[], $7::text[])
				ON CONFLICT (run_id, ip) DO UPDATE SET family = excluded.family, cc = excluded.cc, asn = excluded.asn,
				domains = excluded.domains, data = excluded.data`, append([]any{run}, columns(addrs)...)...)
			if err != nil {
				return fmt.Errorf("save %d address summaries: %w", len(addrs), err)
			}
			return nil
		}
		for a := range as {
			if page = append(page, a); len(page) == addrPage {
				if err := save(); err != nil {
					return err
				}
			}
		}
		if len(page) > 0 {
			return save()
		}
		return nil
	})
}

// BuildDiff records, per role, the domains of both runs whose IPv6 went from a measured
// "no" to "yes" (gained) or back (lost), and the counts.
func (s *Postgres) BuildDiff(ctx context.Context, a, b int64) error {
	what := fmt.Sprintf("diff runs %d and %d", a, b)
	return s.inTx(ctx, what, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM domain_changes WHERE run_a = $1 AND run_b = $2`, a, b); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		c := DiffCounts{A: a, B: b}
		for i, role := range result.Roles {
			col := roleColumn[role]
			for _, ch := range []struct{ name, from, to string }{{"gained", "no", "yes"}, {"lost", "yes", "no"}} {
				// col is one of four fixed column names, never input.
				tag, err := tx.Exec(ctx, `INSERT INTO domain_changes (run_a, run_b, role, change, rank, name)
					SELECT $1::bigint, $2::bigint, $3::text, $4::text, y.rank, y.name FROM domain_summary x
					JOIN domain_summary y ON y.run_id = $2 AND y.name = x.name
					WHERE x.run_id = $1 AND x.`+col+` = $5 AND y.`+col+` = $6`, a, b, string(role), ch.name, ch.from, ch.to)
				if err != nil {
					return fmt.Errorf("%s: %w", what, err)
				}
				if ch.name == "gained" {
					c.Gained[i] = int(tag.RowsAffected())
				} else {
					c.Lost[i] = int(tag.RowsAffected())
				}
			}
		}
		var na, nb int
		err := tx.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM domain_summary WHERE run_id = $1),
			(SELECT count(*) FROM domain_summary WHERE run_id = $2),
			(SELECT count(*) FROM domain_summary x JOIN domain_summary y ON y.run_id = $2 AND y.name = x.name WHERE x.run_id = $1)`,
			a, b).Scan(&na, &nb, &c.Common)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		c.OnlyA, c.OnlyB = na-c.Common, nb-c.Common
		js, _ := json.Marshal(c)
		if _, err := tx.Exec(ctx, `INSERT INTO run_diffs (run_a, run_b, data) VALUES ($1, $2, $3)
			ON CONFLICT (run_a, run_b) DO UPDATE SET data = excluded.data`, a, b, string(js)); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
}

// Summarised returns when the run's summary was built.
func (s *Postgres) Summarised(ctx context.Context, run int64) (time.Time, error) {
	var built string
	err := s.pool.QueryRow(ctx, `SELECT built FROM summaries WHERE run_id = $1`, run).Scan(&built)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	return parseTime(built), err
}

// Aggregates returns the aggregates of a kind, by key.
func (s *Postgres) Aggregates(ctx context.Context, run int64, kind string) ([]result.Aggregate, error) {
	rows, err := s.pool.Query(ctx, `SELECT data FROM aggregates WHERE run_id = $1 AND kind = $2 ORDER BY key`, run, kind)
	if err != nil {
		return nil, fmt.Errorf("read aggregates: %w", err)
	}
	defer rows.Close()
	return collect(rows, jsonRow[result.Aggregate])
}

// Aggregate returns one aggregate.
func (s *Postgres) Aggregate(ctx context.Context, run int64, kind, key string) (result.Aggregate, error) {
	var g result.Aggregate
	err := scanJSON(s.pool.QueryRow(ctx, `SELECT data FROM aggregates WHERE run_id = $1 AND kind = $2 AND key = $3`, run, kind, key), &g)
	if errors.Is(err, pgx.ErrNoRows) {
		return g, fmt.Errorf("%s %q of run %d: %w", kind, key, run, ErrNotFound)
	}
	return g, err
}

// Trend returns an aggregate across the summarised runs.
func (s *Postgres) Trend(ctx context.Context, kind, key string) ([]TrendPoint, error) {
	rows, err := s.pool.Query(ctx, `SELECT a.run_id, r.started, a.data FROM aggregates a JOIN runs r ON r.id = a.run_id
		WHERE a.kind = $1 AND a.key = $2 AND r.state = 'done' ORDER BY a.run_id`, kind, key)
	if err != nil {
		return nil, fmt.Errorf("read trend: %w", err)
	}
	defer rows.Close()
	return collect(rows, scanTrend)
}

// DomainSummaries returns a page of a TLD's domains: an index range in every order.
func (s *Postgres) DomainSummaries(ctx context.Context, run int64, q SummaryQuery) ([]result.DomainSummary, error) {
	col, ok := sortColumn[q.Sort]
	if !ok {
		return nil, fmt.Errorf("unknown order %q", q.Sort)
	}
	cmp, dir := ">", "ASC"
	if q.Desc {
		cmp, dir = "<", "DESC"
	}
	// Every piece of the SQL text below is fixed; the values are parameters.
	where := `run_id = $1 AND tld = $2`
	args := []any{run, q.TLD}
	if q.After != nil {
		if q.Sort == SortName {
			where += ` AND name ` + cmp + ` $3`
			args = append(args, q.After.Name)
		} else {
			where += ` AND (` + col + `, name) ` + cmp + ` ($3, $4)`
			args = append(args, q.After.Key, q.After.Name)
		}
	}
	order := col + ` ` + dir + `, name ` + dir
	if q.Sort == SortName {
		order = `name ` + dir
	}
	args = append(args, q.Limit)
	rows, err := s.pool.Query(ctx, `SELECT `+summaryColumns+` FROM domain_summary WHERE `+where+
		` ORDER BY `+order+` LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, fmt.Errorf("read domains of %s: %w", q.TLD, err)
	}
	defer rows.Close()
	return collect(rows, scanDomainSummary)
}

// DomainSummary returns one domain's summary.
func (s *Postgres) DomainSummary(ctx context.Context, run int64, name string) (result.DomainSummary, error) {
	var d result.DomainSummary
	err := scanSummary(s.pool.QueryRow(ctx, `SELECT `+summaryColumns+` FROM domain_summary WHERE run_id = $1 AND name = $2`, run, name), &d)
	if errors.Is(err, pgx.ErrNoRows) {
		return d, fmt.Errorf("domain %s in run %d: %w", name, run, ErrNotFound)
	}
	return d, err
}

// History returns a domain's summary across the finished runs (the trend's: a run being
// crawled, or failed, is no point of it).
func (s *Postgres) History(ctx context.Context, name string) ([]HistoryPoint, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+summaryColumns+`, d.run_id, r.started FROM domain_summary d
		JOIN runs r ON r.id = d.run_id WHERE d.name = $1 AND r.state = 'done' ORDER BY d.run_id`, name)
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", name, err)
	}
	defer rows.Close()
	return collect(rows, scanHistory)
}

// Search finds domains and host names by prefix: two index ranges, one statement.
func (s *Postgres) Search(ctx context.Context, run int64, prefix string, limit int) ([]result.DomainSummary, []string, error) {
	rows, err := s.pool.Query(ctx, `SELECT 0, `+summaryColumns+` FROM (SELECT `+summaryColumns+` FROM domain_summary
		WHERE run_id = $1 AND name >= $2 AND name < $3 ORDER BY name LIMIT $4) d
		UNION ALL SELECT 1, name, '', 0, '', '', '', '', '', '', '', '', '', '' FROM (SELECT name FROM hosts
		WHERE run_id = $1 AND name >= $2 AND name < $3 ORDER BY name LIMIT $4) h
		ORDER BY 1, 2`, run, prefix, prefixEnd(prefix), limit)
	if err != nil {
		return nil, nil, fmt.Errorf("search %q: %w", prefix, err)
	}
	defer rows.Close()
	return readSearch(rows)
}

// Located returns a country's or an AS's addresses, the most used first.
func (s *Postgres) Located(ctx context.Context, run int64, kind, key string, limit, offset int) ([]result.AddressSummary, error) {
	col, val, err := locatedBy(kind, key)
	if err != nil {
		return nil, err
	}
	// col is one of two fixed column names, never input.
	rows, err := s.pool.Query(ctx, `SELECT data FROM address_summary WHERE run_id = $1 AND `+col+` = $2
		ORDER BY domains DESC, ip DESC LIMIT $3 OFFSET $4`, run, val, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("read addresses of %s %s: %w", kind, key, err)
	}
	defer rows.Close()
	return collect(rows, jsonRow[result.AddressSummary])
}

// Diff returns the stored counts of a diff; false when it was not built.
func (s *Postgres) Diff(ctx context.Context, a, b int64) (DiffCounts, bool, error) {
	var c DiffCounts
	err := scanJSON(s.pool.QueryRow(ctx, `SELECT data FROM run_diffs WHERE run_a = $1 AND run_b = $2`, a, b), &c)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, false, nil
	}
	return c, err == nil, err
}

// Changes returns a page of changed domains in rank order.
func (s *Postgres) Changes(ctx context.Context, a, b int64, role result.Role, change string, after Cursor, limit int) ([]Change, error) {
	rows, err := s.pool.Query(ctx, `SELECT rank, name FROM domain_changes
		WHERE run_a = $1 AND run_b = $2 AND role = $3 AND change = $4 AND (rank, name) > ($5, $6) ORDER BY rank, name LIMIT $7`,
		a, b, string(role), change, after.Rank, after.Name, limit)
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	return collect(rows, changeRow(role, change))
}

// Domain returns one domain with its hosts and addresses, and a vantage's measurements.
func (s *Postgres) Domain(ctx context.Context, run int64, vantage, name string) (Detail, error) {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return Detail{}, err
	}
	page, err := s.details(ctx, run, v, nil, `name = $2`, name)
	if err != nil {
		return Detail{}, err
	}
	if len(page) == 0 {
		return Detail{}, fmt.Errorf("domain %s in run %d: %w", name, run, ErrNotFound)
	}
	return page[0], nil
}

// SaveDocs writes domain documents in one statement.
func (s *Postgres) SaveDocs(ctx context.Context, c Claim, ds []Detail) error {
	run := c.Run
	last := lastOf(ds, func(d *Detail) string { return d.Name })
	docs, err := s.docs.encodeAll(last)
	if err != nil {
		return err
	}
	var rows [][]any
	for i, d := range last {
		rows = append(rows, []any{d.Name, docs[i]})
	}
	if len(rows) == 0 {
		return nil
	}
	err = s.summaryWrite(ctx, c, "save domain documents", func(s *Postgres) error {
		_, err := s.pool.Exec(ctx, `INSERT INTO domain_docs (run_id, name, doc) SELECT $1, * FROM unnest($2::text[], $3::bytea[])
			ON CONFLICT (run_id, name) DO UPDATE SET doc = excluded.doc`, append([]any{run}, columns(rows)...)...)
		return err
	})
	if err != nil {
		return fmt.Errorf("save %d domain documents: %w", len(rows), err)
	}
	return nil
}

// DomainDoc reads one domain document.
func (s *Postgres) DomainDoc(ctx context.Context, run int64, name string) (Detail, error) {
	var doc []byte
	err := s.pool.QueryRow(ctx, `SELECT doc FROM domain_docs WHERE run_id = $1 AND name = $2`, run, name).Scan(&doc)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Detail{}, fmt.Errorf("read the document of %s: %w", name, err)
	}
	return docDetail(doc, run, name)
}

// DomainPage reads a domain's history (the finished runs', and run's) and its document
// in run.
func (s *Postgres) DomainPage(ctx context.Context, run int64, name string) (Detail, []HistoryPoint, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+summaryColumns+`, d.run_id, r.started,
		(SELECT doc FROM domain_docs WHERE run_id = $1 AND name = $2) FROM domain_summary d
		JOIN runs r ON r.id = d.run_id WHERE d.name = $2 AND (r.state = 'done' OR d.run_id = $1) ORDER BY d.run_id`, run, name)
	if err != nil {
		return Detail{}, nil, fmt.Errorf("read the page of %s: %w", name, err)
	}
	defer rows.Close()
	return readDomainPage(rows, run, name)
}

// Documented reports whether the run has documents.
func (s *Postgres) Documented(ctx context.Context, run int64) (bool, error) {
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM domain_docs WHERE run_id = $1)`, run).Scan(&ok)
	return ok, err
}
