// Package result holds the typed records of a run: domains, their hosts and the hosts'
// addresses. The crawl fills them, the store keeps them, and the exports and the website
// are views of them (shared/RECORDS.md is the contract they serve).
package result

import (
	"net/netip"
	"slices"
)

// Status is the outcome of a DNS lookup, stored with the result (not an error).
type Status string

// The outcomes of a domain or host lookup.
const (
	StatusOK        Status = "ok"
	StatusNXDomain  Status = "nxdomain"
	StatusNoData    Status = "nodata" // the name exists but has no record of the type (hosts only)
	StatusServFail  Status = "servfail"
	StatusTimeout   Status = "timeout"
	StatusRefused   Status = "refused"
	StatusExcluded  Status = "excluded" // opted out: never queried
	StatusCNAMELoop Status = "cname-loop"
	StatusCNAMELong Status = "cname-too-long"
	StatusError     Status = "error" // anything else (malformed answer, FORMERR, NOTIMP...)
)

// Role is the part a host plays for a domain (the `type` column).
type Role string

// The roles of RECORDS.md, in export order.
const (
	RoleNS  Role = "ns"
	RoleMX  Role = "mx"
	RoleWWW Role = "www"
	RoleNTP Role = "ntp"
)

// Roles lists the roles in export order.
var Roles = []Role{RoleNS, RoleMX, RoleWWW, RoleNTP}

// Domain is one domain of a run's list with what the crawl found for it.
type Domain struct {
	Name   string
	Rank   int
	TLD    string
	Suffix string
	Status Status
	Error  string // detail for StatusError and friends, empty otherwise
	SOA    *SOA   // nil when no SOA was found
	NullMX bool   // the domain publishes RFC 7505 "0 ." and so accepts no mail
	Hosts  []HostRef
}

// SOA is the domain's start of authority with the NS-derived columns of soa.csv.
type SOA struct {
	MName, RName                    string
	Serial                          uint32
	Refresh, Retry, Expire, Minimum uint32
	PrimaryByRank                   string // the rank-1 NS
	PrimaryInhouse                  bool   // PrimaryByRank lies inside the domain
	Total                           int    // number of NS names
}

// HostRef links a domain to one of its hosts in a role.
type HostRef struct {
	Role Role
	Name string
	Rank int // mx: preference; ns: 1 for the SOA MNAME when in the set, then lexical; else 0
}

// Host is a name looked up once per run with all its addresses.
type Host struct {
	Name   string
	Status Status
	CNAME  []string // the chain followed from Name, in order (targets only)
	V4, V6 []netip.Addr
}

// Sort puts the addresses of each family in numeric order (the CSV pairing relies on it).
func (h *Host) Sort() {
	slices.SortFunc(h.V4, netip.Addr.Compare)
	slices.SortFunc(h.V6, netip.Addr.Compare)
}

// Address is one unique address of a run with what was measured about it. Measurements
// are pointers: nil means not measured.
type Address struct {
	IP    netip.Addr
	Class *Class
}

// Family returns 4 or 6.
func (a Address) Family() int {
	if a.IP.Is4() {
		return 4
	}
	return 6
}

// Class is the address type (RECORDS.md ipv6type): validity, prefix id, class and
// interface-id class.
type Class struct {
	Valid    bool   `json:"valid"`
	PrefixID string `json:"prefixid"`
	Type     string `json:"class"`
	IID      string `json:"iid,omitempty"`
}
