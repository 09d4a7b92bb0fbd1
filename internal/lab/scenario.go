package lab

import (
	"bytes"
	_ "embed"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed default.yaml
var defaultScenario []byte

// Scenario is a lab description: the network (nodes and links), the servers, the DNS data and,
// per domain, what it demonstrates and what a correct crawl must report. It is loaded from
// YAML; DefaultScenario returns the one that ships with the program.
type Scenario struct {
	// Name and Description say what the scenario is for.
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	// AllowRanges are the prefixes a crawl of the lab passes as --allow-ranges.
	AllowRanges []netip.Prefix `yaml:"allow_ranges"`
	// Vantage is the node where crawls run (and where the resolver listens).
	Vantage string `yaml:"vantage"`
	// Resolver is the address the recursive resolver listens on, inside the vantage.
	Resolver netip.AddrPort `yaml:"resolver"`
	// Nodes are the namespaces: the vantage, routers and server hosts.
	Nodes []Node `yaml:"nodes"`
	// Links join nodes: a veth pair (two ends) or a bridge in one node.
	Links []Link `yaml:"links"`
	// AddrSets name groups of addresses that hosts and expectations refer to.
	AddrSets map[string]AddrSet `yaml:"addrsets"`
	// Services are the servers the lab runs on host addresses (not DNS).
	Services []Service `yaml:"services"`
	// Nameservers are the authoritative servers; their zones follow from Root, TLDs,
	// Reverse and Domains.
	Nameservers []Nameserver `yaml:"nameservers"`
	// Root lists the name servers of the root zone.
	Root []string `yaml:"root"`
	// TLDs maps a top-level domain to its name servers.
	TLDs map[string][]string `yaml:"tlds"`
	// Reverse describes the reverse (PTR) zones.
	Reverse Reverse `yaml:"reverse"`
	// Domains are the crawled domains, in rank order.
	Domains []Domain `yaml:"domains"`
}

// Node is one network namespace.
type Node struct {
	// Name is the node's short name; the namespace is <prefix><name>.
	Name string `yaml:"name"`
	// Role is "vantage", "router" or "host".
	Role string `yaml:"role"`
	// Shows says what the node demonstrates.
	Shows string `yaml:"shows"`
	// Loopback are extra addresses (prefix form) put on lo and routed to this node.
	Loopback []netip.Prefix `yaml:"loopback"`
	// Faults are the node's misbehaviours (see Fault* constants).
	Faults NodeFaults `yaml:"faults"`
}

// NodeFaults are the designed misbehaviours of one node.
type NodeFaults struct {
	// DropEcho ignores ICMP and ICMPv6 echo requests.
	DropEcho bool `yaml:"drop_echo"`
	// DropTimeExceeded drops the ICMP/ICMPv6 time-exceeded messages the node sends.
	DropTimeExceeded bool `yaml:"drop_time_exceeded"`
	// DropPTB drops the ICMPv6 Packet Too Big messages the node sends whose MTU is listed
	// (0 = all of them): a PMTU black hole.
	DropPTB []int `yaml:"drop_ptb"`
	// FilterTCP drops incoming TCP segments to these ports (they look filtered).
	FilterTCP []int `yaml:"filter_tcp"`
	// Blackhole are addresses the node (a router) discards silently when forwarding to
	// them, after answering the probes whose hop limit expires on it: a target that
	// drops everything.
	Blackhole []netip.Addr `yaml:"blackhole"`
	// Unreachable are addresses the node (a router) answers with ICMP unreachable.
	Unreachable []netip.Addr `yaml:"unreachable"`
}

// Link is a layer-2 link: two ends joined by a veth pair, or a bridge inside Bridge's node
// with every other end attached by a veth.
type Link struct {
	Name string `yaml:"name"`
	// MTU of every interface on the link.
	MTU int `yaml:"mtu"`
	// Bridge names the node that holds the bridge; empty for a point-to-point link.
	Bridge string `yaml:"bridge"`
	// Shows says what the link demonstrates.
	Shows string `yaml:"shows"`
	Ends  []End  `yaml:"ends"`
}

// End is one node's attachment to a link with its addresses in prefix form.
type End struct {
	Node  string         `yaml:"node"`
	Addrs []netip.Prefix `yaml:"addrs"`
}

// AddrSet is a named group of addresses with an optional PTR name.
type AddrSet struct {
	Addrs []netip.Addr `yaml:"addrs"`
	// PTR is the reverse name of every address of the set; empty means no PTR record.
	PTR string `yaml:"ptr"`
}

// Service is a server the lab runs on the addresses of an address set.
type Service struct {
	// Kind is "http", "https", "smtp", "ntp" or "tcp" (accepts and says nothing).
	Kind string `yaml:"kind"`
	// Set names the address set to listen on.
	Set string `yaml:"set"`
	// Port overrides the kind's usual port.
	Port int `yaml:"port"`
	// Cert is the HTTPS/STARTTLS certificate: "valid", "expired" or "wrongname".
	Cert string `yaml:"cert"`
	// BodyBytes is the size of the HTTP body (a large one shows a PMTU black hole).
	BodyBytes int `yaml:"body_bytes"`
}

// Nameserver is one authoritative server name with its addresses.
type Nameserver struct {
	Name string `yaml:"name"`
	// Set names the address set it listens on (and its A/AAAA records).
	Set string `yaml:"set"`
	// Fault is "" (answers), "drop" (never answers), "servfail", or "v4only" (listens on its
	// IPv4 addresses only though it has AAAA records).
	Fault string `yaml:"fault"`
	// Delay holds every answer back this long (a slow server).
	Delay time.Duration `yaml:"delay"`
}

// Reverse describes the PTR zones and who serves them.
type Reverse struct {
	Zones       []string `yaml:"zones"`
	Nameservers []string `yaml:"nameservers"`
}

// Domain is one crawled domain: its DNS data and what a correct crawl reports.
type Domain struct {
	Name string `yaml:"name"`
	// Shows says what the domain demonstrates.
	Shows string `yaml:"shows"`
	// Delegated false leaves the domain out of its TLD zone (NXDOMAIN).
	Delegated *bool `yaml:"delegated"`
	// NS are the domain's name servers.
	NS []string `yaml:"ns"`
	// ParentNS, when set, is the NS set the parent zone's delegation lists instead of NS
	// (a parent/child mismatch).
	ParentNS []string `yaml:"parent_ns"`
	// Lame are name servers of NS (or ParentNS) that do not load the zone: they refuse
	// it (REFUSED), as a server does for a zone it does not serve.
	Lame []string `yaml:"lame"`
	// MX are the mail exchangers; host "." with preference 0 is a null MX.
	MX []MX `yaml:"mx"`
	// Hosts maps a relative name (www, mail, ntp, @) to an address set.
	Hosts map[string]string `yaml:"hosts"`
	// Records are extra zone-file lines (relative names allowed).
	Records []string `yaml:"records"`
	// SOA overrides the generated SOA fields.
	SOA SOA `yaml:"soa"`
	// Expect is what a correct crawl reports for the domain.
	Expect Expect `yaml:"expect"`
}

// MX is one mail exchanger.
type MX struct {
	Pref uint16 `yaml:"pref"`
	Host string `yaml:"host"`
}

// SOA holds the SOA fields a scenario can set.
type SOA struct {
	MName  string `yaml:"mname"`
	RName  string `yaml:"rname"`
	Serial uint32 `yaml:"serial"`
}

// IsDelegated reports whether the domain appears in its TLD zone.
func (d *Domain) IsDelegated() bool { return d.Delegated == nil || *d.Delegated }

// LoadScenario reads and validates a scenario file.
func LoadScenario(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load scenario: %w", err)
	}
	s, err := ParseScenario(b)
	if err != nil {
		return nil, fmt.Errorf("load scenario %s: %w", path, err)
	}
	return s, nil
}

// DefaultScenario returns the scenario that ships with the program.
func DefaultScenario() *Scenario {
	s, err := ParseScenario(defaultScenario)
	if err != nil {
		// The embedded file is tested; failing here is a build defect.
		panic(fmt.Sprintf("default lab scenario: %v", err))
	}
	return s
}

// DefaultScenarioYAML returns the text of the default scenario.
func DefaultScenarioYAML() []byte { return bytes.Clone(defaultScenario) }

// ParseScenario decodes and validates a scenario (unknown fields are errors).
func ParseScenario(b []byte) (*Scenario, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var s Scenario
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("parse scenario: %w", err)
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// DomainList returns the scenario's domains as the crawler's input list: "rank,domain" lines.
func (s *Scenario) DomainList() []byte {
	var b bytes.Buffer
	for i, d := range s.Domains {
		fmt.Fprintf(&b, "%d,%s\n", i+1, d.Name)
	}
	return b.Bytes()
}

// Domain returns the named domain, or nil.
func (s *Scenario) Domain(name string) *Domain {
	for i := range s.Domains {
		if s.Domains[i].Name == name {
			return &s.Domains[i]
		}
	}
	return nil
}

// Node returns the named node, or nil.
func (s *Scenario) Node(name string) *Node {
	for i := range s.Nodes {
		if s.Nodes[i].Name == name {
			return &s.Nodes[i]
		}
	}
	return nil
}

// Set returns the addresses of an address set (nil when unknown).
func (s *Scenario) Set(name string) []netip.Addr { return s.AddrSets[name].Addrs }

// AllowRangesArg returns AllowRanges as a crawl's --allow-ranges value (comma separated).
func (s *Scenario) AllowRangesArg() string {
	parts := make([]string, len(s.AllowRanges))
	for i, p := range s.AllowRanges {
		parts[i] = p.String()
	}
	return strings.Join(parts, ",")
}
