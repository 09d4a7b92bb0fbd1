package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strconv"
	"strings"
	"time"

	"github.com/v6matrix/v6matrix/internal/result"
)

// ClearSummary removes a run's summary rows.
func (s *SQLite) ClearSummary(ctx context.Context, c Claim) error {
	run := c.Run
	tx, err := s.summaryTx(ctx, c)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, q := range []string{
		`DELETE FROM summaries WHERE run_id = ?`,
		`DELETE FROM domain_summary WHERE run_id = ?`,
		`DELETE FROM domain_docs WHERE run_id = ?`,
		`DELETE FROM aggregates WHERE run_id = ?`,
		`DELETE FROM address_summary WHERE run_id = ?`,
		`DELETE FROM run_diffs WHERE run_a = ?1 OR run_b = ?1`,
		`DELETE FROM domain_changes WHERE run_a = ?1 OR run_b = ?1`,
	} {
		if _, err := tx.ExecContext(ctx, q, run); err != nil {
			return fmt.Errorf("clear summary of run %d: %w", run, err)
		}
	}
	return tx.Commit()
}

// SetSummaryFinal records whether the run's final summary has begun.
func (s *SQLite) SetSummaryFinal(ctx context.Context, run int64, final bool) error {
	q := `DELETE FROM summary_final WHERE run_id = ?`
	if final {
		q = `INSERT OR IGNORE INTO summary_final (run_id) VALUES (?)`
	}
	if _, err := s.db.ExecContext(ctx, q, run); err != nil {
		return fmt.Errorf("summary of run %d: %w", run, err)
	}
	return nil
}

// summaryTx begins a transaction that writes c's summary. A provisional summary's
// fails with ErrSuperseded when the run's final summary has begun; the transaction
// holds the database's write lock from its start (_txlock=immediate), so that
// SetSummaryFinal cannot come between the check and the writes.
func (s *SQLite) summaryTx(ctx context.Context, c Claim) (*sql.Tx, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil || !c.Provisional {
		return tx, err
	}
	var final bool
	err = tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM summary_final WHERE run_id = ?)`, c.Run).Scan(&final)
	if err == nil && final {
		err = ErrSuperseded
	}
	if err != nil {
		tx.Rollback()
		return nil, fmt.Errorf("summary of run %d: %w", c.Run, err)
	}
	return tx, nil
}

// SaveSummaries writes domain summaries in one transaction.
func (s *SQLite) SaveSummaries(ctx context.Context, c Claim, ss []result.DomainSummary) error {
	run := c.Run
	tx, err := s.summaryTx(ctx, c)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	err = insertRows(ctx, tx, `INSERT OR REPLACE INTO domain_summary (run_id, name, tld, rank, status,
		ns, mx, www, ntp, ns_reach, mx_reach, www_reach, ntp_reach, broken, k_ns, k_mx, k_www, k_ntp) VALUES `,
		len(ss), func(i int) []any { return append([]any{run}, summaryArgs(&ss[i])...) })
	if err != nil {
		return fmt.Errorf("save %d summaries: %w", len(ss), err)
	}
	return tx.Commit()
}

// insertRowsAtOnce is how many rows insertRows writes with one statement.
const insertRowsAtOnce = 250

// insertRows runs insert (an INSERT's text up to its VALUES) for n rows, whose values
// row(i) returns, insertRowsAtOnce rows a statement, in order (a later row replaces an
// earlier one as it would one statement each). A statement a row cost SQLite a copy
// of every index page it changed to the statement journal, again for every row: with
// domain_summary's eight indexes, half of saving a summary.
func insertRows(ctx context.Context, tx *sql.Tx, insert string, n int, row func(int) []any) error {
	var full *sql.Stmt
	for start := 0; start < n; start += insertRowsAtOnce {
		end := min(start+insertRowsAtOnce, n)
		var args []any
		for i := start; i < end; i++ {
			args = append(args, row(i)...)
		}
		text := insert + valuesList(end-start, len(args)/(end-start))
		var err error
		if end-start < insertRowsAtOnce {
			_, err = tx.ExecContext(ctx, text, args...)
		} else {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, text); err != nil {
					return err
				}
				defer full.Close()
			}
			_, err = full.ExecContext(ctx, args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// valuesList returns the VALUES of rows rows of cols parameters: (?, ?), (?, ?).
func valuesList(rows, cols int) string {
	one := "(" + strings.Repeat("?, ", cols-1) + "?)"
	return strings.Repeat(one+", ", rows-1) + one
}

// SaveAggregates writes the aggregates and located addresses and marks the run summarised.
func (s *SQLite) SaveAggregates(ctx context.Context, c Claim, gs []result.Aggregate, as iter.Seq[result.AddressSummary]) error {
	run := c.Run
	tx, err := s.summaryTx(ctx, c)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	gst, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO aggregates (run_id, kind, key, data) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer gst.Close()
	for _, g := range gs {
		js, _ := json.Marshal(g)
		if _, err := gst.ExecContext(ctx, run, g.Kind, g.Key, string(js)); err != nil {
			return fmt.Errorf("save aggregate %s %s: %w", g.Kind, g.Key, err)
		}
	}
	ast, err := tx.PrepareContext(ctx, `INSERT OR REPLACE INTO address_summary (run_id, ip, family, cc, asn, domains, data)
		VALUES (?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer ast.Close()
	if as != nil {
		for a := range as {
			js, _ := json.Marshal(a)
			if _, err := ast.ExecContext(ctx, run, a.IP, a.Family, a.CountryCode, a.ASN, a.Domains, string(js)); err != nil {
				return fmt.Errorf("save address summary %s: %w", a.IP, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO summaries (run_id, built) VALUES (?, ?)`,
		run, formatTime(time.Now())); err != nil {
		return err
	}
	return tx.Commit()
}

// BuildDiff records, per role, the domains of both runs whose IPv6 went from a measured
// "no" to "yes" (gained) or back (lost), and the counts.
func (s *SQLite) BuildDiff(ctx context.Context, a, b int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM domain_changes WHERE run_a = ? AND run_b = ?`, a, b); err != nil {
		return err
	}
	c := DiffCounts{A: a, B: b}
	for i, role := range result.Roles {
		col := roleColumn[role]
		for _, ch := range []struct{ name, from, to string }{{"gained", "no", "yes"}, {"lost", "yes", "no"}} {
			// col is one of four fixed column names, never input.
			res, err := tx.ExecContext(ctx, `INSERT INTO domain_changes (run_a, run_b, role, change, rank, name)
				SELECT ?1, ?2, ?3, ?4, y.rank, y.name FROM domain_summary x
				JOIN domain_summary y ON y.run_id = ?2 AND y.name = x.name
				WHERE x.run_id = ?1 AND x.`+col+` = ?5 AND y.`+col+` = ?6`, a, b, string(role), ch.name, ch.from, ch.to)
			if err != nil {
				return fmt.Errorf("diff runs %d and %d: %w", a, b, err)
			}
			n, _ := res.RowsAffected()
			if ch.name == "gained" {
				c.Gained[i] = int(n)
			} else {
				c.Lost[i] = int(n)
			}
		}
	}
	var na, nb int
	err = tx.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM domain_summary WHERE run_id = ?1),
		(SELECT count(*) FROM domain_summary WHERE run_id = ?2),
		(SELECT count(*) FROM domain_summary x JOIN domain_summary y ON y.run_id = ?2 AND y.name = x.name WHERE x.run_id = ?1)`,
		a, b).Scan(&na, &nb, &c.Common)
	if err != nil {
		return fmt.Errorf("diff runs %d and %d: %w", a, b, err)
	}
	c.OnlyA, c.OnlyB = na-c.Common, nb-c.Common
	js, _ := json.Marshal(c)
	if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO run_diffs (run_a, run_b, data) VALUES (?, ?, ?)`, a, b, string(js)); err != nil {
		return err
	}
	return tx.Commit()
}

// roleColumn maps a role to its summary column (fixed names, safe in SQL text).
var roleColumn = map[result.Role]string{result.RoleNS: "ns", result.RoleMX: "mx", result.RoleWWW: "www", result.RoleNTP: "ntp"}

// Summarised returns when the run's summary was built.
func (s *SQLite) Summarised(ctx context.Context, run int64) (time.Time, error) {
	var built string
	err := s.queryRow(ctx, `SELECT built FROM summaries WHERE run_id = ?`, run).Scan(&built)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	return parseTime(built), err
}

// Aggregates returns the aggregates of a kind, by key.
func (s *SQLite) Aggregates(ctx context.Context, run int64, kind string) ([]result.Aggregate, error) {
	rows, err := s.query(ctx, `SELECT data FROM aggregates WHERE run_id = ? AND kind = ? ORDER BY key`, run, kind)
	if err != nil {
		return nil, fmt.Errorf("read aggregates: %w", err)
	}
	defer rows.Close()
	return collect(rows, jsonRow[result.Aggregate])
}

// Aggregate returns one aggregate.
func (s *SQLite) Aggregate(ctx context.Context, run int64, kind, key string) (result.Aggregate, error) {
	var g result.Aggregate
	err := scanJSON(s.queryRow(ctx, `SELECT data FROM aggregates WHERE run_id = ? AND kind = ? AND key = ?`, run, kind, key), &g)
	if errors.Is(err, sql.ErrNoRows) {
		return g, fmt.Errorf("%s %q of run %d: %w", kind, key, run, ErrNotFound)
	}
	return g, err
}

// Trend returns an aggregate across the summarised runs.
func (s *SQLite) Trend(ctx context.Context, kind, key string) ([]TrendPoint, error) {
	rows, err := s.query(ctx, `SELECT a.run_id, r.started, a.data FROM aggregates a JOIN runs r ON r.id = a.run_id
		WHERE a.kind = ? AND a.key = ? AND r.state = 'done' ORDER BY a.run_id`, kind, key)
	if err != nil {
		return nil, fmt.Errorf("read trend: %w", err)
	}
	defer rows.Close()
	return collect(rows, scanTrend)
}

const summaryColumns = `name, tld, rank, status, ns, mx, www, ntp, ns_reach, mx_reach, www_reach, ntp_reach, broken`

func scanSummary(sc rowScanner, d *result.DomainSummary, extra ...any) error {
	var status, broken string
	var v, r [4]string
	args := []any{&d.Name, &d.TLD, &d.Rank, &status, &v[0], &v[1], &v[2], &v[3], &r[0], &r[1], &r[2], &r[3], &broken}
	if err := sc.Scan(append(args, extra...)...); err != nil {
		return err
	}
	d.Status, d.Broken = result.Status(status), result.Broken(broken)
	for i := range d.Roles {
		d.Roles[i] = result.RoleSummary{IPv6: result.Tri(v[i]), Reachable: result.Tri(r[i])}
	}
	return nil
}

// sortColumn maps an order to its key column (fixed names, safe in SQL text).
var sortColumn = map[SortKey]string{SortRank: "rank", SortName: "''", SortNS: "k_ns", SortMX: "k_mx", SortWWW: "k_www", SortNTP: "k_ntp"}

// DomainSummaries returns a page of a TLD's domains: an index range in every order.
func (s *SQLite) DomainSummaries(ctx context.Context, run int64, q SummaryQuery) ([]result.DomainSummary, error) {
	col, ok := sortColumn[q.Sort]
	if !ok {
		return nil, fmt.Errorf("unknown order %q", q.Sort)
	}
	cmp, dir := ">", "ASC"
	if q.Desc {
		cmp, dir = "<", "DESC"
	}
	where := `run_id = ? AND tld = ?`
	args := []any{run, q.TLD}
	if q.After != nil {
		if q.Sort == SortName {
			where += ` AND name ` + cmp + ` ?`
			args = append(args, q.After.Name)
		} else {
			where += ` AND (` + col + `, name) ` + cmp + ` (?, ?)`
			args = append(args, q.After.Key, q.After.Name)
		}
	}
	order := col + ` ` + dir + `, name ` + dir
	if q.Sort == SortName {
		order = `name ` + dir
	}
	rows, err := s.query(ctx, `SELECT `+summaryColumns+` FROM domain_summary WHERE `+where+
		` ORDER BY `+order+` LIMIT ?`, append(args, q.Limit)...)
	if err != nil {
		return nil, fmt.Errorf("read domains of %s: %w", q.TLD, err)
	}
	defer rows.Close()
	return collect(rows, scanDomainSummary)
}

// DomainSummary returns one domain's summary.
func (s *SQLite) DomainSummary(ctx context.Context, run int64, name string) (result.DomainSummary, error) {
	var d result.DomainSummary
	err := scanSummary(s.queryRow(ctx, `SELECT `+summaryColumns+` FROM domain_summary WHERE run_id = ? AND name = ?`, run, name), &d)
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("domain %s in run %d: %w", name, run, ErrNotFound)
	}
	return d, err
}

// History returns a domain's summary across the finished runs (the trend's: a run being
// crawled, or failed, is no point of it).
func (s *SQLite) History(ctx context.Context, name string) ([]HistoryPoint, error) {
	rows, err := s.query(ctx, `SELECT `+summaryColumns+`, d.run_id, r.started FROM domain_summary d
		JOIN runs r ON r.id = d.run_id WHERE d.name = ? AND r.state = 'done' ORDER BY d.run_id`, name)
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", name, err)
	}
	defer rows.Close()
	return collect(rows, scanHistory)
}

// prefixEnd returns the smallest string greater than every string starting with p.
func prefixEnd(p string) string { return p + "\U0010FFFF" }

// Search finds domains and host names by prefix: two index ranges, one statement.
func (s *SQLite) Search(ctx context.Context, run int64, prefix string, limit int) ([]result.DomainSummary, []string, error) {
	rows, err := s.query(ctx, `SELECT 0, `+summaryColumns+` FROM (SELECT `+summaryColumns+` FROM domain_summary
		WHERE run_id = ?1 AND name >= ?2 AND name < ?3 ORDER BY name LIMIT ?4) d
		UNION ALL SELECT 1, name, '', 0, '', '', '', '', '', '', '', '', '', '' FROM (SELECT name FROM hosts
		WHERE run_id = ?1 AND name >= ?2 AND name < ?3 ORDER BY name LIMIT ?4) h
		ORDER BY 1, 2`, run, prefix, prefixEnd(prefix), limit)
	if err != nil {
		return nil, nil, fmt.Errorf("search %q: %w", prefix, err)
	}
	defer rows.Close()
	return readSearch(rows)
}

// Located returns a country's or an AS's addresses, the most used first (ties by
// address, descending: the index order, written out so that both stores agree).
func (s *SQLite) Located(ctx context.Context, run int64, kind, key string, limit, offset int) ([]result.AddressSummary, error) {
	col, val, err := locatedBy(kind, key)
	if err != nil {
		return nil, err
	}
	// col is one of two fixed column names, never input.
	rows, err := s.query(ctx, `SELECT data FROM address_summary WHERE run_id = ? AND `+col+` = ?
		ORDER BY domains DESC, ip DESC LIMIT ? OFFSET ?`, run, val, limit, offset)
	if err != nil {
		return nil, fmt.Errorf("read addresses of %s %s: %w", kind, key, err)
	}
	defer rows.Close()
	return collect(rows, jsonRow[result.AddressSummary])
}

// locatedBy returns the address_summary column and value that select a country's or
// an AS's addresses.
func locatedBy(kind, key string) (string, any, error) {
	switch kind {
	case "country":
		return "cc", key, nil
	case "asn":
		asn, err := strconv.ParseUint(key, 10, 32)
		if err != nil {
			return "", nil, fmt.Errorf("AS number %q: %w", key, ErrNotFound)
		}
		return "asn", int64(asn), nil
	}
	return "", nil, fmt.Errorf("unknown location kind %q", kind)
}

// Diff returns the stored counts of a diff; false when it was not built.
func (s *SQLite) Diff(ctx context.Context, a, b int64) (DiffCounts, bool, error) {
	var c DiffCounts
	err := scanJSON(s.queryRow(ctx, `SELECT data FROM run_diffs WHERE run_a = ? AND run_b = ?`, a, b), &c)
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, nil
	}
	return c, err == nil, err
}

// Changes returns a page of changed domains in rank order.
func (s *SQLite) Changes(ctx context.Context, a, b int64, role result.Role, change string, after Cursor, limit int) ([]Change, error) {
	rows, err := s.query(ctx, `SELECT rank, name FROM domain_changes
		WHERE run_a = ? AND run_b = ? AND role = ? AND change = ? AND (rank, name) > (?, ?) ORDER BY rank, name LIMIT ?`,
		a, b, string(role), change, after.Rank, after.Name, limit)
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	return collect(rows, changeRow(role, change))
}

// Domain returns one domain with its hosts and addresses, and a vantage's measurements.
func (s *SQLite) Domain(ctx context.Context, run int64, vantage, name string) (Detail, error) {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return Detail{}, err
	}
	page, err := s.details(ctx, run, v, nil, `name = ?`, name)
	if err != nil {
		return Detail{}, err
	}
	if len(page) == 0 {
		return Detail{}, fmt.Errorf("domain %s in run %d: %w", name, run, ErrNotFound)
	}
	return page[0], nil
}

// SaveDocs writes domain documents in one transaction.
func (s *SQLite) SaveDocs(ctx context.Context, c Claim, ds []Detail) error {
	run := c.Run
	ptrs := make([]*Detail, len(ds))
	for i := range ds {
		ptrs[i] = &ds[i]
	}
	docs, err := s.docs.encodeAll(ptrs)
	if err != nil {
		return err
	}
	tx, err := s.summaryTx(ctx, c)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	err = insertRows(ctx, tx, `INSERT OR REPLACE INTO domain_docs (run_id, name, doc) VALUES `, len(ds),
		func(i int) []any { return []any{run, ds[i].Name, docs[i]} })
	if err != nil {
		return fmt.Errorf("save %d domain documents: %w", len(ds), err)
	}
	return tx.Commit()
}

// DomainDoc reads one domain document.
func (s *SQLite) DomainDoc(ctx context.Context, run int64, name string) (Detail, error) {
	var doc []byte
	err := s.queryRow(ctx, `SELECT doc FROM domain_docs WHERE run_id = ? AND name = ?`, run, name).Scan(&doc)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Detail{}, fmt.Errorf("read the document of %s: %w", name, err)
	}
	return docDetail(doc, run, name)
}

// DomainPage reads a domain's history (the finished runs', and run's) and its document
// in run.
func (s *SQLite) DomainPage(ctx context.Context, run int64, name string) (Detail, []HistoryPoint, error) {
	rows, err := s.query(ctx, `SELECT `+summaryColumns+`, d.run_id, r.started,
		(SELECT doc FROM domain_docs WHERE run_id = ?1 AND name = ?2) FROM domain_summary d
		JOIN runs r ON r.id = d.run_id WHERE d.name = ?2 AND (r.state = 'done' OR d.run_id = ?1) ORDER BY d.run_id`, run, name)
	if err != nil {
		return Detail{}, nil, fmt.Errorf("read the page of %s: %w", name, err)
	}
	defer rows.Close()
	return readDomainPage(rows, run, name)
}

// Documented reports whether the run has documents.
func (s *SQLite) Documented(ctx context.Context, run int64) (bool, error) {
	var ok bool
	err := s.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM domain_docs WHERE run_id = ?)`, run).Scan(&ok)
	return ok, err
}

// scanJSON reads one JSON column into v.
func scanJSON(sc rowScanner, v any) error {
	var data string
	if err := sc.Scan(&data); err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(data), v); err != nil {
		return fmt.Errorf("damaged summary row: %w", err)
	}
	return nil
}
