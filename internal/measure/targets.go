package measure

import (
	"context"
	"net/netip"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// target is one unique address of a run with what its roles call for. The names
// come from the best-ranked domain that uses the address in each role.
type target struct {
	ip     netip.Addr
	www    string // host name for TLS SNI on 443; "" when no www host uses the address
	mx     string // host name of an mx host (STARTTLS on 25)
	nsZone string // for a name server check: the domain whose SOA is asked
	ntp    bool   // an ntp host uses the address
	// host is the first host found with the address (domains in rank order): a
	// dual-stack host's IPv4 and IPv6 addresses share it, so their path traces
	// take turns (see hostLocks).
	host    string
	measure map[string]bool
}

// nsPair is one (domain, name server address) pair: the address is asked the domain's
// SOA.
type nsPair struct {
	domain, host string
	ip           netip.Addr
}

// collectTargets reads the run's domains and gathers every address once, and every
// (domain, name server address) pair. A domain whose own NS query failed is measured
// through the NS hosts its parent delegates to (a lame delegation shows there).
func collectTargets(ctx context.Context, st store.Store, run int64) ([]*target, []nsPair, error) {
	byIP := map[netip.Addr]*target{}
	var order []*target
	var pairs []nsPair
	err := st.Details(ctx, run, func(d store.Detail) error {
		if d.Status != result.StatusOK && d.NSSource != result.NSParent {
			return nil
		}
		for _, ref := range d.Hosts {
			h := d.HostsByName[ref.Name]
			for _, ips := range [][]netip.Addr{h.V4, h.V6} {
				for _, ip := range ips {
					t := byIP[ip]
					if t == nil {
						t = &target{ip: ip, host: ref.Name}
						byIP[ip] = t
						order = append(order, t)
					}
					switch ref.Role {
					case result.RoleWWW:
						if t.www == "" {
							t.www = ref.Name
						}
					case result.RoleMX:
						if t.mx == "" {
							t.mx = ref.Name
						}
					case result.RoleNS:
						pairs = append(pairs, nsPair{domain: d.Name, host: ref.Name, ip: ip})
					case result.RoleNTP:
						t.ntp = true
					}
				}
			}
		}
		return nil
	})
	return order, pairs, err
}

// kinds returns the measurements the target calls for, among those enabled, in the
// order of probeKinds. Per-domain kinds (dns53) are planned apart: see nsPlans.
func (t *target) kinds(enabled map[string]bool) []string {
	var out []string
	for _, k := range probeKinds {
		if enabled[k.kind] && t.wants(k.wants) {
			out = append(out, k.kind)
		}
	}
	return out
}

// wants reports whether the target's roles call for kinds of w.
func (t *target) wants(w want) bool {
	switch w {
	case forAll:
		return true
	case forWWW:
		return t.www != ""
	case forMX:
		return t.mx != ""
	case forNTP:
		return t.ntp
	}
	return false
}
