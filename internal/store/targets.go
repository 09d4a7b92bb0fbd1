package store

import (
	"fmt"
	"net/netip"
	"strings"
)

// Roles is the set of roles an address plays in a run, one bit each: what the probe
// stage measures of it follows from them (measure.kindsOf).
type Roles uint8

// The roles of a target. RoleAddr is every address's (a host of any role uses it): the
// probes every address gets.
const (
	RoleAddr Roles = 1 << iota
	RoleWWW
	RoleMX
	RoleNTP
	RoleNS
)

// Target is one address of a run as the probe stage needs it, written by Save in the
// same transaction as the domains that use it. The names are those of the best-ranked
// domain that used the address in that role so far (its rank beside it; the first one
// seen wins a tie).
type Target struct {
	IP    netip.Addr
	Roles Roles
	// WWW is a www host name with the address (TLS SNI on 443, HTTP Host).
	WWW     string
	WWWRank int
	// MX is an mx host name with the address (STARTTLS on 25).
	MX     string
	MXRank int
	// Host is the first host name found with the address: a dual-stack host's IPv4 and
	// IPv6 addresses share it, so their path traces take turns.
	Host     string
	HostRank int

	// Added and Changed are set by Save, in the batch's slice: the roles the address
	// did not have before (all of them for a new address), and whether the stored row
	// changed at all (a role added or a better-ranked name). Only the first entry of
	// an address in a batch gets them; Save leaves the merged row in every entry.
	Added   Roles
	Changed bool
	// Measured is set by Targets: the kinds the run already measured of the address.
	Measured []string
}

// NSTarget is one (domain, name server address) pair of a run: the address is asked
// the domain's SOA (the name server check).
type NSTarget struct {
	Domain string
	Host   string // the NS host name with the address
	IP     netip.Addr
}

// nsUnchecked is the condition on ns_targets rows (n) of the pairs without a check
// from the vantage that the query parameter p holds (? or $N: the store's dialect).
func nsUnchecked(p string) string {
	return `
		AND NOT EXISTS (SELECT 1 FROM ns_checks c WHERE c.run_id = n.run_id AND c.vantage = ` + p + ` AND c.domain = n.domain AND c.ip = n.ip)`
}

// NSCursor pages through a run's name server pairs in (domain, ip) order.
type NSCursor struct {
	Domain, IP string
}

// better reports whether a name given by a domain of rank r beats the current one.
func better(name string, r int, cur string, curRank int) bool {
	return name != "" && (cur == "" || r < curRank)
}

// merge folds t into the row cur (zero when the address is new) and reports the roles
// added and whether anything changed.
func merge(cur *Target, t Target) (added Roles, changed bool) {
	if !cur.IP.IsValid() {
		cur.IP = t.IP
	}
	added = t.Roles &^ cur.Roles
	cur.Roles |= t.Roles
	changed = added != 0
	if better(t.WWW, t.WWWRank, cur.WWW, cur.WWWRank) {
		cur.WWW, cur.WWWRank, changed = t.WWW, t.WWWRank, true
	}
	if better(t.MX, t.MXRank, cur.MX, cur.MXRank) {
		cur.MX, cur.MXRank, changed = t.MX, t.MXRank, true
	}
	if better(t.Host, t.HostRank, cur.Host, cur.HostRank) {
		cur.Host, cur.HostRank, changed = t.Host, t.HostRank, true
	}
	return added, changed
}

// mergeTargets folds a batch's targets into the rows the run has for their addresses:
// it returns the rows to write, one per address whose row changed, and leaves each
// merged row, with Added and Changed on an address's first entry, in ts.
func mergeTargets(ts []Target, rowsHad []Target) []Target {
	old := make(map[netip.Addr]Target, len(rowsHad))
	for _, t := range rowsHad {
		old[t.IP] = t
	}
	rows := map[netip.Addr]*Target{}
	var order []*Target
	for _, t := range ts {
		r := rows[t.IP]
		if r == nil {
			o := old[t.IP]
			r = &o
			rows[t.IP] = r
			order = append(order, r)
		}
		merge(r, t)
	}
	changed := map[netip.Addr]bool{}
	for i := range ts {
		ip := ts[i].IP
		ts[i] = *rows[ip]
		if _, seen := changed[ip]; !seen {
			o := old[ip]
			ts[i].Added, ts[i].Changed = merge(&o, *rows[ip])
			changed[ip] = ts[i].Changed
		}
	}
	out := make([]Target, 0, len(order))
	for _, r := range order {
		if changed[r.IP] { // an unchanged row (a shared name server's, mostly) is not written again
			out = append(out, *r)
		}
	}
	return out
}

// targetArgs are a target's column values after run_id and ip.
func targetArgs(t *Target) []any {
	return []any{t.IP.String(), int(t.Roles), t.WWW, t.WWWRank, t.MX, t.MXRank, t.Host, t.HostRank}
}

// targetColumns are the columns scanTarget reads, in its order.
const targetColumns = `ip, roles, www, www_rank, mx, mx_rank, host, host_rank`

func scanTarget(sc rowScanner) (Target, error) {
	var t Target
	var ip string
	var roles int
	if err := sc.Scan(&ip, &roles, &t.WWW, &t.WWWRank, &t.MX, &t.MXRank, &t.Host, &t.HostRank); err != nil {
		return t, err
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return t, fmt.Errorf("target %q: %w", ip, err)
	}
	t.IP, t.Roles = a, Roles(roles)
	return t, nil
}

// scanPendingTarget reads a target and its measured kinds (space-separated).
func scanPendingTarget(sc rowScanner) (Target, error) {
	var t Target
	var ip, kinds string
	var roles int
	if err := sc.Scan(&ip, &roles, &t.WWW, &t.WWWRank, &t.MX, &t.MXRank, &t.Host, &t.HostRank, &kinds); err != nil {
		return t, err
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return t, fmt.Errorf("target %q: %w", ip, err)
	}
	t.IP, t.Roles, t.Measured = a, Roles(roles), strings.Fields(kinds)
	return t, nil
}

func scanNSTarget(sc rowScanner) (NSTarget, error) {
	var n NSTarget
	var ip string
	if err := sc.Scan(&n.Domain, &ip, &n.Host); err != nil {
		return n, err
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return n, fmt.Errorf("name server target %s %q: %w", n.Domain, ip, err)
	}
	n.IP = a
	return n, nil
}

// targetIPs returns the distinct addresses of ts as text.
func targetIPs(ts []Target) []string {
	seen := map[netip.Addr]bool{}
	var out []string
	for _, t := range ts {
		if !seen[t.IP] {
			seen[t.IP] = true
			out = append(out, t.IP.String())
		}
	}
	return out
}
