package resolve

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

// TestTrimPositive checks which answers lose their authority and additional sections
// before unpacking, and that the answer section reads the same.
func TestTrimPositive(t *testing.T) {
	rr := func(s string) dns.RR {
		r, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		name    string
		answer  []dns.RR
		ns      []dns.RR
		trimmed bool
	}{
		{"positive with NS", []dns.RR{rr("www.d.test. 60 A 192.0.2.1")},
			[]dns.RR{rr("d.test. 60 NS ns1.d.test."), rr("d.test. 60 NS ns2.d.test.")}, true},
		{"CNAME then SOA", []dns.RR{rr("www.d.test. 60 CNAME cdn.test.")},
			[]dns.RR{rr("test. 60 SOA ns.test. h.test. 1 2 3 4 5")}, false},
		{"negative", nil, []dns.RR{rr("d.test. 60 SOA ns.d.test. h.d.test. 1 2 3 4 5")}, false},
		{"referral", nil, []dns.RR{rr("d.test. 60 NS ns1.d.test.")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := new(dns.Msg)
			m.SetQuestion("www.d.test.", dns.TypeA)
			m.Response, m.Answer, m.Ns = true, tc.answer, tc.ns
			m.Extra = []dns.RR{rr("ns1.d.test. 60 A 192.0.2.53")}
			m.SetEdns0(1232, false)
			p, err := m.Pack()
			if err != nil {
				t.Fatal(err)
			}
			got := new(dns.Msg)
			if err := got.Unpack(trimPositive(p)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(rrText(m.Answer), rrText(got.Answer)); diff != "" {
				t.Errorf("answer (-want +got):\n%s", diff)
			}
			if trimmed := len(got.Ns) == 0 && len(got.Extra) == 0; trimmed != tc.trimmed {
				t.Errorf("authority %v, additional %v: trimmed %v, want %v", got.Ns, got.Extra, trimmed, tc.trimmed)
			}
			if !tc.trimmed && len(got.Ns) != len(tc.ns) {
				t.Errorf("authority %v, want %v", got.Ns, tc.ns)
			}
		})
	}
	for _, p := range [][]byte{nil, {0, 1}, make([]byte, 12), {0, 0, 0x81, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0xc0}} {
		trimPositive(p) // short or broken packets are left to Unpack
	}
}

func rrText(rrs []dns.RR) []string {
	var out []string
	for _, r := range rrs {
		out = append(out, r.String())
	}
	return out
}
