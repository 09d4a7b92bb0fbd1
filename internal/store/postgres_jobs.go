package store

import (
	"context"
	"fmt"
	"net/netip"
)

// TargetsAt returns the run's targets with these addresses, each with the kinds
// already measured (as Targets gives them), in address text order: a distributed
// probe job's share of the probe stage.
func (s *Postgres) TargetsAt(ctx context.Context, run int64, ips []netip.Addr) ([]Target, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+targetColumns+`,
		coalesce((SELECT string_agg(kind, ' ') FROM measurements m WHERE m.run_id = t.run_id AND m.ip = t.ip), '')
		FROM targets t WHERE run_id = $1 AND ip = ANY($2::text[]) ORDER BY ip`, run, addrTexts(ips))
	if err != nil {
		return nil, fmt.Errorf("read targets: %w", err)
	}
	defer rows.Close()
	return collect(rows, scanPendingTarget)
}

// PendingNSTargetsAt returns the run's name server pairs of these addresses not yet
// checked, in (domain, ip) order: a distributed job's share of the name server checks.
func (s *Postgres) PendingNSTargetsAt(ctx context.Context, run int64, ips []netip.Addr) ([]NSTarget, error) {
	rows, err := s.pool.Query(ctx, `SELECT domain, ip, host FROM ns_targets n
		WHERE run_id = $1 AND ip = ANY($2::text[])
		AND NOT EXISTS (SELECT 1 FROM ns_checks c WHERE c.run_id = n.run_id AND c.domain = n.domain AND c.ip = n.ip)
		ORDER BY domain, ip`, run, addrTexts(ips))
	if err != nil {
		return nil, fmt.Errorf("read name server targets: %w", err)
	}
	defer rows.Close()
	return collect(rows, scanNSTarget)
}

// NSTargetAddrs pages through the distinct addresses of the run's name server pairs
// not yet checked, in text order, after after.
func (s *Postgres) NSTargetAddrs(ctx context.Context, run int64, after string, limit int) ([]netip.Addr, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ip FROM ns_targets n
		WHERE run_id = $1 AND ip > $2
		AND NOT EXISTS (SELECT 1 FROM ns_checks c WHERE c.run_id = n.run_id AND c.domain = n.domain AND c.ip = n.ip)
		ORDER BY ip LIMIT $3`, run, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read name server addresses: %w", err)
	}
	defer rows.Close()
	return collect(rows, func(sc rowScanner) (netip.Addr, error) {
		var ip string
		if err := sc.Scan(&ip); err != nil {
			return netip.Addr{}, err
		}
		return netip.ParseAddr(ip)
	})
}

// addrTexts returns addresses as the text the tables hold.
func addrTexts(ips []netip.Addr) []string {
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out
}
