package lab

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/v6matrix/v6matrix/internal/dnssrv"
)

func TestDefaultScenarioLoadsAndZonesParse(t *testing.T) {
	s := DefaultScenario()
	if n := len(s.Domains); n < 40 {
		t.Errorf("default scenario has %d domains, want at least 40", n)
	}
	zones, err := s.Zones()
	if err != nil {
		t.Fatalf("Zones: %v", err)
	}
	origins := map[string]bool{}
	for _, z := range zones {
		if _, err := dnssrv.ParseZoneString(z.Origin, z.Text); err != nil {
			t.Errorf("zone %s does not parse: %v\n%s", z.Origin, err, z.Text)
		}
		origins[z.Origin] = true
	}
	for _, want := range []string{".", "uk.", "com.", "net.", "org.", "alpha.uk.", "beta.co.uk.", "8.b.d.0.1.0.0.2.ip6.arpa."} {
		if !origins[want] {
			t.Errorf("zone %s is missing", want)
		}
	}
	if origins["missing.com."] {
		t.Errorf("undelegated missing.com has a zone")
	}
}

func TestDomainList(t *testing.T) {
	s := DefaultScenario()
	lines := strings.Split(strings.TrimSpace(string(s.DomainList())), "\n")
	if diff := cmp.Diff([]string{"1,alpha.uk", "2,dnshost.net"}, lines[:2]); diff != "" {
		t.Errorf("DomainList head (-want +got):\n%s", diff)
	}
	if len(lines) != len(s.Domains) {
		t.Errorf("DomainList has %d lines, want %d", len(lines), len(s.Domains))
	}
}

func TestParseScenarioRejects(t *testing.T) {
	base := `
vantage: v
resolver: 127.0.0.53:53
nodes: [{name: v, role: vantage}]
root: [ns.example]
nameservers: [{name: ns.example, set: s}]
addrsets: {s: {addrs: [192.0.2.1]}}
`
	tests := []struct {
		name, extra, want string
	}{
		{"unknown field", "colour: blue\n", "field colour not found"},
		{"minimal scenario is valid", "", ""},
		{"link to unknown node", "links: [{name: l, mtu: 1500, ends: [{node: v}, {node: w}]}]\n", `link l: node "w" does not exist`},
		{"mtu too small", "links: [{name: l, mtu: 1000, ends: [{node: v}, {node: v}]}]\n", "link l: mtu 1000 is outside 1280-9000"},
		{"unknown set", "services: [{kind: http, set: nope}]\n", `service http: unknown set "nope"`},
		{"bad status", "tlds: {uk: [ns.example]}\ndomains: [{name: a.uk, ns: [ns.example], expect: {status: fine}}]\n",
			`domain a.uk: expect.status "fine" is not ok, nxdomain, servfail or timeout`},
		{"undefined name server", "tlds: {uk: [ns.other]}\n", `tld uk: name server "ns.other" is not in nameservers`},
		{"lame server not listed", "tlds: {uk: [ns.example]}\ndomains: [{name: a.uk, ns: [ns.example], lame: [ns.x], expect: {status: ok}}]\n",
			`domain a.uk: lame name server "ns.x" is not in ns or parent_ns`},
		{"undefined parent_ns", "tlds: {uk: [ns.example]}\ndomains: [{name: a.uk, ns: [ns.example], parent_ns: [ns.x], expect: {status: ok}}]\n",
			`domain a.uk parent_ns: name server "ns.x" is not in nameservers`},
		{"bad ns_source", "tlds: {uk: [ns.example]}\ndomains: [{name: a.uk, ns: [ns.example], expect: {status: ok, ns_source: both}}]\n",
			`domain a.uk: expect.ns_source "both" is not child or parent`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario([]byte(base + tc.extra))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("ParseScenario: %v, want success", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("ParseScenario: error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
