package crawl

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/addrclass"
	"github.com/v6matrix/v6matrix/internal/dnssrv"
	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/export"
	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/result"
)

// crawled is a finished crawl of the test tree, exported.
type crawled struct {
	tree    *dnssrv.Tree
	dir     string
	files   map[string][][]string // CSV file -> rows, header included
	jsonl   []map[string]any
	skipped []string
	stats   LoadStats
	client  *resolve.Client
}

// crawlTree crawls testList through the tree's recursor, behind a front server that
// never answers for slow.com (a resolver that does not answer within the timeout).
func crawlTree(t *testing.T, options ...func(*Config)) *crawled {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	tree, err := dnssrv.StartTree(ctx, testTree())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tree.Close() })
	front, err := dnssrv.Listen(ctx, "127.0.0.1:0", dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		if len(r.Question) == 1 && dns.IsSubDomain("slow.com.", strings.ToLower(r.Question[0].Name)) {
			return // never answers
		}
		tree.Recursor.ServeDNS(w, r)
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { front.Close() })

	st, run := openRun(t, ctx)
	c := &crawled{tree: tree, dir: t.TempDir(), files: map[string][][]string{}}
	c.stats, err = Load(ctx, st, run, strings.NewReader(testList()), "list.csv", LoadOptions{
		OnSkip: func(e *domains.LineError) { c.skipped = append(c.skipped, e.Error()) }})
	if err != nil {
		t.Fatal(err)
	}
	rc := resolve.DefaultConfig()
	rc.Servers = []netip.AddrPort{front.Addr()}
	rc.Timeout, rc.Retries = 300*time.Millisecond, 1
	c.client, err = resolve.NewClient(rc)
	if err != nil {
		t.Fatal(err)
	}
	optout, err := domains.ParseOptOut(strings.NewReader("optedout.org\n"), "exclude.txt")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Concurrency, cfg.BatchSize, cfg.OptOut = 8, 7, optout
	// The tree's servers are on loopback: the parents may be asked there only.
	cfg.ParentAllowed, cfg.ParentPort = netip.Addr.IsLoopback, tree.Port
	cl := addrclass.New(addrclass.DefaultTable(), []netip.Prefix{netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("203.0.113.0/24")})
	cfg.Classify = func(a netip.Addr) result.Class {
		k := cl.Classify(a)
		return result.Class{Valid: k.Valid, PrefixID: k.PrefixID, Type: k.Type, IID: k.IID}
	}
	for _, o := range options {
		o(&cfg)
	}
	cr := New(cfg, c.client, st)
	if err := cr.CheckResolvers(ctx); err != nil {
		t.Fatal(err)
	}
	var p Progress
	if err := cr.Run(ctx, run, &p); err != nil {
		t.Fatal(err)
	}
	if p.Done.Load() != p.Total.Load() || p.Total.Load() != int64(c.stats.Added) {
		t.Errorf("progress %d/%d, want %d done", p.Done.Load(), p.Total.Load(), c.stats.Added)
	}
	if _, err := export.Write(ctx, st, run, c.dir, export.Formats); err != nil {
		t.Fatal(err)
	}
	for _, name := range export.Files([]string{"csv"}) {
		f, err := os.Open(filepath.Join(c.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		c.files[name] = rows
	}
	data, err := os.ReadFile(filepath.Join(c.dir, "domains.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("domains.jsonl: %v", err)
		}
		c.jsonl = append(c.jsonl, m)
	}
	return c
}

// rowsOf returns the rows of a CSV file (header excluded) whose domain column is d.
func (c *crawled) rowsOf(file, d string) [][]string {
	var out [][]string
	col := slices.Index(c.files[file][0], "domain")
	for _, r := range c.files[file][1:] {
		if r[col] == d {
			out = append(out, r)
		}
	}
	return out
}

func TestCrawlTree(t *testing.T) {
	c := crawlTree(t)

	t.Run("headers match RECORDS.md", func(t *testing.T) {
		want := map[string]string{
			"mx.csv":         "type,domain,host,ipv4,ipv6,rank",
			"ns.csv":         "type,domain,host,ipv4,ipv6,rank,ns_source",
			"www.csv":        "type,domain,host,ipv4,ipv6",
			"ntp.csv":        "type,domain,host,ipv4,ipv6",
			"soa.csv":        "type,domain,soa,primary_by_rank,primary_inhouse,secondary,total,contact,serial,refresh,retry,expire,minimum,serials_differ,parent_only,child_only",
			"ipv6type.csv":   "type,domain,host,ipv6,valid,prefixid,ipv6type,iid",
			"ipv6domain.csv": "domain,ns,mx,www,ntp,tld,rank,status,ipv6_unknown",
		}
		for file, header := range want {
			if got := strings.Join(c.files[file][0], ","); got != header {
				t.Errorf("%s header = %s, want %s", file, got, header)
			}
		}
	})

	t.Run("list", func(t *testing.T) {
		want := []string{`list.csv:15: invalid domain "not a domain.com": label "not a domain" contains " "`}
		if diff := cmp.Diff(want, c.skipped); diff != "" {
			t.Errorf("skipped (-want +got):\n%s", diff)
		}
		if c.stats.Duplicates != 1 || c.stats.Skipped != 1 {
			t.Errorf("stats %+v: want 1 duplicate, 1 skipped", c.stats)
		}
	})

	t.Run("statuses", func(t *testing.T) {
		want := map[string]string{
			"example.com": "ok", "nosuch.com": "nxdomain", "broken.com": "servfail", "slow.com": "timeout",
			"optedout.org": "excluded", "xn--e1afmkfd.xn--p1ai": "ok", "loop.net": "ok",
		}
		for d, st := range want {
			rows := c.rowsOf("ipv6domain.csv", d)
			if len(rows) != 1 || rows[0][7] != st {
				t.Errorf("%s: ipv6domain rows %q, want status %s", d, rows, st)
			}
		}
		if got := c.rowsOf("ipv6domain.csv", "nosuch.com")[0]; strings.Join(got[1:5], ",") != ",,," {
			t.Errorf("nxdomain summary cells %q, want empty (not measured)", got[1:5])
		}
	})

	t.Run("example.com", func(t *testing.T) {
		check := func(file string, want [][]string) {
			t.Helper()
			if diff := cmp.Diff(want, c.rowsOf(file, "example.com")); diff != "" {
				t.Errorf("%s (-want +got):\n%s", file, diff)
			}
		}
		// ns1.example.com is the SOA MNAME: rank 1 though it sorts after ns2.dnshost.net.
		check("ns.csv", [][]string{
			{"ns", "example.com", "ns1.example.com", "127.0.3.1", "", "1", "child"},
			{"ns", "example.com", "ns2.dnshost.net", "127.0.4.2", "", "2", "child"},
		})
		check("mx.csv", [][]string{
			{"mx", "example.com", "mail.example.com", "192.0.2.25", "2001:db8:25::1", "10"},
			{"mx", "example.com", "mx.shared.net", "198.51.100.25", "2001:db8:25::25", "20"},
		})
		check("www.csv", [][]string{
			{"www", "example.com", "www.example.com", "192.0.2.80", "2001:db8:80::1"},
			{"www", "example.com", "www.example.com", "192.0.2.81", ""},
		})
		check("ntp.csv", [][]string{
			{"ntp", "example.com", "ntp.example.com", "192.0.2.123", ""},
			{"ntp", "example.com", "time.example.com", "", "2001:db8:123::1"},
		})
		check("soa.csv", [][]string{{"soa", "example.com", "ns1.example.com", "ns1.example.com", "1", "1", "2",
			"hostmaster.example.com", "2026112501", "7200", "900", "1209600", "300", "", "", ""}})
		// NS hosts have no valid IPv6 here (127.0.3.1 and ns2 are IPv4 only).
		check("ipv6domain.csv", [][]string{{"example.com", "0", "1", "1", "1", "com", "1", "ok", ""}})
	})

	t.Run("failed NS from the parent", func(t *testing.T) {
		// broken.com's server answers SERVFAIL and the resolver never answers for
		// slow.com: their NS hosts come from the com zone's delegation.
		for d, want := range map[string][][]string{
			"broken.com": {{"ns", "broken.com", "ns.broken.com", "127.0.3.9", "", "1", "parent"}},
			"slow.com":   {{"ns", "slow.com", "ns.dnshost.net", "127.0.4.1", "2001:db8:53::1", "1", "parent"}},
		} {
			if diff := cmp.Diff(want, c.rowsOf("ns.csv", d)); diff != "" {
				t.Errorf("%s ns.csv (-want +got):\n%s", d, diff)
			}
		}
		if rows := c.rowsOf("ns.csv", "outside.com"); len(rows) != 2 || rows[0][6] != "child" {
			t.Errorf("outside.com ns.csv %q, want two rows from the child", rows)
		}
	})

	t.Run("parent and child NS differ", func(t *testing.T) {
		// com delegates outside.com to a third server its own NS set does not list.
		for _, d := range c.jsonl {
			if d["domain"] != "outside.com" {
				continue
			}
			deleg, _ := d["delegation"].(map[string]any)
			want := map[string]any{"status": "ok", "zone": "com", "server": "127.0.2.1",
				"ns":          []any{"ns.dnshost.net", "ns2.dnshost.net", "old.dnshost.net"},
				"parent_only": []any{"old.dnshost.net"}}
			if diff := cmp.Diff(want, deleg); diff != "" {
				t.Errorf("outside.com delegation (-want +got):\n%s", diff)
			}
			if rows := c.rowsOf("soa.csv", "outside.com"); len(rows) != 1 || rows[0][14] != "old.dnshost.net" || rows[0][15] != "" {
				t.Errorf("outside.com soa.csv %q, want parent_only old.dnshost.net, child_only empty", rows)
			}
			return
		}
		t.Error("outside.com is not in domains.jsonl")
	})

	t.Run("outside.com primary not inhouse", func(t *testing.T) {
		rows := c.rowsOf("soa.csv", "outside.com")
		if len(rows) != 1 || rows[0][3] != "ns.dnshost.net" || rows[0][4] != "0" || rows[0][6] != "2" {
			t.Errorf("soa rows %q", rows)
		}
		if rows := c.rowsOf("ipv6domain.csv", "outside.com"); rows[0][1] != "1" {
			t.Errorf("ns.dnshost.net has 2001:db8:53::1: ipv6domain ns = %q, want 1", rows[0][1])
		}
	})

	t.Run("null MX and no MX", func(t *testing.T) {
		if diff := cmp.Diff([][]string{{"mx", "nullmx.org", ".", "", "", "0"}}, c.rowsOf("mx.csv", "nullmx.org")); diff != "" {
			t.Errorf("null MX (-want +got):\n%s", diff)
		}
		if rows := c.rowsOf("mx.csv", "nomx.org"); len(rows) != 0 {
			t.Errorf("no MX: rows %q", rows)
		}
	})

	t.Run("CNAME chain and loop", func(t *testing.T) {
		if diff := cmp.Diff([][]string{{"www", "chain.net", "www.chain.net", "203.0.113.3", ""}}, c.rowsOf("www.csv", "chain.net")); diff != "" {
			t.Errorf("chain (-want +got):\n%s", diff)
		}
		host := c.host(t, "chain.net", "www.chain.net")
		if diff := cmp.Diff([]any{"a.chain.net", "b.chain.net", "c.outside.com"}, host["cname"]); diff != "" {
			t.Errorf("cname chain (-want +got):\n%s", diff)
		}
		if loop := c.host(t, "loop.net", "www.loop.net"); loop["status"] != "cname-loop" {
			t.Errorf("loop host status %v, want cname-loop", loop["status"])
		}
	})

	t.Run("truncated answer retried over TCP", func(t *testing.T) {
		var v6 int
		for _, r := range c.rowsOf("www.csv", "big.com") {
			if r[4] != "" {
				v6++
			}
		}
		if v6 != 50 {
			t.Errorf("big.com www: %d IPv6 addresses, want all 50", v6)
		}
	})

	t.Run("junk AAAA not counted as IPv6", func(t *testing.T) {
		if rows := c.rowsOf("ipv6domain.csv", "junk.com"); rows[0][3] != "0" {
			t.Errorf("junk.com www = %q, want 0", rows[0][3])
		}
		var classes []string
		for _, r := range c.rowsOf("ipv6type.csv", "junk.com") {
			if r[0] != "www" {
				continue
			}
			classes = append(classes, r[3]+" "+r[4]+" "+r[6])
		}
		slices.Sort(classes)
		want := []string{"::ffff:192.0.2.99 0 ipv4-mapped", "fd00::1 0 ula", "fe80::1 0 link-local"}
		if diff := cmp.Diff(want, classes); diff != "" {
			t.Errorf("ipv6type (-want +got):\n%s", diff)
		}
	})

	t.Run("IDN", func(t *testing.T) {
		rows := c.rowsOf("www.csv", "xn--e1afmkfd.xn--p1ai")
		if len(rows) != 1 || rows[0][3] != "192.0.2.70" {
			t.Errorf("IDN www rows %q", rows)
		}
		if rows := c.rowsOf("ipv6domain.csv", "example.co.uk"); rows[0][5] != "uk" || rows[0][3] != "1" {
			t.Errorf("example.co.uk summary %q: want tld uk, www 1", rows)
		}
	})

	t.Run("shared hosts looked up once", func(t *testing.T) {
		r := c.tree.Recursor
		for _, q := range []struct {
			name  string
			qtype uint16
		}{{"mx.shared.net.", dns.TypeA}, {"mx.shared.net.", dns.TypeAAAA}, {"ns.dnshost.net.", dns.TypeA}, {"ns2.dnshost.net.", dns.TypeAAAA}} {
			if n := r.Count(q.name, q.qtype); n != 1 {
				t.Errorf("%s %s queried %d times, want 1", q.name, dns.TypeToString[q.qtype], n)
			}
		}
		if rows := c.rowsOf("mx.csv", "shared17.net"); len(rows) != 1 || rows[0][3] != "198.51.100.25" {
			t.Errorf("shared17.net mx rows %q", rows)
		}
	})
}

// host returns the JSON Lines host object of a domain.
func (c *crawled) host(t *testing.T, domain, name string) map[string]any {
	t.Helper()
	for _, d := range c.jsonl {
		if d["domain"] != domain {
			continue
		}
		for _, h := range d["hosts"].([]any) {
			if hm := h.(map[string]any); hm["name"] == name {
				return hm
			}
		}
	}
	t.Fatalf("no host %s for %s in domains.jsonl", name, domain)
	return nil
}

func TestCrawlTreeWWWApex(t *testing.T) {
	c := crawlTree(t, func(cfg *Config) { cfg.WWWApex = true })
	want := [][]string{
		{"www", "example.com", "www.example.com", "192.0.2.80", "2001:db8:80::1"},
		{"www", "example.com", "www.example.com", "192.0.2.81", ""},
		{"www", "example.com", "example.com", "192.0.2.8", ""},
	}
	if diff := cmp.Diff(want, c.rowsOf("www.csv", "example.com")); diff != "" {
		t.Errorf("www.csv with --www-apex (-want +got):\n%s", diff)
	}
	// A domain without an apex address still gets its apex row, with empty cells.
	if rows := c.rowsOf("www.csv", "outside.com"); len(rows) != 2 || rows[1][2] != "outside.com" || rows[1][3] != "" {
		t.Errorf("outside.com www rows %q, want www.outside.com and an empty apex row", rows)
	}
}
