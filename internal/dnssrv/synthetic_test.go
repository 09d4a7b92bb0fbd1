package dnssrv

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"
)

func TestSyntheticData(t *testing.T) {
	const n = 10000
	v4 := netip.MustParsePrefix("198.18.0.0/15")
	v6 := netip.MustParsePrefix("2001:db8::/32")
	nsHosts := map[string]bool{}
	var dual, cname, nullMX, noMX, twoMX, ntp int
	for i := 1; i <= n; i++ {
		rrs := Synthetic("com", i)
		if diff := cmp.Diff(rrStrings(rrs), rrStrings(Synthetic("COM.", i))); diff != "" {
			t.Fatalf("d%d not deterministic (-first +second):\n%s", i, diff)
		}
		apex := "d" + strconv.Itoa(i) + ".com."
		var mx, ns int
		for _, rr := range rrs {
			if !dns.IsSubDomain(apex, rr.Header().Name) {
				t.Fatalf("d%d: record %s outside the domain", i, rr)
			}
			switch rr := rr.(type) {
			case *dns.A:
				if a, _ := netip.AddrFromSlice(rr.A.To4()); !v4.Contains(a) {
					t.Fatalf("d%d: %s outside %s", i, rr, v4)
				}
			case *dns.AAAA:
				if a, _ := netip.AddrFromSlice(rr.AAAA); !v6.Contains(a) {
					t.Fatalf("d%d: %s outside %s", i, rr, v6)
				}
				if rr.Hdr.Name == "www."+apex {
					dual++
				}
			case *dns.CNAME:
				cname++
			case *dns.MX:
				mx++
				if rr.Mx == "." {
					nullMX++
				}
			case *dns.NS:
				ns++
				nsHosts[rr.Ns] = true
			}
			if rr.Header().Name == "ntp."+apex && rr.Header().Rrtype == dns.TypeA {
				ntp++
			}
		}
		switch {
		case mx == 0:
			noMX++
		case mx == 2:
			twoMX++
		}
		if ns != 2 || rrs[0].Header().Rrtype != dns.TypeSOA {
			t.Fatalf("d%d: %d NS, first record %s", i, ns, rrs[0])
		}
	}
	got := map[string]int{"dual www (of 9000 non-CNAME)": dual / 100, "cname": cname, "null MX": nullMX, "no MX": noMX, "two MX": twoMX / 100, "ntp": ntp}
	want := map[string]int{"dual www (of 9000 non-CNAME)": 36, "cname": n / 10, "null MX": n / 50, "no MX": n / 20, "two MX": 46, "ntp": n / 10}
	// Hashed choices: within a percent of their expected share.
	for k, w := range want {
		if g := got[k]; g < w*97/100-1 || g > w*103/100+1 {
			t.Errorf("%s: %d, want about %d", k, g, w)
		}
	}
	if len(nsHosts) < 350 || len(nsHosts) > 400 {
		t.Errorf("%d distinct NS hosts, want 350..400", len(nsHosts))
	}
	hosts := SyntheticHosts("com")
	for _, rr := range hosts {
		if !strings.HasSuffix(rr.Header().Name, ".com.") {
			t.Errorf("host record %s outside the TLD", rr)
		}
	}
	if len(hosts) != 520*3/2 {
		t.Errorf("%d host records, want %d", len(hosts), 520*3/2)
	}
}
