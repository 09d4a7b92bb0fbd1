// Package result holds the typed records of a run: domains, their hosts and the hosts'
// addresses. The crawl fills them, the store keeps them, and the exports and the website
// are views of them (shared/RECORDS.md is the contract they serve).
package result

import (
	"net/netip"
	"slices"

	"github.com/v6matrix/v6matrix/internal/geoip"
	"github.com/v6matrix/v6matrix/internal/probe/dns53"
	"github.com/v6matrix/v6matrix/internal/probe/httpprobe"
	"github.com/v6matrix/v6matrix/internal/probe/ntpprobe"
	"github.com/v6matrix/v6matrix/internal/probe/path"
	"github.com/v6matrix/v6matrix/internal/probe/ping"
	"github.com/v6matrix/v6matrix/internal/probe/ptr"
	"github.com/v6matrix/v6matrix/internal/probe/tcpport"
	"github.com/v6matrix/v6matrix/internal/probe/tlsprobe"
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
	// NSSource says where the NS hosts came from: NSChild (the domain's own NS
	// answer) or NSParent (its own NS query failed; the parent's delegation). Empty
	// when the domain has no NS hosts.
	NSSource string
	// Delegation is what the parent zone publishes for the domain; nil when not asked.
	Delegation *Delegation
}

// Where a domain's NS hosts came from (Domain.NSSource).
const (
	NSChild  = "child"
	NSParent = "parent"
)

// Delegation is the parent zone's delegation of a domain, asked without recursion of
// the parent zone's servers: the NS names and the glue addresses it gives.
type Delegation struct {
	Status Status     `json:"status"` // ok, nxdomain (not delegated), timeout, ...
	Zone   string     `json:"zone"`   // the parent zone asked
	Server netip.Addr `json:"server"` // the parent server that answered (or was last asked)
	NS     []string   `json:"ns,omitempty"`
	Glue   []GlueAddr `json:"glue,omitempty"`
	// ParentOnly and ChildOnly are the NS names only the parent or only the domain's
	// own NS answer lists, when both answered and differ.
	ParentOnly []string `json:"parent_only,omitempty"`
	ChildOnly  []string `json:"child_only,omitempty"`
}

// GlueAddr is one glue address of a delegation.
type GlueAddr struct {
	Name string     `json:"name"`
	IP   netip.Addr `json:"ip"`
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
	// AStatus and AAAAStatus are the outcomes of the two lookups: a timeout or a
	// SERVFAIL is not "no address". AAAAStatus is empty when AAAA was not asked (the
	// A lookup said the name does not exist); both are empty in stores older than them.
	AStatus, AAAAStatus Status
}

// IPv6Known reports whether the host's lack of IPv6 addresses is an answer (NODATA,
// NXDOMAIN) rather than a failed lookup. A host with an IPv6 address knows it.
func (h *Host) IPv6Known() bool {
	if len(h.V6) > 0 {
		return true
	}
	switch h.AAAAStatus {
	case StatusOK, StatusNoData, StatusNXDomain:
		return true
	case "":
		// Not asked: known when A said the name does not exist (or an old store).
		return h.AStatus != StatusTimeout && h.AStatus != StatusServFail && h.AStatus != StatusRefused && h.AStatus != StatusError
	}
	return false
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
	// Skipped says why the address was not probed (special-purpose, opted out); empty
	// when it was, or when the probe stage has not run.
	Skipped  string
	PTR      *ptr.Result
	Geo      *geoip.Record
	Ping     *ping.Result
	TCP25    *tcpport.Result
	TCP80    *tcpport.Result
	TCP443   *tcpport.Result
	TLS443   *tlsprobe.Result // TLS on 443, for www hosts (SNI = the host name)
	STARTTLS *tlsprobe.Result // STARTTLS on 25, for mx hosts
	DNS53    *dns53.Result    // the SOA query, for ns hosts
	NTP123   *ntpprobe.Result // the RFC 5905 client query, for ntp hosts
	Path     *path.Result
	HTTP80   *httpprobe.Result // GET / with the www host name and our User-Agent
}

// TCP returns the TCP result of a port (25, 80 or 443), nil when not measured.
func (a *Address) TCP(port int) *tcpport.Result {
	switch port {
	case 25:
		return a.TCP25
	case 80:
		return a.TCP80
	case 443:
		return a.TCP443
	}
	return nil
}

// Measurement returns a pointer to the field of a kind, for decoding stored data; nil
// for an unknown kind.
func (a *Address) Measurement(kind string) any {
	switch kind {
	case KindPTR:
		return &a.PTR
	case KindGeo:
		return &a.Geo
	case KindPing:
		return &a.Ping
	case KindTCP25:
		return &a.TCP25
	case KindTCP80:
		return &a.TCP80
	case KindTCP443:
		return &a.TCP443
	case KindTLS443:
		return &a.TLS443
	case KindSTARTTLS:
		return &a.STARTTLS
	case KindDNS53:
		return &a.DNS53
	case KindNTP123:
		return &a.NTP123
	case KindPath:
		return &a.Path
	case KindHTTP80:
		return &a.HTTP80
	case KindSkipped:
		return &a.Skipped
	}
	return nil
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

// Measurement kinds, as stored: one per probe family (and port).
const (
	KindPTR      = "ptr"
	KindGeo      = "geo"
	KindPing     = "ping"
	KindTCP25    = "tcp25"
	KindTCP80    = "tcp80"
	KindTCP443   = "tcp443"
	KindTLS443   = "tls443"
	KindSTARTTLS = "starttls25"
	KindDNS53    = "dns53"
	KindNTP123   = "ntp123"
	KindPath     = "path"
	KindHTTP80   = "http80"  // an HTTP request on 80, for www hosts (JSON Lines only)
	KindSkipped  = "skipped" // the address was not probed: why (special-purpose, opted out)
)

// Kinds lists every measurement kind.
var Kinds = []string{KindPTR, KindGeo, KindPing, KindTCP25, KindTCP80, KindTCP443, KindTLS443, KindSTARTTLS,
	KindDNS53, KindNTP123, KindPath, KindHTTP80, KindSkipped}
