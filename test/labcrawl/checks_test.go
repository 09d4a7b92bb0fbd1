package labcrawl_test

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/v6matrix/v6matrix/internal/lab"
)

// dnsView is what the scenario's expect states for a domain, in a shape both the scenario
// and domains.jsonl fill.
type dnsView struct {
	Status           string
	SOA              *lab.SOA
	NS, MX, WWW, NTP []hostView
	NullMX           bool
	IPv6             lab.IPv6Summary
	// Issue 9: where the NS hosts came from and how the parent's delegation differs.
	NSSource              string
	ParentOnly, ChildOnly []string
}

type hostView struct {
	Host       string
	Pref       uint16
	CNAME      []string
	IPv4, IPv6 []netip.Addr
}

func sortHosts(hs []hostView) {
	slices.SortFunc(hs, func(a, b hostView) int { return cmp.Or(cmp.Compare(a.Pref, b.Pref), cmp.Compare(a.Host, b.Host)) })
}

func expectedView(e lab.Expect) dnsView {
	v := dnsView{Status: e.Status, SOA: e.SOA, NullMX: e.NullMX, IPv6: e.IPv6, NSSource: e.NSSource,
		ParentOnly: e.ParentOnly, ChildOnly: e.ChildOnly}
	if v.NSSource == "" && len(e.NS) > 0 {
		v.NSSource = "child"
	}
	conv := func(hs []lab.ExpectHost) []hostView {
		var out []hostView
		for _, h := range hs {
			out = append(out, hostView{Host: h.Host, Pref: h.Pref, CNAME: h.CNAME, IPv4: h.IPv4, IPv6: h.IPv6})
		}
		sortHosts(out)
		return out
	}
	v.NS, v.MX, v.WWW, v.NTP = conv(e.NS), conv(e.MX), conv(e.WWW), conv(e.NTP)
	return v
}

func crawledView(d domainDoc) dnsView {
	v := dnsView{Status: d.Status, NullMX: d.NullMX, NSSource: d.NSSource,
		IPv6: lab.IPv6Summary{NS: d.IPv6["ns"], MX: d.IPv6["mx"], WWW: d.IPv6["www"], NTP: d.IPv6["ntp"]}}
	if d.Delegation != nil {
		v.ParentOnly, v.ChildOnly = d.Delegation.ParentOnly, d.Delegation.ChildOnly
	}
	if d.SOA != nil {
		v.SOA = &lab.SOA{MName: d.SOA.MName, RName: d.SOA.RName, Serial: d.SOA.Serial}
	}
	roles := map[string]*[]hostView{"ns": &v.NS, "mx": &v.MX, "www": &v.WWW, "ntp": &v.NTP}
	for _, h := range d.Hosts {
		// A queried name that does not exist (www.nowww.org) is recorded without
		// addresses; the scenario lists only the hosts that resolve.
		if h.Status != "ok" && len(h.Addresses) == 0 {
			continue
		}
		hv := hostView{Host: h.Name, CNAME: h.CNAME}
		if h.Role == "mx" && h.Rank != nil {
			hv.Pref = uint16(*h.Rank)
		}
		for _, a := range h.Addresses {
			if a.Family == 4 {
				hv.IPv4 = append(hv.IPv4, a.IP)
			} else {
				hv.IPv6 = append(hv.IPv6, a.IP)
			}
		}
		slices.SortFunc(hv.IPv4, netip.Addr.Compare)
		slices.SortFunc(hv.IPv6, netip.Addr.Compare)
		if p := roles[h.Role]; p != nil {
			*p = append(*p, hv)
		}
	}
	for _, p := range roles {
		sortHosts(*p)
	}
	return v
}

var cmpAddr = gocmp.Comparer(func(a, b netip.Addr) bool { return a == b })

// checkDNS (issue 3, 8b): every domain's exported DNS results equal the scenario's expect.
func checkDNS(t *testing.T, sc *lab.Scenario, docs map[string]domainDoc) {
	if len(docs) != len(sc.Domains) {
		t.Errorf("domains.jsonl has %d domains, the scenario %d", len(docs), len(sc.Domains))
	}
	for _, d := range sc.Domains {
		t.Run(d.Name, func(t *testing.T) {
			doc, ok := docs[d.Name]
			if !ok {
				t.Fatalf("%s is not in domains.jsonl", d.Name)
			}
			if diff := gocmp.Diff(expectedView(d.Expect), crawledView(doc), cmpAddr, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("%s (%s): crawl differs from the scenario's expect (-expect +crawl):\n%s", d.Name, d.Shows, diff)
			}
		})
	}
}

// checkDNSCSV (issue 9): the CSV files say what domains.jsonl says: ns.csv's ns_source
// (parent for a failed NS query), soa.csv's parent_only and child_only names, and
// ipv6domain.csv's ipv6_unknown empty (every lab lookup answers).
func checkDNSCSV(t *testing.T, r *crawlRun) {
	sc := r.lab.Scenario()
	ns, err := readCSV(r.records, "ns.csv")
	if err != nil {
		t.Fatal(err)
	}
	soa, err := readCSV(r.records, "soa.csv")
	if err != nil {
		t.Fatal(err)
	}
	v6, err := readCSV(r.records, "ipv6domain.csv")
	if err != nil {
		t.Fatal(err)
	}
	sources := map[string][]string{}
	for _, row := range ns.Rows {
		sources[row["domain"]] = append(sources[row["domain"]], row["ns_source"])
	}
	diffs := map[string][2]string{}
	for _, row := range soa.Rows {
		diffs[row["domain"]] = [2]string{row["parent_only"], row["child_only"]}
	}
	for _, row := range v6.Rows {
		if row["ipv6_unknown"] != "" {
			t.Errorf("%s: ipv6_unknown %q, but every lookup of the lab answers", row["domain"], row["ipv6_unknown"])
		}
	}
	for _, d := range sc.Domains {
		want := d.Expect.NSSource
		if want == "" {
			want = "child"
		}
		for _, got := range sources[d.Name] {
			if got != want {
				t.Errorf("%s: ns.csv ns_source %q, want %q", d.Name, got, want)
			}
		}
		if len(d.Expect.NS) > 0 && len(sources[d.Name]) == 0 {
			t.Errorf("%s: no ns.csv row", d.Name)
		}
		if d.Expect.SOA == nil {
			continue
		}
		want2 := [2]string{strings.Join(d.Expect.ParentOnly, " "), strings.Join(d.Expect.ChildOnly, " ")}
		if got := diffs[d.Name]; got != want2 {
			t.Errorf("%s: soa.csv parent_only, child_only %q, want %q", d.Name, got, want2)
		}
	}
}

// checkProbed (RECORDS.md "probed address"): the crawl probes exactly the addresses it
// classifies valid (with --allow-ranges): 6to4 and Teredo ones included, ULA, link-local
// and IPv4-mapped ones never.
func checkProbed(t *testing.T, docs map[string]domainDoc) {
	seen := map[netip.Addr]bool{}
	for _, name := range slices.Sorted(maps.Keys(docs)) {
		for _, h := range docs[name].Hosts {
			for _, a := range h.Addresses {
				if seen[a.IP] {
					continue
				}
				seen[a.IP] = true
				if a.Type == nil {
					t.Errorf("%s (%s %s): no address type", a.IP, name, h.Name)
					continue
				}
				if probed := a.Skipped == ""; probed != a.Type.Valid {
					t.Errorf("%s (%s %s, %s): valid %v but probed %v (skipped: %q)", a.IP, name, h.Name, a.Type.Class,
						a.Type.Valid, probed, a.Skipped)
				}
			}
		}
	}
}

// pingRTTTolerance is how far the crawl's average RTT may be from ping's, in ms.
const pingRTTTolerance = 5.0

// checkProbes (issue 4, 6): per address, the crawl agrees with ping, dig -x, nc, openssl and
// dig @server, and with what the scenario designs.
func checkProbes(t *testing.T, r *crawlRun, tools *toolRuns, targets []*target) {
	tools.short.Wait()
	sc := r.lab.Scenario()
	for _, tg := range targets {
		at := tools.by[tg.Addr]
		doc := tg.Doc
		t.Run(tg.Addr.String(), func(t *testing.T) {
			t.Run("ping", func(t *testing.T) {
				p := at.ping
				if p.Err != nil || doc.Ping == nil {
					t.Fatalf("ping: tool error %v, crawl %+v\n%s", p.Err, doc.Ping, p.Out)
				}
				if doc.Ping.Sent != 5 {
					t.Errorf("crawl sent %d echo requests, want 5", doc.Ping.Sent)
				}
				if doc.Ping.Loss != p.Val.LossPercent {
					t.Errorf("loss: crawl %v%%, ping %v%%\n%s", doc.Ping.Loss, p.Val.LossPercent, p.Out)
				}
				if want := expectLoss(sc, tg.Addr); doc.Ping.Loss != want {
					t.Errorf("loss: crawl %v%%, scenario %v%%", doc.Ping.Loss, want)
				}
				switch a, b := doc.Ping.AvgMillis, p.Val.AvgMillis; {
				case (a == nil) != (b == nil):
					t.Errorf("avg rtt: crawl %v, ping %v\n%s", ptrStr(a), ptrStr(b), p.Out)
				case a != nil && math.Abs(*a-*b) > pingRTTTolerance:
					t.Errorf("avg rtt: crawl %.3f ms, ping %.3f ms (tolerance %v ms)", *a, *b, pingRTTTolerance)
				}
			})
			t.Run("ptr", func(t *testing.T) {
				p := at.ptr
				if p.Err != nil {
					t.Fatalf("dig -x: %v\n%s", p.Err, p.Out)
				}
				want := ""
				if len(p.Val.Names) > 0 {
					want = p.Val.Names[0]
				}
				got := ""
				if doc.PTR != nil {
					got = *doc.PTR
				}
				if doc.PTRStatus != p.Val.Status || got != want {
					t.Errorf("PTR: crawl %s %q, dig -x %s %q\n%s", doc.PTRStatus, got, p.Val.Status, want, p.Out)
				}
			})
			t.Run("tcp", func(t *testing.T) {
				for i, port := range tcpPorts {
					nc := at.tcp[i]
					got := doc.TCP[strconv.Itoa(port)]
					if nc.Err != nil {
						t.Errorf("port %d: nc: %v\n%s", port, nc.Err, nc.Out)
						continue
					}
					if got != nc.Val {
						t.Errorf("port %d: crawl %q, nc %q\n%s", port, got, nc.Val, nc.Out)
					}
					if want := expectTCP(sc, tg.Addr, port); got != want {
						t.Errorf("port %d: crawl %q, scenario %q", port, got, want)
					}
				}
			})
			if at.tls443 != nil {
				t.Run("tls443", func(t *testing.T) {
					checkTLS(t, sc, tg, 443, tg.tlsHost(443), tg.TLS443[tg.tlsHost(443)], *at.tls443, at.tcp[2])
				})
			}
			if at.starttls != nil {
				t.Run("starttls25", func(t *testing.T) {
					checkTLS(t, sc, tg, 25, tg.tlsHost(25), tg.STARTTLS[tg.tlsHost(25)], *at.starttls, at.tcp[0])
				})
			}
			for domain, slot := range at.dns53 {
				check := tg.NS[domain]
				t.Run("dns53 "+domain+" "+check.Host, func(t *testing.T) {
					if slot.Err != nil {
						t.Fatalf("dig @%s: %v\n%s", tg.Addr, slot.Err, slot.Out)
					}
					if check.DNS != slot.Val {
						t.Errorf("crawl %q, dig @%s +norec %s SOA %q\n%s", check.DNS, tg.Addr, domain, slot.Val, slot.Out)
					}
					if want := expectDNS53(sc, check.Host, domain, tg.Addr); check.DNS != want {
						t.Errorf("crawl %q, scenario %q", check.DNS, want)
					}
					if (check.DNS == "authoritative") != (check.Serial != nil) {
						t.Errorf("crawl %q with serial %v: an authoritative answer has a serial, others none", check.DNS, check.Serial)
					}
				})
			}
			if len(tg.NTP) > 0 {
				t.Run("ntp123", func(t *testing.T) {
					_, served := serviceOn(sc, tg.Addr, 123)
					n := doc.NTP
					switch {
					case n == nil:
						t.Errorf("ntp host %v: no NTP measurement", tg.NTP)
					case served && (n.Status != "ok" || n.Stratum == nil || *n.Stratum != 2):
						t.Errorf("NTP served here (stratum 2): crawl %s stratum %v", n.Status, ptrStr(n.Stratum))
					case !served && n.Status == "ok":
						t.Errorf("no NTP server here, the crawl says ok")
					}
				})
			}
		})
	}
}

// checkTLS compares the crawl's TLS on port (443, or STARTTLS on 25) with openssl and the
// scenario's certificate kind.
func checkTLS(t *testing.T, sc *lab.Scenario, tg *target, port int, host string, crawl *tlsDoc, tool res[tlsResult], nc res[string]) {
	if tool.Err != nil {
		t.Fatalf("openssl: %v\n%s", tool.Err, tool.Out)
	}
	if crawl == nil {
		t.Fatalf("%s SNI %s: the crawl has no TLS result on port %d (openssl: %q)", tg.Addr, host, port, tool.Val.Version)
	}
	if crawl.Reachable != (nc.Val == "open") {
		t.Errorf("reachable: crawl %v, nc says %q", crawl.Reachable, nc.Val)
	}
	if !crawl.Reachable {
		return
	}
	if crawl.Version != tool.Val.Version {
		// Behind the lab's IPv6 path-MTU black hole (Packet Too Big dropped), the
		// server's certificate flight is lost; whether a handshake gets through depends
		// on how long it waits for the kernel's retransmissions: openssl waits longer than
		// the crawl's probe. A handshake that timed out after the TCP connect on IPv6 is
		// that case, not a disagreement (the site reports it as a suspected black hole).
		if tg.Addr.Is6() && crawl.Version == "none" && strings.Contains(crawl.Error, "i/o timeout") {
			t.Logf("%s SNI %s: the crawl's handshake timed out (PMTU black hole), openssl got %q later", tg.Addr, host, tool.Val.Version)
		} else {
			t.Errorf("%s SNI %s: version crawl %q, openssl %q (crawl error %q)\n%s", tg.Addr, host, crawl.Version, tool.Val.Version, crawl.Error, tool.Out)
		}
	}
	if s, ok := serviceOn(sc, tg.Addr, port); ok && s.Kind == "tcp" && crawl.Version != "none" {
		t.Errorf("plain TCP on port %d, yet the crawl negotiated %q", port, crawl.Version)
	}
	if crawl.Version == "none" {
		if crawl.CertValid != nil {
			t.Errorf("no TLS session, yet cert_valid %v", *crawl.CertValid)
		}
		return
	}
	if crawl.CertValid == nil || *crawl.CertValid != tool.Val.Verified {
		t.Errorf("%s SNI %s: cert_valid crawl %v, openssl verified %v\n%s", tg.Addr, host, ptrStr(crawl.CertValid), tool.Val.Verified, tool.Out)
	}
	if s, ok := serviceOn(sc, tg.Addr, port); ok && crawl.CertValid != nil && *crawl.CertValid != (s.Cert == "valid") {
		t.Errorf("cert_valid %v, scenario cert %q", *crawl.CertValid, s.Cert)
	}
}

func ptrStr[T any](p *T) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprint(*p)
}
