package crawl

import (
	"net/netip"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// roleBits maps a host role to its bit of store.Roles.
var roleBits = map[result.Role]store.Roles{
	result.RoleWWW: store.RoleWWW, result.RoleMX: store.RoleMX, result.RoleNTP: store.RoleNTP, result.RoleNS: store.RoleNS,
}

// targets returns the probe stage's input from one measured domain: an entry per
// address of each of its hosts, with the role and the names the probes need (ranked by
// the domain's rank; the store keeps the best-ranked), and a (domain, address) pair per
// name server address. A domain that failed gives nothing, unless its name servers came
// from the parent's delegation (a lame delegation shows in their checks).
func targets(d result.Domain, hosts []result.Host) ([]store.Target, []store.NSTarget) {
	if d.Status != result.StatusOK && d.NSSource != result.NSParent {
		return nil, nil
	}
	byName := make(map[string]*result.Host, len(hosts))
	for i := range hosts {
		byName[hosts[i].Name] = &hosts[i]
	}
	var ts []store.Target
	var ns []store.NSTarget
	seen := map[netip.Addr]bool{} // name server addresses paired already
	for _, ref := range d.Hosts {
		h := byName[ref.Name]
		if h == nil {
			continue
		}
		for _, ips := range [][]netip.Addr{h.V4, h.V6} {
			for _, ip := range ips {
				t := store.Target{IP: ip, Roles: store.RoleAddr | roleBits[ref.Role], Host: ref.Name, HostRank: d.Rank}
				switch ref.Role {
				case result.RoleWWW:
					t.WWW, t.WWWRank = ref.Name, d.Rank
				case result.RoleMX:
					t.MX, t.MXRank = ref.Name, d.Rank
				case result.RoleNS:
					if !seen[ip] {
						seen[ip] = true
						ns = append(ns, store.NSTarget{Domain: d.Name, Host: ref.Name, IP: ip})
					}
				}
				ts = append(ts, t)
			}
		}
	}
	return ts, ns
}
