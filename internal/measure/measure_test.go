package measure

import (
	"context"
	"crypto/tls"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/dnssrv"
	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/polite"
	"github.com/v6matrix/v6matrix/internal/probe/dns53"
	"github.com/v6matrix/v6matrix/internal/probe/ntpprobe/ntpserver"
	"github.com/v6matrix/v6matrix/internal/probe/path"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/testcert"
)

// The test host: services on the well-known ports of one loopback address, and a
// second address that the gate refuses, with listeners that count what reaches them.
var (
	hostIP    = netip.MustParseAddr("127.0.77.1")
	refusedIP = netip.MustParseAddr("127.0.77.2")
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the services listen on ports 25, 53, 80, 123 and 443")
	}
}

// seenUA is the User-Agent and Host of the last HTTP request the test web server saw.
var seenUA atomic.Value

// serve starts the services of hostIP: HTTP (accept only) on 80, TLS on 443, DNS on
// 53 authoritative for m.test, NTP on 123; nothing on 25 (closed).
func serve(t *testing.T, ctx context.Context, cert tls.Certificate) {
	t.Helper()
	for _, port := range []string{"80", "443"} {
		ln, err := net.Listen("tcp", net.JoinHostPort(hostIP.String(), port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		if port == "80" {
			go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seenUA.Store(r.Header.Get("User-Agent") + " " + r.Host)
			}))
			continue
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}})
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					if tc, ok := c.(*tls.Conn); ok {
						tc.Handshake()
					}
					time.Sleep(100 * time.Millisecond)
					c.Close()
				}()
			}
		}()
	}
	z, err := dnssrv.ParseZoneString("m.test.", "@ 300 IN SOA ns hostmaster 7 3600 600 86400 60\n@ IN NS ns\nns IN A 127.0.77.1\n")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := dnssrv.Listen(ctx, hostIP.String()+":53", dnssrv.NewAuth(z))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	ntp, err := ntpserver.Listen("udp4", hostIP.String()+":123", ntpserver.Config{Stratum: 2})
	if err != nil {
		t.Fatal(err)
	}
	go ntp.Serve()
	t.Cleanup(func() { ntp.Close() })
}

// trap listens on the refused address and counts every connection and datagram.
func trap(t *testing.T) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	for _, port := range []string{"25", "80", "443"} {
		ln, err := net.Listen("tcp", net.JoinHostPort(refusedIP.String(), port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				n.Add(1)
				c.Close()
			}
		}()
	}
	for _, port := range []string{"53", "123", "33434"} {
		pc, err := net.ListenPacket("udp", net.JoinHostPort(refusedIP.String(), port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pc.Close() })
		go func() {
			buf := make([]byte, 2048)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
				n.Add(1)
			}
		}()
	}
	return &n
}

func TestRunLoopback(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ca := testcert.NewCA(t)
	roots, cert := ca.Pool, ca.Leaf(t, []string{"www.m.test"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	serve(t, ctx, cert)
	trapped := trap(t)
	// A resolver for the PTR queries: it knows the reverse name of hostIP only.
	rz, err := dnssrv.ParseZoneString("77.0.127.in-addr.arpa.", "@ 300 IN SOA ns.m.test. h.m.test. 1 1 1 1 1\n@ IN NS ns.m.test.\n1 IN PTR www.m.test.\n")
	if err != nil {
		t.Fatal(err)
	}
	res, err := dnssrv.Listen(ctx, "127.0.0.1:0", dnssrv.NewAuth(rz))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()

	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "m.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run, _ := st.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "t", State: store.RunCrawling})
	if _, err := st.AddDomains(ctx, run, []domains.Entry{{Rank: 1, Name: "m.test", TLD: "test", Suffix: "test"}}); err != nil {
		t.Fatal(err)
	}
	err = st.Save(ctx, run, withTargets(store.Batch{
		Domains: []result.Domain{{Name: "m.test", Rank: 1, TLD: "test", Suffix: "test", Status: result.StatusOK, Hosts: []result.HostRef{
			{Role: result.RoleNS, Name: "ns.m.test", Rank: 1}, {Role: result.RoleMX, Name: "mail.m.test", Rank: 10},
			{Role: result.RoleWWW, Name: "www.m.test"}, {Role: result.RoleNTP, Name: "ntp.m.test"}}}},
		Hosts: []result.Host{
			{Name: "ns.m.test", Status: result.StatusOK, V4: []netip.Addr{hostIP}},
			{Name: "mail.m.test", Status: result.StatusOK, V4: []netip.Addr{hostIP}},
			{Name: "www.m.test", Status: result.StatusOK, V4: []netip.Addr{hostIP, refusedIP}},
			{Name: "ntp.m.test", Status: result.StatusOK, V4: []netip.Addr{hostIP}},
		},
		Addresses: []result.Address{{IP: hostIP}, {IP: refusedIP}},
	}))
	if err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.Gate, err = polite.NewGate([]netip.Prefix{netip.PrefixFrom(hostIP, 32)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Resolver, cfg.Roots, cfg.EHLOName = res.Addr(), roots, "crawler.m.test"
	cfg.UserAgent = "v6matrix/test (+https://crawler.m.test/)"
	cfg.Polite.AddrGap, cfg.Polite.PortWindow = 20*time.Millisecond, 200*time.Millisecond
	cfg.Ping.Count = 2
	cfg.Path.WaitPerProbe = 300 * time.Millisecond
	var p Progress
	if err := Run(ctx, cfg, st, run, &p); err != nil {
		t.Fatal(err)
	}
	if p.Skipped.Load() != 1 || p.Failed.Load() != 0 || p.Done.Load() != p.Total.Load() {
		t.Errorf("progress: skipped %d failed %d done %d/%d", p.Skipped.Load(), p.Failed.Load(), p.Done.Load(), p.Total.Load())
	}
	if n := trapped.Load(); n != 0 {
		t.Errorf("%d connections or datagrams reached the refused address %s", n, refusedIP)
	}

	var a, refused result.Address
	var nsChecks map[netip.Addr]*dns53.Result
	st.Details(ctx, run, "", func(d store.Detail) error {
		a, refused, nsChecks = d.Addrs[hostIP], d.Addrs[refusedIP], d.NSChecks
		return nil
	})
	if refused.Skipped == "" || refused.Ping != nil || refused.TCP80 != nil {
		t.Errorf("refused address: skipped %q, ping %v, tcp80 %v", refused.Skipped, refused.Ping, refused.TCP80)
	}
	// GeoIP sends nothing: the address that was not probed has it too.
	if refused.Geo == nil {
		t.Errorf("refused address: no GeoIP record")
	}
	checks := []struct {
		name string
		ok   bool
	}{
		{"ptr", a.PTR != nil && len(a.PTR.Names) == 1 && a.PTR.Names[0] == "www.m.test"},
		{"ping", a.Ping != nil && a.Ping.Sent == 2 && a.Ping.Received == 2},
		{"tcp25 closed", a.TCP25 != nil && a.TCP25.State == "closed"},
		{"tcp80 open", a.TCP80 != nil && a.TCP80.State == "open"},
		{"tcp443 open", a.TCP443 != nil && a.TCP443.State == "open"},
		{"tls443", a.TLS443 != nil && a.TLS443.Reachable && a.TLS443.Version == "TLS1.3" && a.TLS443.CertValid != nil && *a.TLS443.CertValid},
		{"starttls25 unreachable", a.STARTTLS != nil && !a.STARTTLS.Reachable},
		{"dns53 of the domain at its name server address", a.DNS53 == nil && nsChecks[hostIP] != nil &&
			nsChecks[hostIP].Status == "authoritative" && len(nsChecks) == 1},
		{"ntp123", a.NTP123 != nil && a.NTP123.Status == "ok" && a.NTP123.Stratum != nil && *a.NTP123.Stratum == 2},
		{"path", a.Path != nil && a.Path.Reached && a.Path.Hops == 1 && a.Path.Reason == path.ReasonReached},
		{"geo (no database)", a.Geo != nil && a.Geo.CountryCode == ""},
		{"http80", a.HTTP80 != nil && a.HTTP80.Status == "ok" && a.HTTP80.Code != nil && *a.HTTP80.Code == 200},
		{"user agent", seenUA.Load() == "v6matrix/test (+https://crawler.m.test/) www.m.test"},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: not as expected; address %+v", c.name, a)
		}
	}

	// A second run of the stage finds everything measured and sends nothing.
	var p2 Progress
	if err := Run(ctx, cfg, st, run, &p2); err != nil {
		t.Fatal(err)
	}
	if p2.Total.Load() != 0 {
		t.Errorf("resumed stage ran %d probes, want 0", p2.Total.Load())
	}
}

// TestRunWindow checks that a window much smaller than the run still measures every
// address once: the stage refills the scheduler as addresses finish; and that a run
// saved without its targets gets them.
func TestRunWindow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "w.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run, _ := st.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "w", State: store.RunCrawling})
	const n = 300
	var b store.Batch
	var es []domains.Entry
	for i := range n {
		ip := netip.AddrFrom4([4]byte{127, 2, byte(i >> 8), byte(i)})
		name := "d" + strconv.Itoa(i) + ".test"
		es = append(es, domains.Entry{Rank: i + 1, Name: name, TLD: "test"})
		b.Domains = append(b.Domains, result.Domain{Name: name, Rank: i + 1, TLD: "test", Status: result.StatusOK,
			Hosts: []result.HostRef{{Role: result.RoleWWW, Name: "www." + name}}})
		b.Hosts = append(b.Hosts, result.Host{Name: "www." + name, Status: result.StatusOK, V4: []netip.Addr{ip}})
	}
	if _, err := st.AddDomains(ctx, run, es); err != nil {
		t.Fatal(err)
	}
	// Saved without targets, as a run from before the store kept them: the stage
	// backfills them from the domains.
	if err := st.Save(ctx, run, b); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Kinds = map[string]bool{result.KindTCP80: true, result.KindTCP443: true, result.KindGeo: true}
	cfg.Window = 7
	cfg.Gate, _ = polite.NewGate([]netip.Prefix{netip.MustParsePrefix("127.2.0.0/16")}, nil)
	cfg.Polite.AddrGap, cfg.Polite.NetGap, cfg.Polite.PortWindow, cfg.Polite.Rate = 0, 0, 0, math.Inf(1)
	var p Progress
	if err := Run(ctx, cfg, st, run, &p); err != nil {
		t.Fatal(err)
	}
	if p.Total.Load() != 3*n || p.Done.Load() != 3*n || p.Failed.Load() != 0 {
		t.Errorf("progress: total %d done %d failed %d, want %d each and none failed", p.Total.Load(), p.Done.Load(), p.Failed.Load(), 3*n)
	}
	measured, err := st.Measured(ctx, run, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		ip := netip.AddrFrom4([4]byte{127, 2, byte(i >> 8), byte(i)})
		if m := measured[ip]; !m[result.KindTCP80] || !m[result.KindTCP443] || !m[result.KindGeo] {
			t.Fatalf("%s measured %v, want tcp80, tcp443 and geo", ip, m)
		}
	}
}

// withTargets adds to b the probe targets of its domains, as the DNS stage does.
func withTargets(b store.Batch) store.Batch {
	for _, d := range b.Domains {
		ts, ns := store.TargetsOf(d, b.Hosts)
		b.Targets = append(b.Targets, ts...)
		b.NSTargets = append(b.NSTargets, ns...)
	}
	return b
}
