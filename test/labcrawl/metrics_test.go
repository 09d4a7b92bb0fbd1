package labcrawl_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/lab"
	"github.com/v6matrix/v6matrix/internal/metrics/metricstest"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// metricsArgs make the crawl serve its metrics on the vantage's loopback, and keep
// serving them a while after the run, so that the test's last scrape sees the final
// counts.
var metricsArgs = []string{"--metrics-listen", "127.0.0.1:0", "--metrics-linger", "10s"}

// scrapes are a crawl's /metrics read while it ran: during the run, and the final one
// (after the run's summary line, while the metrics linger).
type scrapes struct {
	during []metricstest.Samples
	final  metricstest.Samples
	log    string // the crawl's output
}

var (
	runDone = regexp.MustCompile(`(?m)^run \d+: `)
)

// watchMetrics scrapes the crawl's /metrics every 100 ms until done closes or the crawl
// prints its summary line (then once more: the final counts), from inside the vantage:
// the crawl listens on the vantage's loopback, which the host cannot reach.
func watchMetrics(ctx context.Context, l *lab.Lab, out *metricstest.Log, done <-chan struct{}) (*scrapes, error) {
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var c net.Conn
			err := l.RunInVantage(func() error {
				var err error
				c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
				return err
			})
			return c, err
		}}}
	s := &scrapes{}
	url := ""
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			s.log = out.String()
			return s, fmt.Errorf("the crawl ended before its final metrics were scraped")
		case <-ctx.Done():
			return s, ctx.Err()
		case <-tick.C:
		}
		log := out.String()
		if url == "" {
			url = out.URL()
			continue
		}
		final := runDone.MatchString(log)
		m, err := metricstest.Scrape(ctx, client, url)
		switch {
		case err != nil && final:
			return s, fmt.Errorf("final scrape: %w", err)
		case err != nil:
			continue // not yet listening, or a scrape refused under load: the next one counts
		case final:
			s.final, s.log = m, log
			return s, nil
		default:
			s.during = append(s.during, m)
		}
	}
}

// probeSeries names the probes_total series of kind and outcome for the lab's vantage.
func probeSeries(kind, outcome string) string {
	return fmt.Sprintf(`v6matrix_probes_total{kind=%q,outcome=%q,vantage="lab"}`, kind, outcome)
}

// checkMetrics: the counters scraped during the crawl only grow, they moved (a scrape
// saw domains, probes and the lower bound part way), and the final scrape holds the
// run's final counts: domains and measurements per kind as the store has them, nothing
// pending or in flight, the lower bound and efficiency the crawl logged.
func checkMetrics(t *testing.T, r *crawlRun, st store.Store, run store.Run) {
	t.Helper()
	m := r.metrics
	if m == nil || m.final == nil {
		t.Fatal("no final scrape")
	}
	t.Logf("%d scrapes during the crawl", len(m.during))
	if len(m.during) < 3 {
		t.Fatalf("%d scrapes during the crawl, want 3 or more", len(m.during))
	}
	all := append(m.during, m.final)
	for name := range m.final {
		if !strings.HasSuffix(strings.SplitN(name, "{", 2)[0], "_total") || !strings.HasPrefix(name, "v6matrix_") {
			continue
		}
		for i := 1; i < len(all); i++ {
			if all[i][name] < all[i-1][name] {
				t.Errorf("counter %s went down from %v to %v (scrape %d)", name, all[i-1][name], all[i][name], i)
				break
			}
		}
	}
	// Moving: some scrape saw each of these part way, above zero and below its end.
	final := m.final
	for _, name := range []string{"v6matrix_dns_domains_done_total", "v6matrix_dns_queries_total", "v6matrix_probes_done_total",
		"v6matrix_probe_lower_bound_seconds", probeSeries(result.KindPing, "measured"), probeSeries(result.KindTCP443, "measured")} {
		moving := false
		for _, s := range m.during {
			moving = moving || (s[name] > 0 && s[name] < final[name])
		}
		if !moving {
			t.Errorf("%s: no scrape saw it between 0 and its final %v", name, final[name])
		}
	}
	inFlight := false
	for _, s := range m.during {
		inFlight = inFlight || s["v6matrix_probes_in_flight"] > 0
	}
	if !inFlight {
		t.Error("no scrape saw a probe in flight")
	}

	// The end: the store's counts.
	ctx := context.Background()
	counts, err := st.Counts(ctx, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	measured, err := st.Measured(ctx, run.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	checked, err := st.NSChecked(ctx, run.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	byKind := metricstest.Samples{}
	for _, kinds := range measured {
		for k := range kinds {
			byKind[k]++
		}
	}
	for _, addrs := range checked {
		byKind[result.KindDNS53] += float64(len(addrs))
	}
	want := metricstest.Samples{
		"v6matrix_dns_domains_done_total": float64(counts.Done),
		"v6matrix_dns_domains_pending":    0,
		"v6matrix_probes_pending":         0,
		"v6matrix_probes_in_flight":       0,
	}
	var done float64
	for _, k := range result.Kinds {
		if k == result.KindSkipped {
			want["v6matrix_probe_addresses_skipped"] = byKind[k]
			if _, ok := final[probeSeries(k, "measured")]; ok {
				t.Errorf("%s is exposed: skipped addresses are not probes", probeSeries(k, "measured"))
			}
			continue
		}
		want[probeSeries(k, "measured")] = byKind[k]
		done += final[probeSeries(k, "measured")] + final[probeSeries(k, "failed")]
	}
	want["v6matrix_probes_done_total"] = done
	for name, v := range want {
		if got, ok := final[name]; !ok || got != v {
			t.Errorf("final %s = %v (present %v), want %v", name, got, ok, v)
		}
	}
	if counts.Done != len(r.lab.Scenario().Domains) || byKind[result.KindTCP443] == 0 || byKind[result.KindDNS53] == 0 {
		t.Errorf("store: %d domains done (scenario %d), %v tcp443 and %v dns53 results", counts.Done,
			len(r.lab.Scenario().Domains), byKind[result.KindTCP443], byKind[result.KindDNS53])
	}
	if q := final["v6matrix_dns_queries_total"]; q < float64(counts.Done) {
		t.Errorf("final queries %v, fewer than the %d domains", q, counts.Done)
	}
	// The lower bound and efficiency the crawl logged when the probes ended.
	line := regexp.MustCompile(`probe stage: probes done.* lower_bound=(\S+) .*efficiency=(\S+)`).FindStringSubmatch(m.log)
	if line == nil {
		t.Fatalf("no 'probes done' log line:\n%s", m.log)
	}
	lb, err := time.ParseDuration(line[1])
	if err != nil {
		t.Fatal(err)
	}
	if got := final["v6matrix_probe_lower_bound_seconds"]; got <= 0 || time.Duration(got*1e9).Round(time.Millisecond) != lb {
		t.Errorf("final lower bound %vs, the log says %v", got, lb)
	}
	if got := fmt.Sprintf("%.2f", final["v6matrix_probe_efficiency_ratio"]); got != line[2] {
		t.Errorf("final efficiency %s, the log says %s", got, line[2])
	}
}
