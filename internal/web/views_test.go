package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/geoip"
	"github.com/v6matrix/v6matrix/internal/probe/path"
	"github.com/v6matrix/v6matrix/internal/probe/ping"
	"github.com/v6matrix/v6matrix/internal/probe/ptr"
	"github.com/v6matrix/v6matrix/internal/probe/tcpport"
	"github.com/v6matrix/v6matrix/internal/probe/tlsprobe"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/synthrun"
)

// TestAddrView: each measurement of an address as the domain page words it.
func TestAddrView(t *testing.T) {
	lo, avg, hi := 1.25, 2.5, 10.04
	asn, valid, invalid := uint32(64500), true, false
	full := result.Address{IP: netip.MustParseAddr("2001:db8::1"),
		Class: &result.Class{Valid: true, Type: "slaac", PrefixID: "2001:db8::/32", IID: "0211:22ff:fe33:4455"},
		PTR:   &ptr.Result{Names: []string{"a.example", "b.example"}},
		Geo:   &geoip.Record{CountryCode: "DE", City: "Berlin", ASN: &asn, ASOrg: "Example AS"},
		Ping:  &ping.Result{Sent: 3, Received: 2, MinMillis: &lo, AvgMillis: &avg, MaxMillis: &hi},
		TCP25: &tcpport.Result{Port: 25, State: "filtered"}, TCP443: &tcpport.Result{Port: 443, State: "open"},
		TLS443:   &tlsprobe.Result{Port: 443, Reachable: true, Version: "TLS1.3", CertValid: &valid},
		STARTTLS: &tlsprobe.Result{Port: 25, Reachable: true, Version: "TLS1.2", CertValid: &invalid},
		Path:     &path.Result{Family: 6, PMTUBytes: 1500, Hops: 3, Back: 4, HopList: []string{"2001:db8::a", "*", "2001:db8::1"}, Reached: true},
	}
	for _, tc := range []struct {
		name string
		role result.Role
		a    result.Address
		want addrView
	}{
		{"every measurement", result.RoleWWW, full, addrView{IP: "2001:db8::1", Type: "slaac, IID 0211:22ff:fe33:4455, 2001:db8::/32",
			PTR: "a.example b.example", Geo: &geoView{CC: "DE", City: "Berlin", ASN: "64500", ASOrg: "Example AS"},
			Ping: "2/3: 1.2 / 2.5 / 10.0", TCP: "filtered / – / open", TLS: "TLS1.3, certificate valid",
			Path: "MTU 1500, 3 hops, back 4", HopList: "2001:db8::a * 2001:db8::1"}},
		{"mail: STARTTLS", result.RoleMX, full, addrView{IP: "2001:db8::1", Type: "slaac, IID 0211:22ff:fe33:4455, 2001:db8::/32",
			PTR: "a.example b.example", Geo: &geoView{CC: "DE", City: "Berlin", ASN: "64500", ASOrg: "Example AS"},
			Ping: "2/3: 1.2 / 2.5 / 10.0", TCP: "filtered / – / open", TLS: "TLS1.2, certificate invalid",
			Path: "MTU 1500, 3 hops, back 4", HopList: "2001:db8::a * 2001:db8::1"}},
		{"nothing measured", result.RoleNS, result.Address{IP: netip.MustParseAddr("198.18.0.1")},
			addrView{IP: "198.18.0.1", TCP: "– / – / –"}},
		{"skipped, not routable, unanswered", result.RoleWWW, result.Address{IP: netip.MustParseAddr("2001:db8::2"),
			Class: &result.Class{Type: "documentation"}, Skipped: "special-purpose", Ping: &ping.Result{Sent: 3},
			TLS443: &tlsprobe.Result{Port: 443}, Path: &path.Result{PMTUBytes: 1280, Reason: "no reply"}},
			addrView{IP: "2001:db8::2", Type: "documentation (not routable)", Skipped: "special-purpose", Ping: "0/3",
				TCP: "– / – / –", TLS: "unreachable", Path: "MTU 1280, no reply", Broken: result.BrokenUnreachable}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := addrViewOf(tc.role, "www.example", &tc.a)
			got.Broken = tc.want.Broken // summary.Broken's own tests cover it
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestDomainFromDocument: a domain's page from its stored document, with the host
// sections the server keeps from earlier pages, is byte for byte the page that a new
// server renders from the domain's tables.
func TestDomainFromDocument(t *testing.T) {
	f := getFixture(t)
	ctx := t.Context()
	warm, err := New(Config{Store: f.st})
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for k := 1; k <= fixtureDomains; k += 37 {
		name := synthName(k)
		req := httptest.NewRequest(http.MethodGet, "/domain/"+name, nil)
		req.SetPathValue("name", name)
		dd, err := warm.domainData(req, "latest")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.st.DomainDoc(ctx, dd.run.ID, name); err != nil {
			t.Fatalf("%s has no document: %v", name, err)
		}
		for _, ref := range dd.detail.Hosts {
			if e := warm.cache.get("host " + strconv.FormatInt(dd.run.ID, 10) + " " + string(ref.Role) + " " +
				strconv.Itoa(ref.Rank) + " " + ref.Name); e != nil {
				kept++
			}
		}
		cold, err := New(Config{Store: f.st})
		if err != nil {
			t.Fatal(err)
		}
		tables := dd
		if tables.detail, err = f.st.Domain(ctx, dd.run.ID, "", name); err != nil {
			t.Fatal(err)
		}
		a, b := httptest.NewRecorder(), httptest.NewRecorder()
		warm.renderDomain(a, req, &dd)
		cold.renderDomain(b, req, &tables)
		if a.Code != http.StatusOK || a.Body.String() != b.Body.String() {
			t.Errorf("%s: the page from the document (%d) differs from the page from the tables:\n%s",
				name, a.Code, cmp.Diff(b.Body.String(), a.Body.String()))
		}
	}
	if kept == 0 {
		t.Error("no host section was kept from an earlier page: the test compared no kept section")
	}
}

// synthName is the name of the k-th (1-based) domain of a synthetic run.
func synthName(k int) string { return fmt.Sprintf("d%07d.%s", k, synthrun.SuffixOf(k-1)) }
