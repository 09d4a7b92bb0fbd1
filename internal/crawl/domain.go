package crawl

import (
	"context"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// outcome is one measured domain with the host rows its batch writes.
type outcome struct {
	domain result.Domain
	// rows are the domain's own hosts and the shared ones that no committed batch is
	// known to hold (resolve.HostCache's unsaved): a batch that commits before the one
	// of the domain that looked a shared host up still holds the host's row.
	rows      []result.Host
	addresses []result.Address
	// hosts are every host the domain refers to (fresh or from the cache); targets and
	// ns are the probe stage's input made from them.
	hosts   []result.Host
	targets []store.Target
	ns      []store.NSTarget
}

// measureDomain runs the DNS part of one domain: NS, SOA, MX, www (and the apex),
// ntp and time, and the addresses of every host. An error means ctx ended or a local
// failure: the domain then stays pending.
func (c *Crawler) measureDomain(ctx context.Context, d result.Domain) (outcome, error) {
	out := outcome{domain: d}
	dom := &out.domain
	if c.cfg.OptOut.ExcludesDomain(d.Name) {
		dom.Status = result.StatusExcluded
		return out, nil
	}
	// The parent's delegation is asked of the parent's servers meanwhile.
	var deleg chan delegation
	if c.parent != nil {
		deleg = make(chan delegation, 1)
		go func() {
			dl, err := c.parent.Delegation(ctx, d.Name)
			deleg <- delegation{dl, err}
		}()
	}
	// One batch: NS, SOA, MX and the domain's own names (www and the apex: A and AAAA;
	// ntp and time: A, their AAAA only when they exist), which depend on nothing; then
	// one batch for the NS and MX hosts not yet cached and the AAAA of ntp and time. A
	// slow name server then costs a domain two of its latencies, a dead one one
	// schedule (docs/PERFORMANCE.md, "Slow name servers"). A failed NS query decides
	// the domain: the batch does not wait for the others.
	own := []resolve.HostQuery{{Name: "www." + d.Name}}
	if c.cfg.WWWApex {
		own = append(own, resolve.HostQuery{Name: d.Name})
	}
	nWWW := len(own)
	own = append(own, resolve.HostQuery{Name: "ntp." + d.Name, AAAALater: true},
		resolve.HostQuery{Name: "time." + d.Name, AAAALater: true})
	qs := []resolve.Question{{Name: d.Name, Type: dns.TypeNS, Decides: true},
		{Name: d.Name, Type: dns.TypeSOA}, {Name: d.Name, Type: dns.TypeMX}}
	for _, h := range own {
		qs = append(qs, resolve.Question{Name: h.Name, Type: dns.TypeA})
		if !h.AAAALater {
			qs = append(qs, resolve.Question{Name: h.Name, Type: dns.TypeAAAA})
		}
	}
	rs, err := c.client.LookupAll(ctx, qs)
	if deleg != nil {
		dl := <-deleg
		if err == nil && dl.err != nil {
			err = dl.err
		}
		if dl.err == nil {
			dom.Delegation = &dl.d
		}
	}
	if err != nil {
		return out, err
	}
	ns, soa, mx := rs[0], rs[1], rs[2]
	for i, k := 0, 3; i < len(own); i++ {
		own[i].A, k = &rs[k], k+1
		if !own[i].AAAALater {
			own[i].AAAA, k = &rs[k], k+1
		}
	}
	dom.Status = domainStatus(ns.Status)
	if dom.Status != result.StatusOK {
		if ns.Status == result.StatusCNAMELoop || ns.Status == result.StatusCNAMELong {
			dom.Error = string(ns.Status)
		}
		return out, c.parentNS(ctx, &out)
	}

	nsNames := rrNames(ns.RRs)
	if dl := dom.Delegation; dl != nil && dl.Status == result.StatusOK && len(nsNames) > 0 {
		dl.ParentOnly, dl.ChildOnly = setDiff(dl.NS, nsNames), setDiff(nsNames, dl.NS)
	}
	var mname string
	if len(soa.RRs) > 0 {
		s := soa.RRs[0].(*dns.SOA)
		mname = hostName(s.Ns)
		dom.SOA = &result.SOA{MName: mname, RName: hostName(s.Mbox), Serial: s.Serial, Refresh: s.Refresh,
			Retry: s.Retry, Expire: s.Expire, Minimum: s.Minttl, Total: len(nsNames)}
	}
	if len(nsNames) > 0 {
		dom.NSSource = result.NSChild
	}
	for i, n := range rankNS(nsNames, mname) {
		dom.Hosts = append(dom.Hosts, result.HostRef{Role: result.RoleNS, Name: n, Rank: i + 1})
	}
	if dom.SOA != nil && len(nsNames) > 0 {
		dom.SOA.PrimaryByRank = dom.Hosts[0].Name
		dom.SOA.PrimaryInhouse = domains.Within(dom.SOA.PrimaryByRank, d.Name)
	}
	var mxs []result.HostRef
	for _, rr := range mx.RRs {
		m := rr.(*dns.MX)
		if m.Mx == "." {
			// RFC 7505: "0 ." alone says the domain takes no mail; not a host.
			dom.NullMX = true
			continue
		}
		if name := hostName(m.Mx); validHost(name) {
			mxs = append(mxs, result.HostRef{Role: result.RoleMX, Name: name, Rank: int(m.Preference)})
		}
	}
	dom.Hosts = append(dom.Hosts, sortMX(mxs)...)

	// Shared hosts (NS, MX) go through the run-wide cache. www (and the apex) are
	// recorded whether or not they resolve; ntp and time only when they do. Their names
	// are the domain's own, so they skip the cache.
	shared := make([]string, len(dom.Hosts))
	for i, h := range dom.Hosts {
		shared[i] = h.Name
	}
	hosts, unsaved, ownHosts, err := c.hosts.Hosts(ctx, shared, own)
	if err != nil {
		return out, err
	}
	out.addUnsaved(hosts, unsaved)
	out.hosts = slices.Concat(hosts, ownHosts)
	for i, host := range ownHosts {
		if i < nWWW {
			out.rows = append(out.rows, host)
			dom.Hosts = append(dom.Hosts, result.HostRef{Role: result.RoleWWW, Name: host.Name})
		} else if len(host.V4)+len(host.V6) > 0 {
			out.rows = append(out.rows, host)
			dom.Hosts = append(dom.Hosts, result.HostRef{Role: result.RoleNTP, Name: host.Name})
		}
	}
	return out, nil
}

// delegation is the parent's answer for a domain, from its goroutine.
type delegation struct {
	d   result.Delegation
	err error
}

// parentNS gives a domain whose own NS query failed the NS hosts of its parent's
// delegation (ns_source parent), with their addresses, so that the probes can show
// what those servers do for it (a lame delegation). Nothing else is looked up: the
// domain's own names fail the same way.
func (c *Crawler) parentNS(ctx context.Context, out *outcome) error {
	dom := &out.domain
	dl := dom.Delegation
	if dl == nil || dl.Status != result.StatusOK || len(dl.NS) == 0 {
		return nil
	}
	dom.NSSource = result.NSParent
	var names []string
	for i, n := range dl.NS {
		if validHost(n) {
			dom.Hosts = append(dom.Hosts, result.HostRef{Role: result.RoleNS, Name: n, Rank: i + 1})
			names = append(names, n)
		}
	}
	hosts, unsaved, _, err := c.hosts.Hosts(ctx, names, nil)
	if err != nil {
		return err
	}
	out.addUnsaved(hosts, unsaved)
	out.hosts = hosts
	return nil
}

// addUnsaved adds the shared hosts that no committed batch holds to the rows.
func (out *outcome) addUnsaved(hosts []result.Host, unsaved []bool) {
	for i, h := range hosts {
		if unsaved[i] {
			out.rows = append(out.rows, h)
		}
	}
}

// setDiff returns the names of a (sorted) that b lacks.
func setDiff(a, b []string) []string {
	var out []string
	for _, n := range a {
		if !slices.Contains(b, n) {
			out = append(out, n)
		}
	}
	return out
}

// domainStatus maps the NS query's outcome to the domain's status. NODATA is ok: the
// name exists (a domain without its own NS set is still measured).
func domainStatus(s result.Status) result.Status {
	switch s {
	case result.StatusOK, result.StatusNoData:
		return result.StatusOK
	case result.StatusNXDomain, result.StatusServFail, result.StatusTimeout, result.StatusRefused:
		return s
	default:
		return result.StatusError
	}
}

// rrNames returns the distinct, valid target names of NS records, sorted.
func rrNames(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		if ns, ok := rr.(*dns.NS); ok {
			if n := hostName(ns.Ns); validHost(n) && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	slices.Sort(out)
	return out
}

// rankNS orders NS names as RECORDS.md says: the SOA MNAME first when it is in the
// set, then the others in lexical order. names must be sorted.
func rankNS(names []string, mname string) []string {
	i := slices.Index(names, mname)
	if i <= 0 {
		return names
	}
	out := make([]string, 0, len(names))
	out = append(out, mname)
	out = append(out, names[:i]...)
	return append(out, names[i+1:]...)
}

// sortMX orders MX hosts by preference, then name, and keeps only the best preference
// of a name listed twice.
func sortMX(hs []result.HostRef) []result.HostRef {
	slices.SortFunc(hs, func(a, b result.HostRef) int {
		if a.Rank != b.Rank {
			return a.Rank - b.Rank
		}
		return strings.Compare(a.Name, b.Name)
	})
	seen := map[string]bool{}
	return slices.DeleteFunc(hs, func(h result.HostRef) bool {
		dup := seen[h.Name]
		seen[h.Name] = true
		return dup
	})
}

func hostName(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

// validHost rejects names a hostile or broken zone may put in NS or MX data: they are
// not looked up.
func validHost(name string) bool {
	_, err := domains.Normalize(name)
	return err == nil
}
