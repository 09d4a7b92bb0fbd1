package measure

import (
	"net/netip"
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
