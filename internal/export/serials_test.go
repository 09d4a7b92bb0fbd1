package export

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/probe/dns53"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// TestSerialsDiffer: name servers of one domain that answer different SOA serials are
// flagged in soa.csv and domains.jsonl; a server without an answer does not count.
func TestSerialsDiffer(t *testing.T) {
	a, b, c := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("192.0.2.3")
	serial := func(v uint32) *uint32 { return &v }
	d := &store.Detail{
		Domain: result.Domain{Name: "s.example", Status: result.StatusOK, SOA: &result.SOA{MName: "ns1.s.example",
			Serial: 7, Total: 3}},
		NSChecks: map[netip.Addr]*dns53.Result{
			a: {Status: dns53.StatusAuthoritative, SOASerial: serial(7)},
			b: {Status: dns53.StatusAuthoritative, SOASerial: serial(6)},
			c: {Status: dns53.StatusTimeout},
		},
	}
	var got [][]string
	soaRows(d, func(cells ...string) { got = append(got, cells) })
	if len(got) != 1 || got[0][13] != "1" {
		t.Errorf("soa.csv rows %q, want serials_differ 1", got)
	}
	doc := domainJSON(1, d)
	if diff := cmp.Diff([]uint32{6, 7}, doc.NSSerials); diff != "" || !doc.SerialsDiffer {
		t.Errorf("domains.jsonl ns_serials (-want +got):\n%s, serials_differ %v", diff, doc.SerialsDiffer)
	}
	delete(d.NSChecks, b)
	got = nil
	soaRows(d, func(cells ...string) { got = append(got, cells) })
	if got[0][13] != "0" {
		t.Errorf("one serial: serials_differ %q, want 0", got[0][13])
	}
}
