// Package metrics exposes a crawl's progress to Prometheus: the counters the run
// already keeps (internal/run.Progress, the DNS client's query count) read when
// scraped, so that measuring costs the crawl nothing between scrapes.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/run"
)

// Crawl registers the gauges and counters of one crawl process with reg, each labelled
// with the vantage.
func Crawl(reg prometheus.Registerer, p *run.Progress, client *resolve.Client, vantage string) error {
	start := time.Now()
	bound := func() float64 { lb, _ := p.Probe.Bound(); return lb.Seconds() }
	type series struct {
		name, help string
		counter    bool
		read       func() float64
	}
	all := []series{
		{"v6matrix_dns_domains_done_total", "domains measured and saved by the DNS stage", true, func() float64 { return float64(p.DNS.Done.Load()) }},
		{"v6matrix_dns_domains_pending", "domains the DNS stage has still to measure", false, func() float64 { return float64(max(p.DNS.Total.Load()-p.DNS.Done.Load(), 0)) }},
		{"v6matrix_dns_domains_errors_total", "domains whose status is not ok (nxdomain, timeout, ...)", true, func() float64 { return float64(p.DNS.Errors.Load()) }},
		{"v6matrix_dns_queries_total", "DNS queries sent by the DNS stage's client", true, func() float64 { return float64(client.Queries()) }},
		{"v6matrix_probe_addresses", "unique addresses of the run known to the probe stage", false, func() float64 { return float64(p.Probe.Addresses.Load()) }},
		{"v6matrix_probe_addresses_skipped", "addresses not probed (special-purpose, opted out)", false, func() float64 { return float64(p.Probe.Skipped.Load()) }},
		{"v6matrix_probes_done_total", "probes finished", true, func() float64 { return float64(p.Probe.Done.Load()) }},
		{"v6matrix_probes_pending", "probes still to run", false, func() float64 { return float64(max(p.Probe.Total.Load()-p.Probe.Done.Load(), 0)) }},
		{"v6matrix_probes_failed_total", "probes that could not run (local errors)", true, func() float64 { return float64(p.Probe.Failed.Load()) }},
		{"v6matrix_probes_in_flight", "probes running now", false, func() float64 { return float64(p.Probe.InFlight.Load()) }},
		{"v6matrix_probe_efficiency_ratio", "the lower bound over the probes' wall time so far (until they end): 1 is as fast as the politeness limits allow", false, p.Probe.Efficiency},
		{"v6matrix_probe_lower_bound_seconds", "the politeness lower bound of the probes' wall time for the addresses known so far (docs/POLITENESS.md)", false, bound},
		{"v6matrix_crawl_elapsed_seconds", "time since this crawl process started its run", false, func() float64 { return time.Since(start).Seconds() }},
	}
	var errs []error
	for _, kind := range result.Kinds {
		if kind == result.KindSkipped {
			continue // not a probe: v6matrix_probe_addresses_skipped counts them
		}
		for _, outcome := range []string{"measured", "failed"} {
			read := func() float64 {
				m, f := p.Probe.ByKind(kind)
				if outcome == "measured" {
					return float64(m)
				}
				return float64(f)
			}
			errs = append(errs, reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "v6matrix_probes_total",
				Help:        "probes finished, by kind and outcome (measured: a result was stored; failed: the probe could not run)",
				ConstLabels: prometheus.Labels{"vantage": vantage, "kind": kind, "outcome": outcome}}, read)))
		}
	}
	for _, s := range all {
		var c prometheus.Collector
		if s.counter {
			c = prometheus.NewCounterFunc(prometheus.CounterOpts{Name: s.name, Help: s.help, ConstLabels: prometheus.Labels{"vantage": vantage}}, s.read)
		} else {
			c = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: s.name, Help: s.help, ConstLabels: prometheus.Labels{"vantage": vantage}}, s.read)
		}
		errs = append(errs, reg.Register(c))
	}
	return errors.Join(errs...)
}

// NewRegistry returns a registry with the Go runtime and process collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Serve serves reg on http://addr/metrics until ctx ends. It returns the address it
// listens on (addr may have port 0) once listening.
func Serve(ctx context.Context, addr string, reg *prometheus.Registry, log *slog.Logger) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server stopped", "err", err)
		}
	}()
	context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	log.Info("metrics for Prometheus", "url", "http://"+ln.Addr().String()+"/metrics")
	return ln.Addr(), nil
}
