// Package loadgen is the website's load generator: a fixed number of clients, each
// requesting the targets in turn for a bounded time, and per target the latency
// percentiles. It measures what a client sees on loopback, an upper bound of the
// server's own time.
package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Target is one URL of the mix, under a name for the report. With Vary, the n-th
// request of the target goes to Vary(n) instead (a long tail of pages, which no
// cache holds).
type Target struct {
	Name, URL string
	Vary      func(n int) string
}

// Result is one target's figures.
type Result struct {
	Target
	Requests         int
	Errors           int // transport errors and non-2xx answers
	P50, P95, P99    time.Duration
	Max              time.Duration
	FirstErrorStatus int
}

// Config bounds a run.
type Config struct {
	Clients  int
	Duration time.Duration
	Client   *http.Client
}

// Run sends the targets, round robin per client (each client starts at another
// target), until the duration has passed.
func Run(ctx context.Context, cfg Config, targets []Target) ([]Result, error) {
	if cfg.Clients < 1 || len(targets) == 0 || cfg.Duration <= 0 {
		return nil, fmt.Errorf("loadgen: want clients, targets and a duration")
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 30 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Clients, DisableCompression: true}}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	type sample struct {
		target int
		d      time.Duration
		status int
		err    bool
	}
	samples := make([][]sample, cfg.Clients)
	var sent sync.WaitGroup
	for c := range cfg.Clients {
		sent.Add(1)
		go func() {
			defer sent.Done()
			for i := c; ctx.Err() == nil; i++ {
				ti := i % len(targets)
				u := targets[ti].URL
				if v := targets[ti].Vary; v != nil {
					u = v(i/len(targets)*cfg.Clients + c)
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
				if err != nil {
					return
				}
				start := time.Now()
				resp, err := cfg.Client.Do(req)
				s := sample{target: ti}
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					s.status = resp.StatusCode
				}
				s.d = time.Since(start)
				if ctx.Err() != nil {
					return // cut by the end of the run: not a sample
				}
				s.err = err != nil || s.status < 200 || s.status > 299
				samples[c] = append(samples[c], s)
			}
		}()
	}
	sent.Wait()
	out := make([]Result, len(targets))
	lat := make([][]time.Duration, len(targets))
	for i, t := range targets {
		out[i].Target = t
	}
	for _, ss := range samples {
		for _, s := range ss {
			r := &out[s.target]
			r.Requests++
			if s.err {
				r.Errors++
				if r.FirstErrorStatus == 0 {
					r.FirstErrorStatus = s.status
				}
			}
			lat[s.target] = append(lat[s.target], s.d)
		}
	}
	for i := range out {
		l := lat[i]
		if len(l) == 0 {
			continue
		}
		slices.Sort(l)
		pick := func(p float64) time.Duration { return l[min(len(l)-1, int(p*float64(len(l))))] }
		out[i].P50, out[i].P95, out[i].P99, out[i].Max = pick(0.50), pick(0.95), pick(0.99), l[len(l)-1]
	}
	return out, nil
}
