package store

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/v6matrix/v6matrix/internal/result"
)

// roleBits maps a host role to its bit of Roles.
var roleBits = map[result.Role]Roles{
	result.RoleWWW: RoleWWW, result.RoleMX: RoleMX, result.RoleNTP: RoleNTP, result.RoleNS: RoleNS,
}

// TargetsOf returns the probe stage's input from one measured domain: an entry per
// address of each of its hosts, with the role and the names the probes need (ranked by
// the domain's rank; the store keeps the best-ranked), and a (domain, address) pair per
// name server address. A domain that failed gives nothing, unless its name servers came
// from the parent's delegation (a lame delegation shows in their checks).
func TargetsOf(d result.Domain, hosts []result.Host) ([]Target, []NSTarget) {
	if d.Status != result.StatusOK && d.NSSource != result.NSParent {
		return nil, nil
	}
	byName := make(map[string]*result.Host, len(hosts))
	for i := range hosts {
		byName[hosts[i].Name] = &hosts[i]
	}
	var ts []Target
	var ns []NSTarget
	seen := map[netip.Addr]bool{} // name server addresses paired already
	for _, ref := range d.Hosts {
		h := byName[ref.Name]
		if h == nil {
			continue
		}
		for _, ips := range [][]netip.Addr{h.V4, h.V6} {
			for _, ip := range ips {
				t := Target{IP: ip, Roles: RoleAddr | roleBits[ref.Role], Host: ref.Name, HostRank: d.Rank}
				switch ref.Role {
				case result.RoleWWW:
					t.WWW, t.WWWRank = ref.Name, d.Rank
				case result.RoleMX:
					t.MX, t.MXRank = ref.Name, d.Rank
				case result.RoleNS:
					if !seen[ip] {
						seen[ip] = true
						ns = append(ns, NSTarget{Domain: d.Name, Host: ref.Name, IP: ip})
					}
				}
				ts = append(ts, t)
			}
		}
	}
	return ts, ns
}

// BackfillTargets writes the targets of a run saved before the store kept them
// (migration 6): from every domain's hosts, in batches of about a thousand domains, as
// the DNS stage would have. It does nothing when the run has targets, or no domain done.
func BackfillTargets(ctx context.Context, st Store, run int64) error {
	if ts, err := st.Targets(ctx, run, "", "", 1); err != nil || len(ts) > 0 {
		return err
	}
	if c, err := st.Counts(ctx, run); err != nil || c.Done == 0 {
		return err
	}
	var b Batch
	flush := func() error {
		err := st.Save(ctx, run, b)
		b = Batch{}
		return err
	}
	n := 0
	err := st.Details(ctx, run, "", func(d Detail) error {
		hosts := make([]result.Host, 0, len(d.HostsByName))
		for _, h := range d.HostsByName {
			hosts = append(hosts, h)
		}
		ts, ns := TargetsOf(d.Domain, hosts)
		b.Targets, b.NSTargets = append(b.Targets, ts...), append(b.NSTargets, ns...)
		if n++; n%1000 == 0 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("backfill the targets of run %d: %w", run, err)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("backfill the targets of run %d: %w", run, err)
	}
	return nil
}
