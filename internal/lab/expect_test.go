package lab

import (
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/miekg/dns"
)

// vantageResolver asks the lab's resolver from inside the vantage.
type vantageResolver struct {
	t *testing.T
	l *Lab
}

// query returns the resolver's answer; a timeout is returned as an error.
func (r vantageResolver) query(name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.SetEdns0(1232, false)
	c := &dns.Client{Timeout: 8 * time.Second}
	var resp *dns.Msg
	// Exchange dials in the calling goroutine, which RunInVantage keeps in the vantage.
	err := r.l.RunInVantage(func() (err error) {
		resp, _, err = c.Exchange(m, r.l.ResolverAddr().String())
		return err
	})
	return resp, err
}

// host resolves name's A and AAAA records into an ExpectHost (CNAME chain included).
func (r vantageResolver) host(name string) (ExpectHost, bool) {
	h := ExpectHost{Host: name}
	found := false
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		resp, err := r.query(name, qt)
		if err != nil {
			r.t.Fatalf("resolve %s %s: %v", name, dns.TypeToString[qt], err)
		}
		var chain []string
		for _, rr := range resp.Answer {
			switch rr := rr.(type) {
			case *dns.CNAME:
				chain = append(chain, strings.TrimSuffix(rr.Target, "."))
			case *dns.A:
				h.IPv4 = append(h.IPv4, netip.AddrFrom4([4]byte(rr.A.To4())))
				found = true
			case *dns.AAAA:
				h.IPv6 = append(h.IPv6, netip.AddrFrom16([16]byte(rr.AAAA.To16())))
				found = true
			}
		}
		h.CNAME = chain
	}
	slices.SortFunc(h.IPv4, netip.Addr.Compare)
	slices.SortFunc(h.IPv6, netip.Addr.Compare)
	return h, found
}

// summary is what the test compares per domain.
type summary struct {
	Status string
	SOA    *SOA
	NS     []ExpectHost
	MX     []ExpectHost
	NullMX bool
	WWW    []ExpectHost
	NTP    []ExpectHost
	IPv6   IPv6Summary
}

// TestScenarioExpectationsResolve checks, for every domain of the default scenario, that the
// lab's DNS gives exactly what the scenario says a correct crawl must report.
func TestScenarioExpectationsResolve(t *testing.T) {
	t.Parallel()
	l := labForTest(t)
	r := vantageResolver{t, l}
	allow := l.Scenario().AllowRanges
	for _, d := range l.Scenario().Domains {
		t.Run(d.Name, func(t *testing.T) {
			t.Parallel()
			r := vantageResolver{t, r.l}
			want := summary{Status: d.Expect.Status, SOA: d.Expect.SOA, NS: d.Expect.NS, MX: d.Expect.MX,
				NullMX: d.Expect.NullMX, WWW: d.Expect.WWW, NTP: d.Expect.NTP, IPv6: d.Expect.IPv6}
			got := r.domain(d.Name, allow)
			if d.Expect.NSSource == "parent" {
				// The resolver fails for the domain: its NS hosts are the parent's
				// delegation, asked without recursion of the TLD's server.
				got.NS = r.parentNS(d.Name)
			}
			opts := cmp.Options{
				cmpopts.EquateEmpty(),
				cmpopts.IgnoreFields(ExpectHost{}, "Set", "Addrs"),
				cmpopts.SortSlices(func(a, b ExpectHost) bool { return a.Host < b.Host }),
				cmpopts.EquateComparable(netip.Addr{}),
			}
			if diff := cmp.Diff(want, got, opts); diff != "" {
				t.Errorf("%s: %s\nlab DNS differs from the scenario's expectation (-want +got):\n%s", d.Name, d.Shows, diff)
			}
		})
	}
}

// parentNS asks the domain's TLD server for its delegation (recursion not desired) and
// resolves the NS hosts it names.
func (r vantageResolver) parentNS(name string) []ExpectHost {
	sc := r.l.Scenario()
	var server netip.Addr
	for _, ns := range sc.Nameservers {
		if ns.Name == sc.TLDs[tldOf(name)][0] {
			server = sc.Set(ns.Set)[0]
		}
	}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeNS)
	m.RecursionDesired = false
	c := &dns.Client{Timeout: 5 * time.Second}
	var resp *dns.Msg
	err := r.l.RunInVantage(func() (err error) {
		resp, _, err = c.Exchange(m, netip.AddrPortFrom(server, 53).String())
		return err
	})
	if err != nil {
		r.t.Fatalf("NS %s at %s: %v", name, server, err)
	}
	var out []ExpectHost
	for _, rr := range resp.Ns {
		if ns, ok := rr.(*dns.NS); ok {
			h, _ := r.host(strings.TrimSuffix(ns.Ns, "."))
			out = append(out, h)
		}
	}
	return out
}

// domain resolves what a crawl would report for the domain.
func (r vantageResolver) domain(name string, allow []netip.Prefix) summary {
	resp, err := r.query(name, dns.TypeSOA)
	var s summary
	switch {
	case err != nil:
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return summary{Status: StatusTimeout}
		}
		r.t.Fatalf("SOA %s: %v", name, err)
	case resp.Rcode == dns.RcodeNameError:
		return summary{Status: StatusNXDomain}
	case resp.Rcode == dns.RcodeServerFailure:
		return summary{Status: StatusServFail}
	case resp.Rcode != dns.RcodeSuccess:
		return summary{Status: dns.RcodeToString[resp.Rcode]}
	}
	s.Status = StatusOK
	for _, rr := range resp.Answer {
		if soa, ok := rr.(*dns.SOA); ok {
			s.SOA = &SOA{MName: strings.TrimSuffix(soa.Ns, "."), RName: strings.TrimSuffix(soa.Mbox, "."), Serial: soa.Serial}
		}
	}
	resp, err = r.query(name, dns.TypeNS)
	if err != nil {
		r.t.Fatalf("NS %s: %v", name, err)
	}
	for _, rr := range resp.Answer {
		if ns, ok := rr.(*dns.NS); ok {
			h, _ := r.host(strings.TrimSuffix(ns.Ns, "."))
			s.NS = append(s.NS, h)
		}
	}
	resp, err = r.query(name, dns.TypeMX)
	if err != nil {
		r.t.Fatalf("MX %s: %v", name, err)
	}
	for _, rr := range resp.Answer {
		if mx, ok := rr.(*dns.MX); ok {
			if mx.Mx == "." && mx.Preference == 0 {
				s.NullMX = true
				continue
			}
			h, _ := r.host(strings.TrimSuffix(mx.Mx, "."))
			h.Pref = mx.Preference
			s.MX = append(s.MX, h)
		}
	}
	if h, ok := r.host("www." + name); ok {
		s.WWW = append(s.WWW, h)
	}
	for _, label := range []string{"ntp", "time"} {
		if h, ok := r.host(label + "." + name); ok {
			s.NTP = append(s.NTP, h)
		}
	}
	anyValid := func(hs []ExpectHost) bool {
		return slices.ContainsFunc(hs, func(h ExpectHost) bool { return slices.ContainsFunc(h.IPv6, validFor(allow)) })
	}
	s.IPv6 = IPv6Summary{NS: anyValid(s.NS), MX: anyValid(s.MX), WWW: anyValid(s.WWW), NTP: anyValid(s.NTP)}
	return s
}

// validFor is RECORDS.md's IPv6 validity for the lab's data: inside an allowed range, or a
// global unicast address that is not ULA, link-local or IPv4-mapped (6to4 and Teredo count).
func validFor(allow []netip.Prefix) func(netip.Addr) bool {
	return func(a netip.Addr) bool {
		if a.Is4In6() || a.IsLinkLocalUnicast() || a.IsPrivate() || !a.IsGlobalUnicast() {
			return false
		}
		for _, p := range allow {
			if p.Contains(a) {
				return true
			}
		}
		return !netip.MustParsePrefix("2001:db8::/32").Contains(a)
	}
}

func TestValidFor(t *testing.T) {
	valid := validFor([]netip.Prefix{netip.MustParsePrefix("2001:db8::/32")})
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"2001:db8:a::80", true}, {"2002:c633:6450::1", true}, {"2001:0:c633:6401:8000:f227:39cc:9baf", true},
		{"fd00:6d:6d::80", false}, {"fe80::80", false}, {"::ffff:198.51.100.80", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			if got := valid(netip.MustParseAddr(tc.addr)); got != tc.want {
				t.Errorf("valid(%s) = %v, want %v", tc.addr, got, tc.want)
			}
		})
	}
}
