package export

import (
	"net/netip"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// The JSON Lines shapes of RECORDS.md. Pointers and omitempty keep "not measured"
// absent rather than a made-up zero.
type (
	domainDoc struct {
		Run    int64           `json:"run"`
		Domain string          `json:"domain"`
		TLD    string          `json:"tld"`
		Suffix string          `json:"suffix"`
		Rank   int             `json:"rank"`
		Status result.Status   `json:"status"`
		Error  string          `json:"error,omitempty"`
		SOA    *soaDoc         `json:"soa,omitempty"`
		NullMX bool            `json:"null_mx,omitempty"`
		IPv6   map[string]bool `json:"ipv6,omitempty"`
		// IPv6Unknown lists the roles whose false comes from a failed AAAA lookup.
		IPv6Unknown []string `json:"ipv6_unknown,omitempty"`
		NSSource    string   `json:"ns_source,omitempty"`
		// NSSerials are the distinct SOA serials the name server addresses answered;
		// SerialsDiffer flags more than one.
		NSSerials     []uint32           `json:"ns_serials,omitempty"`
		SerialsDiffer bool               `json:"serials_differ,omitempty"`
		Delegation    *result.Delegation `json:"delegation,omitempty"`
		Hosts         []hostDoc          `json:"hosts"`
	}
	soaDoc struct {
		MName          string `json:"mname"`
		RName          string `json:"rname"`
		Serial         uint32 `json:"serial"`
		Refresh        uint32 `json:"refresh"`
		Retry          uint32 `json:"retry"`
		Expire         uint32 `json:"expire"`
		Minimum        uint32 `json:"minimum"`
		PrimaryByRank  string `json:"primary_by_rank,omitempty"`
		PrimaryInhouse *bool  `json:"primary_inhouse,omitempty"`
		Total          int    `json:"total"`
	}
	hostDoc struct {
		Role   result.Role   `json:"role"`
		Name   string        `json:"name"`
		Rank   *int          `json:"rank,omitempty"`
		Status result.Status `json:"status"`
		// The outcomes of the A and AAAA lookups (a timeout is not "no address").
		AStatus    result.Status `json:"a_status,omitempty"`
		AAAAStatus result.Status `json:"aaaa_status,omitempty"`
		CNAME      []string      `json:"cname,omitempty"`
		Addresses  []addrDoc     `json:"addresses"`
	}
	addrDoc struct {
		IP     netip.Addr    `json:"ip"`
		Family int           `json:"family"`
		Type   *result.Class `json:"type,omitempty"`
		probeDocs
	}
)

func domainJSON(run int64, d *store.Detail) domainDoc {
	doc := domainDoc{Run: run, Domain: d.Name, TLD: d.TLD, Suffix: d.Suffix, Rank: d.Rank, Status: d.Status,
		Error: d.Error, NullMX: d.NullMX, NSSource: d.NSSource, Delegation: d.Delegation, Hosts: []hostDoc{}}
	if s := d.SOA; s != nil {
		doc.SOA = &soaDoc{MName: s.MName, RName: s.RName, Serial: s.Serial, Refresh: s.Refresh, Retry: s.Retry,
			Expire: s.Expire, Minimum: s.Minimum, PrimaryByRank: s.PrimaryByRank, Total: s.Total}
		if s.PrimaryByRank != "" {
			doc.SOA.PrimaryInhouse = &s.PrimaryInhouse
		}
	}
	if d.Status == result.StatusOK {
		v := hasValidIPv6(d)
		doc.IPv6 = map[string]bool{}
		for _, r := range result.Roles {
			doc.IPv6[string(r)] = v[r]
		}
		doc.IPv6Unknown = ipv6Unknown(d)
	}
	doc.NSSerials = nsSerials(d)
	doc.SerialsDiffer = len(doc.NSSerials) > 1
	for _, ref := range d.Hosts {
		h := d.HostsByName[ref.Name]
		hd := hostDoc{Role: ref.Role, Name: ref.Name, Status: h.Status, AStatus: h.AStatus, AAAAStatus: h.AAAAStatus,
			CNAME: h.CNAME, Addresses: []addrDoc{}}
		if ref.Role == result.RoleNS || ref.Role == result.RoleMX {
			rank := ref.Rank
			hd.Rank = &rank
		}
		for _, ip := range append(h.V4[:len(h.V4):len(h.V4)], h.V6...) {
			a := d.Addrs[ip]
			a.IP = ip
			pd := probeJSON(ref.Role, ref.Name, &a)
			if c := nsCheck(d, ip); ref.Role == result.RoleNS && c != nil {
				pd.DNS, pd.SOASerial = c.Status, c.SOASerial
			}
			hd.Addresses = append(hd.Addresses, addrDoc{IP: ip, Family: a.Family(), Type: a.Class, probeDocs: pd})
		}
		doc.Hosts = append(doc.Hosts, hd)
	}
	return doc
}
