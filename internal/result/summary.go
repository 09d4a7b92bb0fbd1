package result

// Tri is a measured yes or no, or "unknown" when the measurement could not decide
// (a lookup that failed, an address not probed); empty when it does not apply.
type Tri string

// The values of a Tri.
const (
	Yes     Tri = "yes"
	No      Tri = "no"
	Unknown Tri = "unknown"
	NA      Tri = ""
)

// Broken says how a domain's published IPv6 fails, when it does.
type Broken string

// The kinds of broken IPv6.
const (
	BrokenNone        Broken = ""
	BrokenUnreachable Broken = "unreachable" // a valid AAAA address answered neither ping nor TCP
	BrokenBlackHole   Broken = "pmtu-black-hole"
)

// RoleSummary is one role of a domain's IPv6 summary.
type RoleSummary struct {
	// IPv6: a host of the role has a valid (routable) IPv6 address.
	IPv6 Tri `json:"ipv6"`
	// Reachable: one of those addresses answered ping or a TCP port over IPv6; unknown
	// when none of them was probed.
	Reachable Tri `json:"reachable"`
}

// DomainSummary is the per-domain IPv6 summary of a run (ipv6domain.csv, plus
// reachability), kept by the store so that the website never reads every domain.
type DomainSummary struct {
	Name   string `json:"domain"`
	Rank   int    `json:"rank"`
	TLD    string `json:"tld"`
	Status Status `json:"status"`
	// Roles are in the order of Roles (ns, mx, www, ntp).
	Roles  [4]RoleSummary `json:"-"`
	Broken Broken         `json:"broken,omitempty"`
}

// Role returns the summary of one role.
func (d *DomainSummary) Role(r Role) RoleSummary {
	for i, x := range Roles {
		if x == r {
			return d.Roles[i]
		}
	}
	return RoleSummary{}
}

// AllFour reports whether every role has IPv6.
func (d *DomainSummary) AllFour() bool {
	for _, r := range d.Roles {
		if r.IPv6 != Yes {
			return false
		}
	}
	return true
}

// Aggregate counts domains (or, per country and ASN, also addresses) of one slice of a
// run: the whole run, one TLD, one country or one autonomous system.
type Aggregate struct {
	Kind string `json:"kind"` // "run", "tld", "country" or "asn"
	Key  string `json:"key"`  // "", the TLD, the country code or the AS number
	Name string `json:"name,omitempty"`
	// Domains listed; Measured the ones whose lookups succeeded (status ok).
	Domains  int `json:"domains"`
	Measured int `json:"measured"`
	// IPv6 and Reachable count measured domains per role (Roles order); All counts those
	// with IPv6 on all four roles; AnyIPv6 those with IPv6 on at least one.
	IPv6      [4]int `json:"ipv6"`
	Reachable [4]int `json:"reachable"`
	All       int    `json:"all"`
	AnyIPv6   int    `json:"any_ipv6"`
	// Unknown counts measured domains with at least one role "unknown".
	Unknown int `json:"unknown"`
	// Broken counts domains with unreachable IPv6 and with a PMTU black hole.
	Unreachable int `json:"unreachable"`
	BlackHole   int `json:"black_hole"`
	// Addresses located here (country and ASN aggregates), by family, and the IPv6 ones
	// that answered.
	V4Addresses        int `json:"v4_addresses"`
	V6Addresses        int `json:"v6_addresses"`
	V6ReachableAddress int `json:"v6_reachable_addresses"`
}

// Percent returns 100*n/d with a zero denominator giving 0.
func Percent(n, d int) float64 {
	if d == 0 {
		return 0
	}
	return 100 * float64(n) / float64(d)
}

// AddressSummary is one address of a run with where it is and who uses it, for the
// country and ASN pages.
type AddressSummary struct {
	IP          string `json:"ip"`
	Family      int    `json:"family"`
	CountryCode string `json:"country_code,omitempty"`
	ASN         uint32 `json:"asn,omitempty"`
	ASOrg       string `json:"as_org,omitempty"`
	City        string `json:"city,omitempty"`
	Reachable   Tri    `json:"reachable"`
	// Domains counts the domains using the address; Domain and Host name the best-ranked.
	Domains int    `json:"domains"`
	Domain  string `json:"domain"`
	Host    string `json:"host"`
	Role    Role   `json:"role"`
}
