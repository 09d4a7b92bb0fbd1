package export

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// TestIPv6Unknown: a role whose hosts have no IPv6 address because their AAAA lookup
// failed is "unknown", not "no IPv6"; a NODATA or NXDOMAIN answer is a real "no".
func TestIPv6Unknown(t *testing.T) {
	v4 := []netip.Addr{netip.MustParseAddr("192.0.2.1")}
	v6 := netip.MustParseAddr("2001:db8::1")
	d := &store.Detail{
		Domain: result.Domain{Name: "a.example", TLD: "example", Rank: 1, Status: result.StatusOK, Hosts: []result.HostRef{
			{Role: result.RoleNS, Name: "ns.a.example", Rank: 1},
			{Role: result.RoleMX, Name: "mx.a.example", Rank: 10},
			{Role: result.RoleWWW, Name: "www.a.example"},
			{Role: result.RoleNTP, Name: "ntp.a.example"},
		}},
		HostsByName: map[string]result.Host{
			"ns.a.example":  {V4: v4, AStatus: result.StatusOK, AAAAStatus: result.StatusTimeout},
			"mx.a.example":  {V4: v4, AStatus: result.StatusOK, AAAAStatus: result.StatusNoData},
			"www.a.example": {V4: v4, AStatus: result.StatusOK, AAAAStatus: result.StatusServFail},
			"ntp.a.example": {V4: v4, V6: []netip.Addr{v6}, AStatus: result.StatusOK, AAAAStatus: result.StatusOK},
		},
		Addrs: map[netip.Addr]result.Address{v6: {IP: v6, Class: &result.Class{Valid: true, Type: "native"}}},
	}
	var got [][]string
	ipv6domainRows(d, func(cells ...string) { got = append(got, cells) })
	want := [][]string{{"a.example", "0", "0", "0", "1", "example", "1", "ok", "ns www"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ipv6domain rows (-want +got):\n%s", diff)
	}
	doc := domainJSON(1, d)
	if diff := cmp.Diff([]string{"ns", "www"}, doc.IPv6Unknown); diff != "" {
		t.Errorf("domains.jsonl ipv6_unknown (-want +got):\n%s", diff)
	}
}
