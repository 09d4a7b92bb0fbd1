package labcrawl_test

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
)

// The shapes of domains.jsonl (RECORDS.md), decoded independently of the exporter so that
// the test reads the file the way a user of the records would.
type (
	domainDoc struct {
		Domain string          `json:"domain"`
		Status string          `json:"status"`
		SOA    *soaDoc         `json:"soa"`
		NullMX bool            `json:"null_mx"`
		IPv6   map[string]bool `json:"ipv6"`
		Hosts  []hostDoc       `json:"hosts"`
		// NSSource and Delegation: issue 9 (parent-side delegation).
		NSSource   string `json:"ns_source"`
		Delegation *struct {
			Status     string   `json:"status"`
			NS         []string `json:"ns"`
			ParentOnly []string `json:"parent_only"`
			ChildOnly  []string `json:"child_only"`
		} `json:"delegation"`
	}
	soaDoc struct {
		MName  string `json:"mname"`
		RName  string `json:"rname"`
		Serial uint32 `json:"serial"`
	}
	hostDoc struct {
		Role      string    `json:"role"`
		Name      string    `json:"name"`
		Rank      *int      `json:"rank"`
		Status    string    `json:"status"`
		AAAA      string    `json:"aaaa_status"`
		CNAME     []string  `json:"cname"`
		Addresses []addrDoc `json:"addresses"`
	}
	addrDoc struct {
		IP        netip.Addr        `json:"ip"`
		Family    int               `json:"family"`
		Skipped   string            `json:"skipped"`
		Type      *typeDoc          `json:"type"`
		PTR       *string           `json:"ptr"`
		PTRStatus string            `json:"ptr_status"`
		Ping      *pingDoc          `json:"ping"`
		TCP       map[string]string `json:"tcp"`
		TLS       *tlsDoc           `json:"tls"`
		Path      *pathDoc          `json:"path"`
		DNS       string            `json:"dns"`
		SOASerial *uint32           `json:"soa_serial"`
		NTP       *ntpDoc           `json:"ntp"`
	}
	typeDoc struct {
		Valid bool   `json:"valid"`
		Class string `json:"class"`
	}
	pingDoc struct {
		Sent      int      `json:"sent"`
		Received  int      `json:"received"`
		AvgMillis *float64 `json:"avg_ms"`
		Loss      float64  `json:"loss"`
	}
	tlsDoc struct {
		Port      int    `json:"port"`
		Reachable bool   `json:"reachable"`
		Version   string `json:"version"`
		CertValid *bool  `json:"cert_valid"`
		Error     string `json:"error"`
		SNI       string `json:"sni"`
	}
	pathDoc struct {
		MTU     int    `json:"mtu"`
		Reached bool   `json:"reached"`
		Reason  string `json:"reason"`
	}
	ntpDoc struct {
		Status  string `json:"status"`
		Stratum *int   `json:"stratum"`
	}
)

// readJSONL reads domains.jsonl, keyed by domain.
func readJSONL(dir string) (map[string]domainDoc, error) {
	f, err := os.Open(filepath.Join(dir, "domains.jsonl"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]domainDoc{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var d domainDoc
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			return nil, fmt.Errorf("domains.jsonl: %w", err)
		}
		out[d.Domain] = d
	}
	return out, sc.Err()
}

// csvFile is one exported CSV: its header and rows as column-name maps.
type csvFile struct {
	Header []string
	Rows   []map[string]string
}

// readCSV reads an exported record file.
func readCSV(dir, name string) (csvFile, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		return csvFile{}, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return csvFile{}, fmt.Errorf("%s: %w", name, err)
	}
	if len(recs) == 0 {
		return csvFile{}, fmt.Errorf("%s: no header", name)
	}
	out := csvFile{Header: recs[0]}
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		out.Rows = append(out.Rows, m)
	}
	return out, nil
}

// nsCheck is the crawl's SOA check of one domain at one name server address.
type nsCheck struct {
	Host   string // the NS host name
	DNS    string // dns53 status
	Serial *uint32
}

// target is one probed address of the crawl with the hosts (per role) that lead to it.
type target struct {
	Addr netip.Addr
	// Doc is the address's measurements (identical wherever the address appears).
	Doc addrDoc
	// WWW, MX, NTP are host names with this address; NS maps each domain whose NS hosts
	// include the address to the crawl's check of that domain's SOA there (issue 9:
	// dns53 is per domain and address).
	WWW, MX, NTP []string
	NS           map[string]nsCheck
	// TLS443 and STARTTLS are the TLS measurements of the address as www and as mx, by
	// host name: one probe per address, its certificate judged for each host
	// (cert_valid).
	TLS443, STARTTLS map[string]*tlsDoc
}

// tlsHost returns the host the crawl's TLS probe of the address on port asked for (its
// SNI: the host of the best-ranked domain using the address), else the first: the tools
// ask the same, and the crawl's verdict for it is the probe's own.
func (t *target) tlsHost(port int) string {
	hosts, docs := t.WWW, t.TLS443
	if port == 25 {
		hosts, docs = t.MX, t.STARTTLS
	}
	for _, h := range hosts {
		if d := docs[h]; d != nil && d.SNI != "" && slices.Contains(hosts, d.SNI) {
			return d.SNI
		}
	}
	return hosts[0]
}

// probedTargets collects every address the crawl probed (not skipped), sorted.
func probedTargets(docs map[string]domainDoc) []*target {
	byAddr := map[netip.Addr]*target{}
	for _, d := range docs {
		for _, h := range d.Hosts {
			for _, a := range h.Addresses {
				if a.Skipped != "" {
					continue
				}
				t := byAddr[a.IP]
				if t == nil {
					t = &target{Addr: a.IP, Doc: a, NS: map[string]nsCheck{}, TLS443: map[string]*tlsDoc{}, STARTTLS: map[string]*tlsDoc{}}
					byAddr[a.IP] = t
				}
				switch h.Role {
				case "www":
					t.WWW = appendUnique(t.WWW, h.Name)
					if a.TLS != nil {
						t.TLS443[h.Name] = a.TLS
					}
				case "mx":
					t.MX = appendUnique(t.MX, h.Name)
					if a.TLS != nil {
						t.STARTTLS[h.Name] = a.TLS
					}
				case "ntp":
					t.NTP = appendUnique(t.NTP, h.Name)
					if a.NTP != nil {
						t.Doc.NTP = a.NTP
					}
				case "ns":
					t.NS[d.Domain] = nsCheck{Host: h.Name, DNS: a.DNS, Serial: a.SOASerial}
				}
			}
		}
	}
	var out []*target
	for _, t := range byAddr {
		slices.Sort(t.WWW)
		slices.Sort(t.MX)
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *target) int { return a.Addr.Compare(b.Addr) })
	return out
}

func appendUnique(s []string, v string) []string {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}
