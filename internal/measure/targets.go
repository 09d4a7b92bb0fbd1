package measure

import (
	"net/netip"

	"github.com/v6matrix/v6matrix/internal/result"
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

// kinds returns the measurements the target calls for, among those enabled.
func (t *target) kinds(enabled map[string]bool) []string {
	var out []string
	add := func(k string, ok bool) {
		if ok && enabled[k] {
			out = append(out, k)
		}
	}
	add(result.KindPTR, true)
	add(result.KindGeo, true)
	add(result.KindPing, true)
	add(result.KindTCP25, true)
	add(result.KindTCP80, true)
	add(result.KindTCP443, true)
	add(result.KindTLS443, t.www != "")
	add(result.KindSTARTTLS, t.mx != "")
	// dns53 is per (domain, address): see nsPlans.
	add(result.KindNTP123, t.ntp)
	add(result.KindPath, true)
	add(result.KindHTTP80, t.www != "")
	return out
}
