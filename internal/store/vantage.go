package store

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/v6matrix/v6matrix/internal/result"
)

// VantagePair is one address's results from two vantages of a run (VantageResults): A
// and B hold the measurements of the kinds asked, a nil field where that vantage has
// none (not measured is not "unreachable").
type VantagePair struct {
	A, B result.Address
}

// vantageQueries are a store's dialect of the vantage queries: own reads a run's own
// vantage (run; no row when there is no such run); others the vantages of its
// measurements and checks other than its own, in name order (run, own); pairs the
// results of a list of kinds of vantage a, with vantage b's of the same address and
// kind (run, a, b, after, kinds); results those of one vantage, with NULL for b's
// (run, a, after, kinds).
type vantageQueries struct {
	own, others, pairs, results string
	// list turns kinds into the query parameter that holds them.
	list func([]string) any
}

// vantageOf returns v, or the run's own vantage when v is "" ("" when there is no
// such run: its queries find nothing).
func vantageOf(ctx context.Context, q queryFunc, vq *vantageQueries, run int64, v string) (string, error) {
	if v != "" {
		return v, nil
	}
	own, _, err := ownVantage(ctx, q, vq, run)
	return own, err
}

// ownVantage reads the run's own vantage; ok is false when there is no such run.
func ownVantage(ctx context.Context, q queryFunc, vq *vantageQueries, run int64) (own string, ok bool, err error) {
	rows, done, err := q(ctx, vq.own, run)
	if err != nil {
		return "", false, fmt.Errorf("read the vantage of run %d: %w", run, err)
	}
	defer done()
	vs, err := collect(rows, scanString)
	if err != nil || len(vs) == 0 {
		return "", false, err
	}
	return vs[0], true, nil
}

// vantages lists a run's vantages, its own first; ErrNotFound when there is no such run.
func vantages(ctx context.Context, q queryFunc, vq *vantageQueries, run int64) ([]string, error) {
	own, ok, err := ownVantage(ctx, q, vq, run)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("run %d: %w", run, ErrNotFound)
	}
	rows, done, err := q(ctx, vq.others, run, own)
	if err != nil {
		return nil, fmt.Errorf("read the vantages of run %d: %w", run, err)
	}
	defer done()
	others, err := collect(rows, scanString)
	if err != nil {
		return nil, fmt.Errorf("read the vantages of run %d: %w", run, err)
	}
	return append([]string{own}, others...), nil
}

// vantageResults reads the pairs of two vantages' results (see Store.VantageResults),
// one address at a time, until fn returns false.
func vantageResults(ctx context.Context, q queryFunc, vq *vantageQueries, run int64, a, b string, kinds []string, after string, fn func(VantagePair) bool) error {
	var err error
	if a, err = vantageOf(ctx, q, vq, run, a); err != nil {
		return err
	}
	if b, err = vantageOf(ctx, q, vq, run, b); err != nil {
		return err
	}
	query, args := vq.pairs, []any{run, a, b, after, vq.list(kinds)}
	emit := fn
	if a == b { // one vantage's results: read and decoded once
		query, args = vq.results, []any{run, a, after, vq.list(kinds)}
		emit = func(p VantagePair) bool {
			p.B = p.A
			return fn(p)
		}
	}
	rows, done, err := q(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("compare vantages %s and %s of run %d: %w", a, b, run, err)
	}
	defer done()
	var cur VantagePair
	for rows.Next() {
		var ip, kind, da string
		var db *string
		if err := rows.Scan(&ip, &kind, &da, &db); err != nil {
			return err
		}
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return fmt.Errorf("damaged measurement address %q: %w", ip, err)
		}
		if addr != cur.A.IP {
			if cur.A.IP.IsValid() && !emit(cur) {
				return nil
			}
			cur = VantagePair{A: result.Address{IP: addr}, B: result.Address{IP: addr}}
		}
		if err := decodeMeasurement(&cur.A, kind, da); err != nil {
			return err
		}
		if db != nil {
			if err := decodeMeasurement(&cur.B, kind, *db); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("compare vantages %s and %s of run %d: %w", a, b, run, err)
	}
	if cur.A.IP.IsValid() {
		emit(cur)
	}
	return nil
}

// CheckVantage returns nil when the run has vantage v ("" is always its own), else an
// error naming the run and the vantages it has.
func CheckVantage(ctx context.Context, st Store, run int64, v string) error {
	if v == "" {
		return nil
	}
	vs, err := st.Vantages(ctx, run)
	if err != nil {
		return err
	}
	if slices.Contains(vs, v) {
		return nil
	}
	return fmt.Errorf("run %d has no vantage %q: its vantages are %s", run, v, strings.Join(quoted(vs), ", "))
}

func quoted(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
