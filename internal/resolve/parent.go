package resolve

import (
	"context"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/result"
)

// maxParentZones bounds the parent zones remembered (there are few: the TLDs and
// public suffixes of a list); beyond it zones are looked up again.
const maxParentZones = 10_000

// maxParentServers is how many of a parent zone's server addresses one delegation
// query tries at most.
const maxParentServers = 3

// Parents asks the parent zone of a domain for the delegation it publishes: the NS
// names and glue, asked without recursion of the parent zone's own servers. The parent
// zone and its servers are found through the resolver and remembered per zone.
type Parents struct {
	Client *Client
	// Port is the parent servers' port (0: 53); tests use another.
	Port uint16
	// Allowed says which server addresses may be sent a query (the probe gate: no
	// special-purpose address outside --allow-ranges, no opted-out network).
	Allowed func(netip.Addr) bool
	// Timeout is the wait for each parent server's answer (0: the client's Timeout).
	Timeout time.Duration

	mu    sync.Mutex
	zones map[string]*parentZone // by the domain's parent name
}

// parentZone is a parent zone with its allowed server addresses, filled once.
type parentZone struct {
	done    chan struct{}
	zone    string
	servers []netip.Addr
	status  result.Status // why there is no server, when there is none
}

// Delegation returns the delegation of domain as its parent zone publishes it. The
// error is non-nil only when ctx ended or a query could not be sent.
func (p *Parents) Delegation(ctx context.Context, domain string) (result.Delegation, error) {
	domain = strings.ToLower(strings.TrimSuffix(domain, "."))
	parent := "."
	if _, rest, ok := strings.Cut(domain, "."); ok {
		parent = rest
	}
	z, err := p.zoneOf(ctx, parent)
	if err != nil {
		return result.Delegation{}, err
	}
	d := result.Delegation{Zone: z.zone, Status: z.status}
	if len(z.servers) == 0 {
		return d, nil
	}
	// Start at a server chosen by the domain's name, so that the load spreads over the
	// parent's servers and a domain always asks the same one first.
	h := fnv.New32a()
	h.Write([]byte(domain))
	first := int(h.Sum32() % uint32(len(z.servers)))
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = p.Client.cfg.Timeout
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(domain), dns.TypeNS)
	q.RecursionDesired = false
	q.SetEdns0(1232, false)
	d.Status = result.StatusTimeout
	for i := range min(maxParentServers, len(z.servers)) {
		srv := z.servers[(first+i)%len(z.servers)]
		d.Server = srv
		m, err := p.exchange(ctx, q, srv, timeout)
		if ctx.Err() != nil {
			return d, ctx.Err()
		}
		if err != nil {
			continue // no answer from this server: the next one
		}
		d.Status = rcodeStatus(m)
		if d.Status == result.StatusServFail || d.Status == result.StatusRefused {
			continue
		}
		fillDelegation(&d, m, domain)
		break
	}
	return d, nil
}

// exchange asks one parent server over UDP, and over TCP when the answer is truncated.
func (p *Parents) exchange(ctx context.Context, q *dns.Msg, srv netip.Addr, timeout time.Duration) (*dns.Msg, error) {
	port := p.Port
	if port == 0 {
		port = 53
	}
	addr := netip.AddrPortFrom(srv, port).String()
	c := &dns.Client{Net: "udp", Timeout: timeout, UDPSize: 1232}
	p.Client.queries.Add(1)
	m, _, err := c.ExchangeContext(ctx, q, addr)
	if err == nil && m.Truncated {
		c.Net = "tcp"
		p.Client.queries.Add(1)
		m, _, err = c.ExchangeContext(ctx, q, addr)
	}
	return m, err
}

// fillDelegation takes the NS records owned by domain (a referral's authority section,
// or the answer when the parent serves the child too) and their glue.
func fillDelegation(d *result.Delegation, m *dns.Msg, domain string) {
	for _, rr := range slices.Concat(m.Answer, m.Ns) {
		if ns, ok := rr.(*dns.NS); ok && strings.EqualFold(strings.TrimSuffix(ns.Hdr.Name, "."), domain) {
			if n := strings.ToLower(strings.TrimSuffix(ns.Ns, ".")); !slices.Contains(d.NS, n) {
				d.NS = append(d.NS, n)
			}
		}
	}
	slices.Sort(d.NS)
	if d.Status == result.StatusOK && len(d.NS) == 0 {
		d.Status = result.StatusNoData
	}
	for _, rr := range m.Extra {
		name := strings.ToLower(strings.TrimSuffix(rr.Header().Name, "."))
		if !slices.Contains(d.NS, name) {
			continue
		}
		var ip netip.Addr
		switch g := rr.(type) {
		case *dns.A:
			ip, _ = netip.AddrFromSlice(g.A.To4())
		case *dns.AAAA:
			ip, _ = netip.AddrFromSlice(g.AAAA)
		}
		if ip.IsValid() && len(d.Glue) < MaxAddrs {
			d.Glue = append(d.Glue, result.GlueAddr{Name: name, IP: ip})
		}
	}
	slices.SortFunc(d.Glue, func(a, b result.GlueAddr) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return a.IP.Compare(b.IP)
	})
}

// zoneOf returns the zone holding parent and its servers, looked up once.
func (p *Parents) zoneOf(ctx context.Context, parent string) (*parentZone, error) {
	p.mu.Lock()
	if p.zones == nil {
		p.zones = map[string]*parentZone{}
	}
	z, ok := p.zones[parent]
	if !ok {
		z = &parentZone{done: make(chan struct{})}
		if len(p.zones) < maxParentZones {
			p.zones[parent] = z
		}
	}
	p.mu.Unlock()
	if ok {
		select {
		case <-z.done:
			return z, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	err := p.find(ctx, parent, z)
	if err != nil {
		// Not remembered: the next domain of this parent tries again.
		p.mu.Lock()
		delete(p.zones, parent)
		p.mu.Unlock()
	}
	close(z.done)
	return z, err
}

// find fills z: the zone that holds parent (the SOA owner the resolver names), then
// the addresses of its name servers that may be asked.
func (p *Parents) find(ctx context.Context, parent string, z *parentZone) error {
	a, err := p.Client.Query(ctx, parent, dns.TypeSOA)
	if err != nil {
		return err
	}
	z.zone, z.status = parent, a.Status
	if a.Msg == nil || a.Status != result.StatusOK && a.Status != result.StatusNXDomain {
		return nil
	}
	for _, rr := range slices.Concat(a.Msg.Answer, a.Msg.Ns) {
		if soa, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(soa.Hdr.Name, dns.Fqdn(parent)) {
			z.zone = strings.ToLower(strings.TrimSuffix(soa.Hdr.Name, "."))
			break
		}
	}
	ns, err := p.Client.Lookup(ctx, z.zone, dns.TypeNS)
	if err != nil {
		return err
	}
	var names []HostQuery
	for _, rr := range ns.RRs {
		names = append(names, HostQuery{Name: strings.ToLower(strings.TrimSuffix(rr.(*dns.NS).Ns, "."))})
	}
	hosts, err := p.Client.Hosts(ctx, names)
	if err != nil {
		return err
	}
	for _, h := range hosts {
		for _, ip := range slices.Concat(h.V4, h.V6) {
			if p.Allowed != nil && p.Allowed(ip) && !slices.Contains(z.servers, ip) {
				z.servers = append(z.servers, ip)
			}
		}
	}
	z.status = ns.Status
	if len(z.servers) == 0 {
		z.status = result.StatusError
		if len(hosts) > 0 {
			z.status = StatusNotAllowed
		}
	}
	return nil
}

// StatusNotAllowed is a delegation not asked because none of the parent zone's
// server addresses may be sent a packet (special-purpose or opted out).
const StatusNotAllowed result.Status = "not-allowed"
