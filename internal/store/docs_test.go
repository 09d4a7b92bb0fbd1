package store

import (
	"bytes"
	"encoding/json"
	"maps"
	"net/netip"
	"testing"

	"github.com/v6matrix/v6matrix/internal/probe/dns53"
	"github.com/v6matrix/v6matrix/internal/probe/ping"
	"github.com/v6matrix/v6matrix/internal/result"
)

// marshalDoc is the document's JSON as encoding/json writes it: what v6matrix stored
// before docEncoder wrote it by hand, and what decodeDoc reads.
func marshalDoc(t *testing.T, d *Detail) []byte {
	t.Helper()
	sd := storedDoc{Domain: d.Domain, Hosts: map[string]result.Host{}, Addrs: map[netip.Addr]result.Address{}, NSChecks: d.NSChecks}
	for _, ref := range d.Hosts {
		h, ok := d.HostsByName[ref.Name]
		if !ok {
			continue
		}
		sd.Hosts[ref.Name] = h
		for _, ip := range append(h.V4[:len(h.V4):len(h.V4)], h.V6...) {
			if a, ok := d.Addrs[ip]; ok {
				sd.Addrs[ip] = a
			}
		}
	}
	js, err := json.Marshal(sd)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestDocEncoderJSON: the encoder writes a document's JSON byte for byte as
// json.Marshal does (HTML characters escaped, keys sorted, addresses by their text,
// NSChecks left out when empty, a host or address listed twice once), from its cache
// as from scratch, and an address or host that changed under the same key is encoded
// again.
func TestDocEncoderJSON(t *testing.T) {
	ns4, ns6 := netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("2001:db8::53")
	www6, mapped := netip.MustParseAddr("2001:db8:1::80"), netip.MustParseAddr("::ffff:198.51.100.1")
	hosts := map[string]result.Host{
		"ns1.<dns>&co.example": {Name: "ns1.<dns>&co.example", Status: result.StatusOK, V4: []netip.Addr{ns4}, V6: []netip.Addr{ns6}},
		"www.a.example":        {Name: "www.a.example", Status: result.StatusOK, CNAME: []string{"cdn.example"}, V6: []netip.Addr{www6, ns6}, V4: []netip.Addr{mapped}},
		"mx.a.example":         {Name: "mx.a.example", Status: result.StatusOK, V6: []netip.Addr{netip.MustParseAddr("2001:db8::25")}}, // no address row
	}
	ok := true
	addrs := map[netip.Addr]result.Address{
		ns4:    {IP: ns4, Ping: &ping.Result{Sent: 3, Received: 3}},
		ns6:    {IP: ns6, Class: &result.Class{Valid: true, Type: "low-byte"}, Ping: &ping.Result{Sent: 3}},
		www6:   {IP: www6, Skipped: "opted out <list>"},
		mapped: {IP: mapped},
	}
	a := Detail{Domain: result.Domain{Name: "a.example", Rank: 1, TLD: "example", Status: result.StatusOK,
		Hosts: []result.HostRef{{Role: "ns", Name: "ns1.<dns>&co.example"}, {Role: "www", Name: "www.a.example"},
			{Role: "mx", Name: "mx.a.example"}, {Role: "ntp", Name: "www.a.example"}, {Role: "ns", Name: "missing.example"}}},
		HostsByName: hosts, Addrs: addrs,
		NSChecks: map[netip.Addr]*dns53.Result{ns6: {Rcode: "NOERROR", Authoritative: &ok}, ns4: {Rcode: "REFUSED"}}}
	b := Detail{Domain: result.Domain{Name: "b.example", Rank: 2, TLD: "example", Status: result.StatusOK,
		Hosts: []result.HostRef{{Role: "ns", Name: "ns1.<dns>&co.example"}}},
		HostsByName: hosts, Addrs: addrs, NSChecks: map[netip.Addr]*dns53.Result{}}
	none := Detail{Domain: result.Domain{Name: "c.example", Rank: 3, TLD: "example", Status: result.StatusNXDomain}}

	e := newDocEncoder()
	check := func(name string, d *Detail) {
		t.Helper()
		var got bytes.Buffer
		if err := e.writeJSON(&got, d); err != nil {
			t.Fatal(err)
		}
		if want := marshalDoc(t, d); !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s:\n got %s\nwant %s", name, got.Bytes(), want)
		}
	}
	for _, pass := range []string{"encoded", "cached"} {
		check(pass+" a", &a)
		check(pass+" b", &b)
		check(pass+" c", &none)
	}
	// The name server's address measured again, and its host resolved again.
	changed := maps.Clone(addrs)
	changed[ns4] = result.Address{IP: ns4, Ping: &ping.Result{Sent: 3, Received: 1}}
	hosts2 := maps.Clone(hosts)
	hosts2["ns1.<dns>&co.example"] = result.Host{Name: "ns1.<dns>&co.example", Status: result.StatusOK, V4: []netip.Addr{ns4}}
	b.Addrs, b.HostsByName = changed, hosts2
	check("changed b", &b)

	// Stored and read back, the document is the detail with its own hosts and addresses.
	docs, err := e.encodeAll([]*Detail{&a, &b, &none})
	if err != nil {
		t.Fatal(err)
	}
	back, ok2, err := decodeDoc(docs[1])
	if err != nil || !ok2 || back.Name != "b.example" || len(back.Addrs) != 1 || back.Addrs[ns4].Ping.Received != 1 || len(back.HostsByName) != 1 {
		t.Errorf("decoded b = %+v, %v, %v", back, ok2, err)
	}
}

// TestGenCache: a cache keeps at most two generations of max entries, and what is
// used stays.
func TestGenCache(t *testing.T) {
	c := newGenCache[int, int](2)
	for i := range 5 {
		c.put(i, i*10)
		if _, ok := c.get(0); !ok { // used every time: kept
			t.Fatalf("after %d puts, 0 is gone", i+1)
		}
	}
	if _, ok := c.get(1); ok {
		t.Error("1, never used again, is kept")
	}
	if n := len(c.cur) + len(c.old); n > 4 {
		t.Errorf("%d entries, want at most 4", n)
	}
	var none *genCache[int, int]
	none.put(1, 1)
	if _, ok := none.get(1); ok {
		t.Error("a nil cache keeps")
	}
}
