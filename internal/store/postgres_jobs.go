package store

import (
	"context"
	"fmt"
	"net/netip"
)

// TargetsAt returns the run's targets with these addresses, each with the kinds the
// vantage already measured (as Targets gives them), in address text order: a
// distributed probe job's share of the probe stage.
func (s *Postgres) TargetsAt(ctx context.Context, run int64, vantage string, ips []netip.Addr) ([]Target, error) {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+targetColumns+`,
		coalesce((SELECT string_agg(kind, ' ') FROM measurements m WHERE m.run_id = t.run_id AND m.vantage = $3 AND m.ip = t.ip), '')
		FROM targets t WHERE run_id = $1 AND ip = ANY($2::text[]) ORDER BY ip`, run, addrTexts(ips), v)
	if err != nil {
		return nil, fmt.Errorf("read targets: %w", err)
	}
	defer rows.Close()
	return collect(rows, scanPendingTarget)
}

// PendingNSTargetsAt returns the run's name server pairs of these addresses that the
// vantage has not checked, in (domain, ip) order: a distributed job's share of the name
// server checks.
func (s *Postgres) PendingNSTargetsAt(ctx context.Context, run int64, vantage string, ips []netip.Addr) ([]NSTarget, error) {
	v, err := s.vantage(ctx, run, vantage)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT domain, ip, host FROM ns_targets n
		WHERE run_id = $1 AND ip = ANY($2::text[])`+nsUnchecked("$3")+`
		ORDER BY domain, ip`, run, addrTexts(ips), v)
	if err != nil {
		return nil, fmt.Errorf("read name server targets: %w", err)
	}
	defer rows.Close()
	return collect(rows, scanNSTarget)
}

// addrTexts returns addresses as the text the tables hold.
func addrTexts(ips []netip.Addr) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
