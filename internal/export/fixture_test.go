package export

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/geoip"
	"github.com/v6matrix/v6matrix/internal/probe/dns53"
	"github.com/v6matrix/v6matrix/internal/probe/ntpprobe"
	"github.com/v6matrix/v6matrix/internal/probe/path"
	"github.com/v6matrix/v6matrix/internal/probe/ping"
	"github.com/v6matrix/v6matrix/internal/probe/ptr"
	"github.com/v6matrix/v6matrix/internal/probe/tcpport"
	"github.com/v6matrix/v6matrix/internal/probe/tlsprobe"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// The test run: alpha.example has one host per role, www dual-stack with 2 IPv4 and
// 1 IPv6, mail with a ULA address that is skipped; beta.example's www has no address.
var (
	ns4, ns6     = ip("192.0.2.53"), ip("2001:db8:1::53")
	mx4, mx6     = ip("198.51.100.25"), ip("2001:db8:2::25")
	mxULA        = ip("fd00::25")
	www4a, www4b = ip("192.0.2.80"), ip("192.0.2.81")
	www6         = ip("2001:db8:1::80")
	ntp4, ntp6   = ip("203.0.113.200"), ip("2001:db8:3::123")
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func ptrTo[T any](v T) *T { return &v }

// domainDNS53 is the dns53 measurement of one domain at one name server address.
func domainDNS53(a netip.Addr, domain string, r *dns53.Result) store.Measurement {
	return store.Measurement{IP: a, Kind: result.KindDNS53, Value: r, Domain: domain}
}

// newStore opens a SQLite store in a temporary directory.
func newStore(t *testing.T) *store.SQLite {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "v6matrix.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// saveRun creates a run holding the test domains, hosts and addresses (no measurement).
func saveRun(t *testing.T, st store.Store) int64 {
	t.Helper()
	ctx := context.Background()
	run, err := st.CreateRun(ctx, store.Run{Started: time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), ListName: "test",
		State: store.RunCrawling})
	if err != nil {
		t.Fatal(err)
	}
	es := []domains.Entry{
		{Rank: 1, Name: "alpha.example", TLD: "example", Suffix: "example", Line: 1},
		{Rank: 2, Name: "beta.example", TLD: "example", Suffix: "example", Line: 2},
	}
	if _, err := st.AddDomains(ctx, run, es); err != nil {
		t.Fatal(err)
	}
	hosts := []result.Host{
		{Name: "ns1.alpha.example", Status: result.StatusOK, V4: []netip.Addr{ns4}, V6: []netip.Addr{ns6}},
		{Name: "mail.alpha.example", Status: result.StatusOK, V4: []netip.Addr{mx4}, V6: []netip.Addr{mxULA, mx6}},
		{Name: "www.alpha.example", Status: result.StatusOK, CNAME: []string{"web.cdn.example"},
			V4: []netip.Addr{www4b, www4a}, V6: []netip.Addr{www6}},
		{Name: "ntp.alpha.example", Status: result.StatusOK, V4: []netip.Addr{ntp4}, V6: []netip.Addr{ntp6}},
		{Name: "www.beta.example", Status: result.StatusNoData},
	}
	var addrs []result.Address
	for i := range hosts {
		hosts[i].Sort()
		for _, a := range append(hosts[i].V4, hosts[i].V6...) {
			valid := a != mxULA
			addrs = append(addrs, result.Address{IP: a, Class: &result.Class{Valid: valid, Type: "native"}})
		}
	}
	b := store.Batch{
		Domains: []result.Domain{
			{Name: "alpha.example", Rank: 1, TLD: "example", Suffix: "example", Status: result.StatusOK, Hosts: []result.HostRef{
				{Role: result.RoleNS, Name: "ns1.alpha.example", Rank: 1},
				{Role: result.RoleMX, Name: "mail.alpha.example", Rank: 10},
				{Role: result.RoleWWW, Name: "www.alpha.example"},
				{Role: result.RoleNTP, Name: "ntp.alpha.example"},
			}},
			{Name: "beta.example", Rank: 2, TLD: "example", Suffix: "example", Status: result.StatusOK, Hosts: []result.HostRef{
				{Role: result.RoleWWW, Name: "www.beta.example"},
			}},
		},
		Hosts:     hosts,
		Addresses: addrs,
	}
	if err := st.Save(ctx, run, b); err != nil {
		t.Fatal(err)
	}
	return run
}

// expiry is a certificate's NotAfter given in a non-UTC zone: the exports write UTC.
var expiry = time.Date(2026, 7, 1, 14, 30, 0, 0, time.FixedZone("CEST", 2*3600))

// measurements returns probe results for the test run, as the probe stage saves them:
// some addresses lack some kinds (not measured) and the ULA address is skipped. The
// GeoIP records come from real lookups in the test databases.
func measurements(t *testing.T) []store.Measurement {
	t.Helper()
	db, err := geoip.OpenFixtures()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	m := func(a netip.Addr, kind string, v any) store.Measurement {
		return store.Measurement{IP: a, Kind: kind, Value: v}
	}
	ms := []store.Measurement{
		m(mxULA, result.KindSkipped, "special-purpose: unique local"),

		m(ns4, result.KindPTR, &ptr.Result{Names: []string{"ns1.alpha.example"}, Status: ptr.StatusOK, Rcode: "NOERROR", RTTMillis: ptrTo(0.8)}),
		m(ns6, result.KindPTR, &ptr.Result{Status: ptr.StatusOK, Rcode: "NOERROR", RTTMillis: ptrTo(0.9)}),
		m(www4a, result.KindPTR, &ptr.Result{Names: []string{"web-a.cdn.example", "www.alpha.example"}, Status: ptr.StatusOK, Rcode: "NOERROR"}),
		m(www4b, result.KindPTR, &ptr.Result{Status: ptr.StatusTimeout}),
		m(www6, result.KindPTR, &ptr.Result{Status: ptr.StatusNXDomain, Rcode: "NXDOMAIN"}),
		m(mx4, result.KindPTR, &ptr.Result{Names: []string{"mail.alpha.example"}, Status: ptr.StatusOK, Rcode: "NOERROR"}),

		m(www4a, result.KindPing, &ping.Result{Sent: 5, Received: 5, MinMillis: ptrTo(1.2346), AvgMillis: ptrTo(2.5),
			MaxMillis: ptrTo(4.0004), StdMillis: ptrTo(0.98765)}),
		m(www4b, result.KindPing, &ping.Result{Sent: 5, LossPercent: 100}),
		m(www6, result.KindPing, &ping.Result{Sent: 5, Received: 4, LossPercent: 20, MinMillis: ptrTo(10.0),
			AvgMillis: ptrTo(12.0), MaxMillis: ptrTo(15.5), StdMillis: ptrTo(2.0)}),
		m(ns4, result.KindPing, &ping.Result{Sent: 5, Received: 5, MinMillis: ptrTo(0.1), AvgMillis: ptrTo(0.2),
			MaxMillis: ptrTo(0.3), StdMillis: ptrTo(0.0)}),

		m(mx4, result.KindTCP25, &tcpport.Result{Port: 25, State: tcpport.StateOpen, ConnectMillis: ptrTo(3.0)}),
		m(mx6, result.KindTCP25, &tcpport.Result{Port: 25, State: tcpport.StateFiltered}),
		m(www4a, result.KindTCP80, &tcpport.Result{Port: 80, State: tcpport.StateOpen, ConnectMillis: ptrTo(1.0)}),
		m(www4b, result.KindTCP80, &tcpport.Result{Port: 80, State: tcpport.StateClosed, ConnectMillis: ptrTo(1.0), Detail: "connection refused"}),
		m(www6, result.KindTCP80, &tcpport.Result{Port: 80, State: tcpport.StateOpen, ConnectMillis: ptrTo(9.0)}),
		m(www4a, result.KindTCP443, &tcpport.Result{Port: 443, State: tcpport.StateOpen, ConnectMillis: ptrTo(1.0)}),
		m(www4b, result.KindTCP443, &tcpport.Result{Port: 443, State: tcpport.StateFiltered}),
		m(www6, result.KindTCP443, &tcpport.Result{Port: 443, State: tcpport.StateUnreachable, Detail: "no route to host"}),

		m(www4a, result.KindTLS443, &tlsprobe.Result{Port: 443, Reachable: true, Version: "TLS1.3",
			Cipher: "TLS_AES_128_GCM_SHA256", CertValid: ptrTo(true), CertExpiry: &expiry}),
		m(www4b, result.KindTLS443, &tlsprobe.Result{Port: 443, ConnectError: "connection timed out"}),
		m(www6, result.KindTLS443, &tlsprobe.Result{Port: 443, Reachable: true, Version: "TLS1.2",
			Cipher: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", CertValid: ptrTo(false), CertExpiry: ptrTo(expiry.AddDate(-1, 0, 0)),
			VerifyError: "x509: certificate has expired or is not yet valid"}),
		// The mail server's IPv4 address also answers on 443: mx rows show STARTTLS only.
		m(mx4, result.KindTLS443, &tlsprobe.Result{Port: 443, Reachable: true, Version: "TLS1.3", CertValid: ptrTo(true), CertExpiry: &expiry}),
		m(mx4, result.KindSTARTTLS, &tlsprobe.Result{Port: 25, Reachable: true, StartTLSOffered: ptrTo(false),
			Version: "none", HandshakeError: "STARTTLS not offered"}),
		m(mx6, result.KindSTARTTLS, &tlsprobe.Result{Port: 25, Reachable: true, StartTLSOffered: ptrTo(true),
			Version: "TLS1.3", Cipher: "TLS_AES_256_GCM_SHA384", CertValid: ptrTo(true), CertExpiry: ptrTo(expiry.AddDate(0, 2, 0))}),

		m(www4a, result.KindPath, &path.Result{Family: 4, PMTUBytes: 1500, Hops: 3, Back: 3, Reached: true,
			HopList: []string{"192.0.2.1", "*", "192.0.2.80"}, Reason: path.ReasonReached}),
		m(www4b, result.KindPath, &path.Result{Family: 4, PMTUBytes: 1500, Reason: path.ReasonMaxHops,
			HopList: []string{"192.0.2.1", "*", "*"}}),
		m(www6, result.KindPath, &path.Result{Family: 6, PMTUBytes: 1280, Hops: 4, Back: 5, Reached: true,
			HopList: []string{"2001:db8:1::1", "2001:db8:ffff::1", "*", "2001:db8:1::80"}, Reason: path.ReasonReached}),

		// The SOA checks are per (domain, address).
		domainDNS53(ns4, "alpha.example", &dns53.Result{Status: dns53.StatusAuthoritative, Rcode: "NOERROR",
			Authoritative: ptrTo(true), SOASerial: ptrTo(uint32(2025030101)), RTTMillis: ptrTo(0.5)}),
		domainDNS53(ns6, "alpha.example", &dns53.Result{Status: dns53.StatusTimeout}),

		m(ntp4, result.KindNTP123, &ntpprobe.Result{Status: ntpprobe.StatusOK, Stratum: ptrTo(2), OffsetMillis: ptrTo(0.4),
			RTTMillis: ptrTo(1.5), Leap: ptrTo(0)}),
		m(ntp6, result.KindNTP123, &ntpprobe.Result{Status: ntpprobe.StatusTimeout}),
	}
	for _, a := range []netip.Addr{ns4, ns6, mx4, mx6, www4a, www4b, www6, ntp4, ntp6} {
		g := db.Lookup(a)
		ms = append(ms, m(a, result.KindGeo, &g))
	}
	return ms
}
