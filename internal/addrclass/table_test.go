package addrclass

import (
	"bytes"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const header = "uid,class,tag,operator,country,prefix,description\n"

func mustParse(t testing.TB, s string) *Table {
	t.Helper()
	table, err := ParseTable(strings.NewReader(s), "test.csv")
	if err != nil {
		t.Fatalf("ParseTable: %v", err)
	}
	return table
}

func TestParseTableErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "t.csv:1: empty table: no header row"},
		{"only comments", "# nothing\n", "t.csv:1: empty table: no header row"},
		{"bad header", "# c\nuid,class\n", `t.csv:2: header must be "uid,class,tag,operator,country,prefix,description"`},
		{"too few fields", header + "U0001,6to4,x,y,,2002::/16\n", "t.csv:2: 6 fields, want 7"},
		{"bad uid", header + "X0001,6to4,x,y,,2002::/16,d\n", `t.csv:2: uid "X0001": want U followed by 4 upper-case hex digits`},
		{"lower-case uid", header + "U00a1,6to4,x,y,,2002::/16,d\n", `t.csv:2: uid "U00a1": want U followed by 4 upper-case hex digits`},
		{"bad class", header + "U0001,6 to 4,x,y,,2002::/16,d\n", `t.csv:2: class "6 to 4": want lower-case letters, digits and '-'`},
		{"bad prefix", header + "U0001,6to4,x,y,,2002::,d\n", `t.csv:2: prefix: netip.ParsePrefix("2002::"): no '/'`},
		{"ipv4 prefix", header + "U0001,6to4,x,y,,192.0.2.0/24,d\n", "t.csv:2: prefix 192.0.2.0/24: not an IPv6 prefix"},
		{"host bits", header + "U0001,6to4,x,y,,2002::1/16,d\n", "t.csv:2: prefix 2002::1/16: host bits set (did you mean 2002::/16?)"},
		{"duplicate uid", header + "U0001,6to4,x,y,,2002::/16,d\n#\nU0001,teredo,x,y,,2001::/32,d\n",
			"t.csv:4: duplicate uid U0001 (first on line 2)"},
		{"duplicate prefix", header + "U0001,6to4,x,y,,2002::/16,d\nU0002,6to4,x,y,,2002::/16,d\n",
			"t.csv:3: duplicate prefix 2002::/16 (first on line 2)"},
		{"bad quoting", header + "U0001,6to4,x,\"y,,2002::/16,d\n", `t.csv:2: extraneous or missing " in quoted-field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTable(strings.NewReader(tt.in), "t.csv")
			if err == nil {
				t.Fatalf("ParseTable: no error, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error\n got %q\nwant %q", err.Error(), tt.want)
			}
		})
	}
}

func TestParseTableLongestMatch(t *testing.T) {
	table := mustParse(t, "# comment\n"+header+
		"U0001,6to4,6to4,op,,2002::/16,wide\n"+
		"U4002,6rd,narrow,\"Op, Inc.\",GB,2002:c000::/24,narrow\n")
	tests := []struct {
		name, addr, uid string
		ok              bool
	}{
		{"narrow", "2002:c000:201::1", "U4002", true},
		{"wide", "2002:c100::1", "U0001", true},
		{"outside", "2001:db8::1", "", false},
		{"ipv4", "192.0.2.1", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := table.Lookup(netip.MustParseAddr(tt.addr))
			if ok != tt.ok || e.UID != tt.uid {
				t.Errorf("Lookup(%s) = %q, %v; want %q, %v", tt.addr, e.UID, ok, tt.uid, tt.ok)
			}
		})
	}
	want := Entry{UID: "U4002", Class: "6rd", Tag: "narrow", Operator: "Op, Inc.", Country: "GB",
		Prefix: netip.MustParsePrefix("2002:c000::/24"), Description: "narrow", Line: 4}
	if diff := cmp.Diff(want, table.Entries()[1], cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("entry mismatch (-want +got):\n%s", diff)
	}
}

// TestDefaultTable checks the embedded table: it parses, keeps every row of
// the shared historic table and adds the documented U4xxx entries.
func TestDefaultTable(t *testing.T) {
	table := DefaultTable()
	ids := map[string]Entry{}
	for _, e := range table.Entries() {
		ids[e.UID] = e
	}
	shared, err := os.ReadFile("../../../shared/prefix-table.csv")
	if err != nil {
		t.Logf("shared table not found (%v); checking the embedded copy only", err)
	} else {
		historic, err := ParseTable(bytes.NewReader(shared), "shared")
		if err != nil {
			t.Fatalf("shared table: %v", err)
		}
		for _, h := range historic.Entries() {
			got, ok := ids[h.UID]
			h.Line, got.Line = 0, 0
			if !ok || got != h {
				t.Errorf("historic entry %s changed or missing: got %+v want %+v", h.UID, got, h)
			}
		}
	}
	for uid, prefix := range map[string]string{
		"U4000": "64:ff9b::/96", "U4001": "64:ff9b:1::/48", "U4020": "2001:470::/32",
		"U0001": "2002::/16", "U3000": "2001::/32",
	} {
		if got := ids[uid].Prefix.String(); got != prefix {
			t.Errorf("%s prefix = %q, want %q", uid, got, prefix)
		}
	}
}
