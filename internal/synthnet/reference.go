package synthnet

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/smtp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/v6matrix/v6matrix/internal/probe/path"
	"github.com/v6matrix/v6matrix/internal/probe/ping"
)

// RefConfig configures the reference crawler.
type RefConfig struct {
	// Resolver answers every query (NSD, authoritative for all the data).
	Resolver netip.AddrPort
	// Concurrency is how many domains are resolved at once; Workers how many probes run
	// at once.
	Concurrency, Workers int
	// Probes false resolves only.
	Probes bool
}

// RefReport counts what the reference crawler did.
type RefReport struct {
	Domains, Addresses, Queries int64
	ProbesRun, ProbesOK         int64
}

// Reference is the plain crawler the bench compares v6matrix with: for each domain the
// queries v6matrix sends (NS, SOA, MX, the parent's delegation, www, ntp and time A/AAAA,
// the A/AAAA of NS and MX hosts once per run), and for each address, as soon as it is
// found, the probes v6matrix runs (PTR, ping, TCP 25/80/443, TLS on 443 and HTTP on 80
// for www, STARTTLS for mail, NTP for ntp, the path) plus the SOA check of every
// (domain, name server address). It streams, stores nothing, and is not polite: the
// Go standard library and miekg/dns, with v6matrix's own ping and path probers (raw
// sockets) for the two ICMP-based probes.
type Reference struct {
	cfg    RefConfig
	pinger *ping.Pinger
	tracer *path.Tracer
	rep    RefReport

	mu    sync.Mutex
	seen  map[netip.Addr]bool
	hosts map[string]*hostAddrs
	tasks chan func(context.Context) bool
}

type hostAddrs struct {
	once  sync.Once
	addrs []netip.Addr
}

const refTimeout = 3 * time.Second

// RunReference crawls the "rank,domain" lines of list.
func RunReference(ctx context.Context, cfg RefConfig, list io.Reader) (RefReport, error) {
	r := &Reference{cfg: cfg, seen: map[netip.Addr]bool{}, hosts: map[string]*hostAddrs{},
		tasks: make(chan func(context.Context) bool, 4*cfg.Workers)}
	if cfg.Probes {
		p, err := ping.New(ping.Config{})
		if err != nil {
			return r.rep, err
		}
		if err := p.Start(); err != nil {
			return r.rep, fmt.Errorf("reference: ping socket: %w", err)
		}
		defer p.Close()
		r.pinger = p
		if r.tracer, err = path.New(path.DefaultConfig()); err != nil {
			return r.rep, err
		}
	}
	var probers sync.WaitGroup
	for range cfg.Workers {
		probers.Add(1)
		go func() {
			defer probers.Done()
			for t := range r.tasks {
				atomic.AddInt64(&r.rep.ProbesRun, 1)
				if t(ctx) {
					atomic.AddInt64(&r.rep.ProbesOK, 1)
				}
			}
		}()
	}
	names := make(chan string)
	var resolvers sync.WaitGroup
	for range cfg.Concurrency {
		resolvers.Add(1)
		go func() {
			defer resolvers.Done()
			for name := range names {
				r.domain(ctx, name)
			}
		}()
	}
	sc := bufio.NewScanner(list)
	var err error
	for sc.Scan() {
		_, name, ok := strings.Cut(sc.Text(), ",")
		if !ok {
			continue
		}
		select {
		case names <- name:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			break
		}
	}
	close(names)
	resolvers.Wait()
	close(r.tasks)
	probers.Wait()
	if err == nil {
		err = sc.Err()
	}
	r.rep.Addresses = int64(len(r.seen))
	return r.rep, err
}

// query asks server (the resolver when invalid) one question, with two retries.
func (r *Reference) query(ctx context.Context, server netip.AddrPort, name string, qtype uint16) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	if !server.IsValid() {
		server = r.cfg.Resolver
	} else {
		m.RecursionDesired = false
	}
	c := &dns.Client{Timeout: time.Second}
	for range 3 {
		atomic.AddInt64(&r.rep.Queries, 1)
		resp, _, err := c.ExchangeContext(ctx, m, server.String())
		if err == nil {
			return resp
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// addrs returns the A and AAAA of name.
func (r *Reference) addrs(ctx context.Context, name string) []netip.Addr {
	var out []netip.Addr
	for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
		resp := r.query(ctx, netip.AddrPort{}, name, t)
		if resp == nil {
			continue
		}
		out = append(out, addrsIn(resp.Answer)...)
		if resp.Rcode == dns.RcodeNameError {
			break // no AAAA question for a name that does not exist
		}
	}
	return out
}

// sharedAddrs looks up a shared (NS or MX) host once per run.
func (r *Reference) sharedAddrs(ctx context.Context, name string) []netip.Addr {
	r.mu.Lock()
	h := r.hosts[name]
	if h == nil {
		h = &hostAddrs{}
		r.hosts[name] = h
	}
	r.mu.Unlock()
	h.once.Do(func() { h.addrs = r.addrs(ctx, name) })
	return h.addrs
}

// domain resolves one domain and hands its new addresses to the probes.
func (r *Reference) domain(ctx context.Context, name string) {
	atomic.AddInt64(&r.rep.Domains, 1)
	var nsHosts, mxHosts []string
	if resp := r.query(ctx, netip.AddrPort{}, name, dns.TypeNS); resp != nil {
		for _, rr := range resp.Answer {
			if ns, ok := rr.(*dns.NS); ok {
				nsHosts = append(nsHosts, ns.Ns)
			}
		}
	}
	r.query(ctx, netip.AddrPort{}, name, dns.TypeSOA)
	if resp := r.query(ctx, netip.AddrPort{}, name, dns.TypeMX); resp != nil {
		for _, rr := range resp.Answer {
			if mx, ok := rr.(*dns.MX); ok && mx.Mx != "." {
				mxHosts = append(mxHosts, mx.Mx)
			}
		}
	}
	// The parent's delegation, asked of the TLD's first name server.
	if len(nsHosts) > 0 {
		if tldNS := r.sharedAddrs(ctx, "ns1.dns0."+name[strings.LastIndexByte(name, '.')+1:]); len(tldNS) > 0 {
			r.query(ctx, netip.AddrPortFrom(tldNS[0], 53), name, dns.TypeNS)
		}
	}
	for _, h := range nsHosts {
		for _, ip := range r.sharedAddrs(ctx, h) {
			r.found(ip, "ns", "")
			r.nsCheck(name, ip)
		}
	}
	for _, h := range mxHosts {
		for _, ip := range r.sharedAddrs(ctx, h) {
			r.found(ip, "mx", strings.TrimSuffix(h, "."))
		}
	}
	for _, ip := range r.addrs(ctx, "www."+name) {
		r.found(ip, "www", "www."+name)
	}
	for _, label := range []string{"ntp", "time"} {
		for _, ip := range r.addrs(ctx, label+"."+name) {
			r.found(ip, "ntp", "")
		}
	}
}

// submit queues a probe (nothing when probes are off).
func (r *Reference) submit(t func(context.Context) bool) {
	if r.cfg.Probes {
		r.tasks <- t
	}
}

// nsCheck asks a name server address the domain's SOA.
func (r *Reference) nsCheck(domain string, ip netip.Addr) {
	r.submit(func(ctx context.Context) bool {
		resp := r.query(ctx, netip.AddrPortFrom(ip, 53), domain, dns.TypeSOA)
		return resp != nil && resp.Rcode == dns.RcodeSuccess
	})
}

// found queues the probes of an address the first time it is seen.
func (r *Reference) found(ip netip.Addr, role, name string) {
	r.mu.Lock()
	seen := r.seen[ip]
	r.seen[ip] = true
	r.mu.Unlock()
	if seen {
		return
	}
	r.submit(func(ctx context.Context) bool {
		resp := r.query(ctx, netip.AddrPort{}, reverseName(ip), dns.TypePTR)
		return resp != nil
	})
	r.submit(func(ctx context.Context) bool {
		res, err := r.pinger.Probe(ctx, ip)
		return err == nil && res.LossPercent < 100
	})
	for _, port := range []uint16{25, 80, 443} {
		r.submit(func(ctx context.Context) bool { return dialOK(ctx, ip, port) })
	}
	r.submit(func(ctx context.Context) bool {
		res, err := r.tracer.Trace(ctx, ip)
		return err == nil && res.Reached
	})
	switch role {
	case "www":
		r.submit(func(ctx context.Context) bool { return tlsOK(ctx, ip, name) })
		r.submit(func(ctx context.Context) bool { return httpOK(ctx, ip, name) })
	case "mx":
		r.submit(func(ctx context.Context) bool { return starttlsOK(ctx, ip, name) })
	case "ntp":
		r.submit(func(ctx context.Context) bool { return ntpOK(ctx, ip) })
	}
}

func reverseName(ip netip.Addr) string {
	name, _ := dns.ReverseAddr(ip.String())
	return name
}

func dial(ctx context.Context, ip netip.Addr, port uint16) (net.Conn, error) {
	d := net.Dialer{Timeout: refTimeout}
	return d.DialContext(ctx, "tcp", netip.AddrPortFrom(ip, port).String())
}

func dialOK(ctx context.Context, ip netip.Addr, port uint16) bool {
	c, err := dial(ctx, ip, port)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func tlsOK(ctx context.Context, ip netip.Addr, name string) bool {
	c, err := dial(ctx, ip, 443)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(refTimeout))
	tc := tls.Client(c, &tls.Config{ServerName: name, InsecureSkipVerify: true})
	return tc.HandshakeContext(ctx) == nil
}

func httpOK(ctx context.Context, ip netip.Addr, name string) bool {
	tr := &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx, ip, 80) }}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+name+"/", nil)
	if err != nil {
		return false
	}
	resp, err := (&http.Client{Transport: tr, Timeout: refTimeout}).Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return err == nil
}

func starttlsOK(ctx context.Context, ip netip.Addr, name string) bool {
	c, err := dial(ctx, ip, 25)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(refTimeout))
	sc, err := smtp.NewClient(c, name)
	if err != nil {
		return false
	}
	if err := sc.Hello("reference.synthnet.invalid"); err != nil {
		return false
	}
	ok := sc.StartTLS(&tls.Config{ServerName: name, InsecureSkipVerify: true}) == nil
	sc.Quit()
	return ok
}

// ntpOK sends one NTPv4 client request and waits for a server reply.
func ntpOK(ctx context.Context, ip netip.Addr) bool {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", netip.AddrPortFrom(ip, 123).String())
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(refTimeout))
	req := make([]byte, 48)
	req[0] = 0x23 // LI 0, version 4, mode 3 (client)
	binary.BigEndian.PutUint32(req[40:], uint32(time.Now().Unix()+2208988800))
	if _, err := c.Write(req); err != nil {
		return false
	}
	resp := make([]byte, 128)
	n, err := c.Read(resp)
	return err == nil && n >= 48 && resp[0]&7 == 4 && !errors.Is(err, io.EOF)
}
