// Package metricstest reads a Prometheus /metrics page for tests: every sample's value
// by its series as exposed (name{label="value",...}) and by its bare name.
package metricstest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Samples are the values of one scrape: by series as exposed, e.g.
// v6matrix_probes_total{kind="geo",outcome="measured",vantage="lab"}, and by bare name
// (the last sample of that name, for series without labels).
type Samples map[string]float64

// Scrape reads url's text exposition with client (http.DefaultClient when nil).
func Scrape(ctx context.Context, client *http.Client, url string) (Samples, error) {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	out := Samples{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if strings.HasPrefix(line, "#") || i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			series := line[:i]
			name, _, _ := strings.Cut(series, "{")
			out[series], out[name] = v, v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	return out, nil
}

// Log collects a program's output, written by one goroutine and read by others, to
// find the metrics URL it logs (metrics.Serve's "url=http://ADDR/metrics").
type Log struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var urlRE = regexp.MustCompile(`url=(http://\S+/metrics)`)

// URL returns the metrics URL logged so far, or "".
func (l *Log) URL() string {
	if m := urlRE.FindStringSubmatch(l.String()); m != nil {
		return m[1]
	}
	return ""
}
