// Package synthrun writes a synthetic finished run straight into a store, through the
// same Store calls the crawl uses: a list of n domains over realistic TLDs, shared
// name-server and mail providers, web hosts, time servers, and per-address
// measurements (GeoIP, ping, TCP, path). The website's tests and its load benchmark
// read it. Every address lies in the documentation and benchmarking ranges
// (2001:db8::/32, 198.18.0.0/15): the data is never probed, and nothing is sent.
package synthrun

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/geoip"
	"github.com/v6matrix/v6matrix/internal/probe/path"
	"github.com/v6matrix/v6matrix/internal/probe/ping"
	"github.com/v6matrix/v6matrix/internal/probe/tcpport"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// Config sizes a synthetic run.
type Config struct {
	Domains int
	// Seed makes the run reproducible; runs with other seeds differ a little in which
	// domains have IPv6 (as two months of a real list do).
	Seed uint64
	// V6Boost adds to every IPv6 share (in percentage points), for a later "month".
	V6Boost float64
	Started time.Time
}

// tldShare is a TLD, the public suffix its domains get, and its weight.
type tldShare struct {
	tld, suffix string
	weight      int
}

// tlds are the TLDs with their weights (roughly a popularity list's shares).
var tlds = []tldShare{
	{"com", "com", 450}, {"net", "net", 50}, {"org", "org", 50}, {"de", "de", 45}, {"uk", "co.uk", 40},
	{"ru", "ru", 35}, {"jp", "co.jp", 25}, {"br", "com.br", 25}, {"fr", "fr", 20}, {"it", "it", 20},
	{"nl", "nl", 18}, {"au", "com.au", 15}, {"in", "in", 15}, {"pl", "pl", 15}, {"io", "io", 15},
	{"cn", "cn", 15}, {"es", "es", 12}, {"ca", "ca", 12}, {"ch", "ch", 10}, {"se", "se", 10},
	{"be", "be", 8}, {"cz", "cz", 8}, {"at", "at", 8}, {"dk", "dk", 7}, {"no", "no", 6},
	{"fi", "fi", 5}, {"gr", "gr", 5}, {"pt", "pt", 5}, {"ie", "ie", 4}, {"nz", "co.nz", 4},
}

// countries are where synthetic addresses are located, with weights.
var countries = []struct {
	cc     string
	weight int
}{{"US", 400}, {"DE", 90}, {"NL", 50}, {"GB", 45}, {"FR", 45}, {"RU", 40}, {"JP", 35}, {"CN", 35},
	{"BR", 25}, {"CA", 20}, {"IN", 20}, {"AU", 15}, {"PL", 15}, {"IT", 15}, {"ES", 12}, {"SE", 10},
	{"CH", 10}, {"SG", 10}, {"KR", 10}, {"ZA", 5}, {"AR", 5}, {"MX", 5}, {"NG", 3}, {"KE", 2}}

const (
	nsProviders   = 2000
	mxProviders   = 1000
	webAddrs4     = 60000
	webAddrs6     = 40000
	ntpProviders  = 200
	saveBatch     = 2000
	measuresBatch = 5000
)

// Fill creates a run of cfg.Domains synthetic domains in st, finished and summarised
// by the caller (summary.Build), and returns its id.
func Fill(ctx context.Context, st store.Store, cfg Config) (int64, error) {
	if cfg.Domains <= 0 {
		return 0, fmt.Errorf("synthetic run: want at least one domain, not %d", cfg.Domains)
	}
	if cfg.Started.IsZero() {
		cfg.Started = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	}
	id, err := st.CreateRun(ctx, store.Run{Started: cfg.Started, ListName: fmt.Sprintf("synthetic-%d", cfg.Domains),
		Options: `{"synthetic":true}`, Vantage: "synthetic", State: store.RunLoading})
	if err != nil {
		return 0, err
	}
	g := &gen{rnd: rand.New(rand.NewPCG(cfg.Seed, 0x76366d6174726978)), cfg: cfg, seen: map[netip.Addr]bool{}, hosts: map[string]bool{}}
	var es []domains.Entry
	for i := 0; i < cfg.Domains; i++ {
		t := tldOf(i)
		es = append(es, domains.Entry{Rank: i + 1, Name: fmt.Sprintf("d%07d.%s", i+1, t.suffix), TLD: t.tld, Suffix: t.suffix, Line: i + 1})
		if len(es) == saveBatch || i == cfg.Domains-1 {
			if _, err := st.AddDomains(ctx, id, es); err != nil {
				return 0, err
			}
			if err := g.save(ctx, st, id, es); err != nil {
				return 0, err
			}
			es = es[:0]
		}
	}
	if err := g.flush(ctx, st, id); err != nil {
		return 0, err
	}
	r, err := st.GetRun(ctx, id)
	if err != nil {
		return 0, err
	}
	r.State, r.Loaded, r.Finished = store.RunDone, true, cfg.Started.Add(time.Duration(cfg.Domains)*10*time.Millisecond)
	return id, st.UpdateRun(ctx, r)
}

// SuffixOf returns the public suffix of the i-th (0-based) synthetic domain, so that
// benchmarks can name any domain of a run: d%07d.<suffix> with i+1.
func SuffixOf(i int) string { return tldOf(i).suffix }

// tldOf returns the TLD of the i-th (0-based) synthetic domain.
func tldOf(i int) tldShare {
	total := 0
	for _, t := range tlds {
		total += t.weight
	}
	return tlds[pick(i, total, func(k int) int { return tlds[k].weight }, len(tlds))]
}

// pick spreads i over weighted buckets deterministically (a low-discrepancy walk).
func pick(i, total int, weight func(int) int, n int) int {
	x := (i * 7919) % total
	for k := 0; k < n; k++ {
		if x < weight(k) {
			return k
		}
		x -= weight(k)
	}
	return n - 1
}

type gen struct {
	rnd   *rand.Rand
	cfg   Config
	seen  map[netip.Addr]bool // addresses saved (and measured) already
	hosts map[string]bool     // hosts saved already
	ms    []store.Measurement
}

func (g *gen) chance(pct float64) bool { return g.rnd.Float64()*100 < pct+g.cfg.V6Boost }

// save writes the DNS results of a batch of domains.
func (g *gen) save(ctx context.Context, st store.Store, run int64, es []domains.Entry) error {
	var b store.Batch
	for _, e := range es {
		d := result.Domain{Name: e.Name, Rank: e.Rank, TLD: e.TLD, Suffix: e.Suffix, Status: result.StatusOK}
		switch x := g.rnd.IntN(100); {
		case x < 2:
			d.Status = result.StatusNXDomain
		case x < 4:
			d.Status = result.StatusServFail
		case x < 5:
			d.Status = result.StatusTimeout
		}
		if d.Status == result.StatusOK {
			g.hostsOf(&d, &b)
		}
		b.Domains = append(b.Domains, d)
	}
	if err := st.Save(ctx, run, b); err != nil {
		return err
	}
	if len(g.ms) >= measuresBatch {
		return g.flush(ctx, st, run)
	}
	return nil
}

func (g *gen) flush(ctx context.Context, st store.Store, run int64) error {
	if len(g.ms) == 0 {
		return nil
	}
	err := st.SaveMeasurements(ctx, run, g.ms)
	g.ms = g.ms[:0]
	return err
}

// hostsOf gives a domain its NS, MX, www and ntp hosts.
func (g *gen) hostsOf(d *result.Domain, b *store.Batch) {
	p := g.rnd.IntN(nsProviders)
	for k := 1; k <= 2; k++ {
		name := fmt.Sprintf("ns%d.dns%04d.net", k, p)
		d.Hosts = append(d.Hosts, result.HostRef{Role: result.RoleNS, Name: name, Rank: k})
		g.host(b, name, uint32(p*2+k), p%10 < 6, 99)
	}
	if g.rnd.IntN(100) < 75 {
		m := g.rnd.IntN(mxProviders)
		name := fmt.Sprintf("mx.mail%04d.net", m)
		d.Hosts = append(d.Hosts, result.HostRef{Role: result.RoleMX, Name: name, Rank: 10})
		g.host(b, name, uint32(10000+m), m%10 < 4, 97)
	}
	www := "www." + d.Name
	d.Hosts = append(d.Hosts, result.HostRef{Role: result.RoleWWW, Name: www})
	w := g.rnd.IntN(webAddrs4)
	g.host(b, www, uint32(20000+w), g.chance(45), 90)
	if g.rnd.IntN(100) < 8 {
		n := g.rnd.IntN(ntpProviders)
		name := fmt.Sprintf("ntp%03d.time.net", n)
		d.Hosts = append(d.Hosts, result.HostRef{Role: result.RoleNTP, Name: name})
		g.host(b, name, uint32(90000+n), n%10 < 3, 95)
	}
}

// host adds a host (once per run) with a v4 address and, when v6, a v6 one; slot picks
// the addresses, so that hosts share them as on the Internet.
func (g *gen) host(b *store.Batch, name string, slot uint32, v6 bool, reachPct int) {
	if g.hosts[name] {
		return
	}
	g.hosts[name] = true
	h := result.Host{Name: name, Status: result.StatusOK}
	v4 := netip.AddrFrom4([4]byte{198, 18 + byte(slot>>16&1), byte(slot >> 8), byte(slot)})
	h.V4 = []netip.Addr{v4}
	g.addr(b, v4, slot, reachPct)
	if v6 {
		a := [16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(slot % webAddrs6 >> 16), 0, 0, 0, 0, 0, 0, byte(slot >> 24), byte(slot >> 16), byte(slot >> 8), byte(slot)}
		ip := netip.AddrFrom16(a)
		h.V6 = []netip.Addr{ip}
		g.addr(b, ip, slot, reachPct-5)
	}
	b.Hosts = append(b.Hosts, h)
}

// addr adds an address (once per run) with its class and measurements.
func (g *gen) addr(b *store.Batch, ip netip.Addr, slot uint32, reachPct int) {
	if g.seen[ip] {
		return
	}
	g.seen[ip] = true
	a := result.Address{IP: ip, Class: &result.Class{Valid: true, Type: "native", PrefixID: "synthetic"}}
	if ip.Is4() {
		a.Class = &result.Class{Valid: true, Type: "ipv4", PrefixID: "synthetic"}
	}
	b.Addresses = append(b.Addresses, a)
	total := 0
	for _, c := range countries {
		total += c.weight
	}
	c := countries[pick(int(slot), total, func(k int) int { return countries[k].weight }, len(countries))]
	asn := uint32(64500 + slot%500)
	lon, lat := float64(int(slot%360))-180, float64(int(slot%140))-70
	g.ms = append(g.ms, store.Measurement{IP: ip, Kind: result.KindGeo, Value: &geoip.Record{ASN: &asn,
		ASOrg: fmt.Sprintf("Synthetic Networks %d", asn), City: "Synth City", CountryCode: c.cc, Lon: &lon, Lat: &lat}})
	reached := g.rnd.IntN(100) < reachPct
	pr := &ping.Result{Sent: 3}
	if reached {
		rtt := 10 + g.rnd.Float64()*100
		pr.Received, pr.MinMillis, pr.AvgMillis, pr.MaxMillis = 3, &rtt, &rtt, &rtt
	} else {
		pr.LossPercent = 100
	}
	g.ms = append(g.ms, store.Measurement{IP: ip, Kind: result.KindPing, Value: pr})
	state := tcpport.StateOpen
	if !reached {
		state = tcpport.StateFiltered
	}
	g.ms = append(g.ms, store.Measurement{IP: ip, Kind: result.KindTCP443, Value: &tcpport.Result{Port: 443, State: state}})
	if ip.Is6() && !reached && g.rnd.IntN(4) == 0 {
		g.ms = append(g.ms, store.Measurement{IP: ip, Kind: result.KindPath, Value: &path.Result{Family: 6, PMTUBytes: 1500,
			HopList: []string{"2001:db8:ffff::1", "*", "*"}, Reason: path.ReasonBlackHole}})
	}
}
