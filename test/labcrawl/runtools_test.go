package labcrawl_test

import (
	"context"
	"net/netip"
	"sync"
)

// res is one tool run: its parsed value, its output (for failure messages) and whether it ran.
type res[T any] struct {
	Val T
	Out string
	Err error
}

// tcpPorts are the ports the crawl connects to on every address.
var tcpPorts = []int{25, 80, 443}

// addrTools are the standard tools' views of one address. Every field is written by exactly
// one goroutine before the matching WaitGroup is done.
type addrTools struct {
	ping     res[pingResult]
	ptr      res[ptrView]
	tcp      [3]res[string] // tcpPorts
	tls443   *res[tlsResult]
	starttls *res[tlsResult]
	dns53    map[string]*res[string] // domain -> dig's SOA status at the address
	trace    res[traceResult]
}

// ptrView is dig's answer to a PTR query.
type ptrView struct {
	Status string
	Names  []string
}

// toolRuns are the tool runs of every target: short ones (ping, dig, nc, openssl) and the
// traces, each with its own WaitGroup.
type toolRuns struct {
	by           map[netip.Addr]*addrTools
	short, trace sync.WaitGroup
}

// crawlMaxHops is the crawl's default --path-max-hops (tracepath -m).
const crawlMaxHops = 30

// startTools starts every tool run in the vantage, concurrently but bounded.
func startTools(r *crawlRun, targets []*target) *toolRuns {
	ctx := context.Background()
	tr := &toolRuns{by: map[netip.Addr]*addrTools{}}
	shortSem, traceSem := make(chan struct{}, 8), make(chan struct{}, 32)
	goShort := func(f func()) {
		tr.short.Add(1)
		go func() {
			defer tr.short.Done()
			shortSem <- struct{}{}
			defer func() { <-shortSem }()
			f()
		}()
	}
	resolver := r.lab.ResolverAddr()
	for _, tg := range targets {
		at := &addrTools{dns53: map[string]*res[string]{}}
		tr.by[tg.Addr] = at
		a := tg.Addr
		goShort(func() {
			v, out, err := r.v.ping(ctx, a)
			at.ping = res[pingResult]{v, out, err}
		})
		goShort(func() {
			st, names, out, err := r.v.digPTR(ctx, resolver, a)
			at.ptr = res[ptrView]{ptrView{st, names}, out, err}
		})
		for i, port := range tcpPorts {
			goShort(func() {
				v, out, err := r.v.tcpState(ctx, a, port)
				at.tcp[i] = res[string]{v, out, err}
			})
		}
		// By the address's roles, not by what the crawl measured: a measurement the
		// crawl lost fails checkTLS.
		if len(tg.WWW) > 0 {
			at.tls443 = &res[tlsResult]{}
			host := tg.tlsHost(443)
			goShort(func() {
				v, out, err := r.v.openssl(ctx, a, 443, host, r.ca, ehloName, false)
				*at.tls443 = res[tlsResult]{v, out, err}
			})
		}
		if len(tg.MX) > 0 {
			at.starttls = &res[tlsResult]{}
			host := tg.tlsHost(25)
			goShort(func() {
				v, out, err := r.v.openssl(ctx, a, 25, host, r.ca, ehloName, true)
				*at.starttls = res[tlsResult]{v, out, err}
			})
		}
		for domain := range tg.NS {
			slot := &res[string]{}
			at.dns53[domain] = slot
			goShort(func() {
				v, out, err := r.v.digSOA(ctx, a, domain)
				*slot = res[string]{v, out, err}
			})
		}
		tr.trace.Add(1)
		go func() {
			defer tr.trace.Done()
			traceSem <- struct{}{}
			defer func() { <-traceSem }()
			v, out, err := r.v.tracepath(ctx, a, crawlMaxHops)
			at.trace = res[traceResult]{v, out, err}
		}()
	}
	return tr
}
