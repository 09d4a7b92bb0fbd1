package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/v6matrix/v6matrix/internal/loadgen"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/summary"
	"github.com/v6matrix/v6matrix/internal/synthrun"
)

// cmdBenchWeb measures the website on a large synthetic store: it generates the runs
// (once; --db keeps them), serves them from a child `v6matrix serve`, loads it with
// concurrent clients and prints each route's latency percentiles, the ratio to a static
// file's (the HTTP stack's floor, measured in the same run), a bulk download's rate and
// the server's peak memory.
func cmdBenchWeb(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench-web", "[flags]", stdout)
	db := fs.String("db", "", "database with the synthetic runs: a SQLite `file` or a postgres:// URL (made when missing; default a temporary file)")
	n := fs.Int("domains", 1_000_000, "domains per synthetic run")
	runs := fs.Int("runs", 2, "synthetic runs (a month apart)")
	clients := fs.Int("clients", 50, "concurrent clients")
	duration := fs.Duration("duration", 30*time.Second, "how long the load lasts")
	bulk := fs.Bool("bulk", true, "end with a bulk download of ipv6domain.csv (its rate and the server's peak memory)")
	var lf logFlags
	lf.register(fs)
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usagef("bench-web takes no arguments, got %q", fs.Args())
	case *n < 100 || *n > 10_000_000:
		return usagef("--domains %d: want 100 to 10000000", *n)
	case *runs < 1 || *runs > 24:
		return usagef("--runs %d: want 1 to 24", *runs)
	case *clients < 1 || *clients > 1000:
		return usagef("--clients %d: want 1 to 1000", *clients)
	case *duration < time.Second || *duration > time.Hour:
		return usagef("--duration %v: want 1s to 1h", *duration)
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	if *db == "" {
		dir, err := os.MkdirTemp("", "v6matrix-bench-web-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*db = filepath.Join(dir, "web.db")
	}
	st, err := store.Open(ctx, *db)
	if err != nil {
		return err
	}
	have, err := st.ListRuns(ctx)
	if err != nil {
		st.Close()
		return err
	}
	for i := len(have); i < *runs; i++ {
		start := time.Now()
		id, err := synthrun.Fill(ctx, st, synthrun.Config{Domains: *n, Seed: uint64(i + 1), V6Boost: float64(2 * i),
			Started: time.Date(2026, time.Month(1+i), 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			st.Close()
			return err
		}
		filled := time.Since(start)
		if err := summary.Build(ctx, st, id, log); err != nil {
			st.Close()
			return err
		}
		fmt.Fprintf(stdout, "generated run %d: %d domains in %v, summarised in %v\n", id, *n, filled.Round(time.Second),
			(time.Since(start) - filled).Round(time.Second))
	}
	// A store of an older v6matrix: its runs' summaries or domain documents are
	// completed before the server starts (serve would, while being measured).
	if have, err = st.ListRuns(ctx); err != nil {
		st.Close()
		return err
	}
	for _, r := range have {
		start := time.Now()
		did, err := summary.Complete(ctx, st, r, log)
		if err != nil {
			st.Close()
			return err
		}
		if did {
			fmt.Fprintf(stdout, "completed the summary of run %d in %v\n", r.ID, time.Since(start).Round(time.Second))
		}
	}
	st.Close()

	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, exe, "serve", "--db", *db, "--listen", "127.0.0.1:0", "--log-level", "warn")
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	base, err := serverURL(out)
	if err != nil {
		return err
	}
	go io.Copy(io.Discard, out)
	fmt.Fprintf(stdout, "server %s (pid %d), %d clients for %v\n", base, cmd.Process.Pid, *clients, *duration)

	mid := *n / 2
	targets := []loadgen.Target{
		{Name: "static file (floor)", URL: "/static/site.css"},
		{Name: "/", URL: "/"},
		{Name: "/tlds", URL: "/tlds"},
		{Name: "/tld/com", URL: "/tld/com"},
		{Name: "/tld/com deep page", URL: fmt.Sprintf("/tld/com?after=%d:", mid)},
		{Name: "/tld/com by www", URL: "/tld/com?sort=www"},
		{Name: "/tld/de by ns desc", URL: "/tld/de?sort=ns&dir=desc"},
		{Name: "/map", URL: "/map"},
		{Name: "/country/US", URL: "/country/US"},
		{Name: "/asn/64501", URL: "/asn/64501"},
		{Name: "/domain/{name}", URL: fmt.Sprintf("/domain/d%07d.com", 1)},
		{Name: "/runs", URL: "/runs"},
		{Name: "/runs/{a}/diff/{b}", URL: fmt.Sprintf("/runs/1/diff/%d", max(*runs, 2))},
		{Name: "/search", URL: fmt.Sprintf("/search?q=d%04d", mid/1000)},
		{Name: "/about", URL: "/about"},
		{Name: "/badge/{domain}.svg", URL: "/badge/d0000001.com.svg"},
		{Name: "api runs", URL: "/api/v1/runs"},
		{Name: "api trend", URL: "/api/v1/trend"},
		{Name: "api tlds", URL: "/api/v1/runs/latest/tlds"},
		{Name: "api tlds csv", URL: "/api/v1/runs/latest/tlds?format=csv"},
		{Name: "api domains (500)", URL: "/api/v1/runs/latest/tlds/com/domains?limit=500"},
		{Name: "api domain", URL: fmt.Sprintf("/api/v1/runs/latest/domains/d%07d.com", 1)},
		{Name: "api countries", URL: "/api/v1/runs/latest/countries"},
		{Name: "api diff", URL: fmt.Sprintf("/api/v1/runs/1/diff/%d", max(*runs, 2))},
	}
	// The long tail: every request of these goes to another domain or page, as real
	// visitors spread over a million domains do; the cache cannot hold them.
	domain := func(k int) string {
		i := (k*7919)%*n + 1
		return fmt.Sprintf("d%07d.%s", i, synthrun.SuffixOf(i-1))
	}
	targets = append(targets,
		loadgen.Target{Name: "/domain/{name} (any)", Vary: func(k int) string { return base + "/domain/" + domain(k) }},
		loadgen.Target{Name: "api domain (any)", Vary: func(k int) string { return base + "/api/v1/runs/latest/domains/" + domain(k) }},
		loadgen.Target{Name: "/tld/com (any page)", Vary: func(k int) string { return base + fmt.Sprintf("/tld/com?after=%d:", (k*7919)%*n) }},
		loadgen.Target{Name: "/badge (any)", Vary: func(k int) string { return base + "/badge/" + domain(k) + ".svg" }},
		loadgen.Target{Name: "/search (any)", Vary: func(k int) string { return base + fmt.Sprintf("/search?q=d%05d", (k*7919)%(*n/100+1)) }},
	)
	for i := range targets {
		if targets[i].Vary == nil {
			targets[i].URL = base + targets[i].URL
		}
	}
	// Warm up (and build the diff once if there is only one run).
	if _, err := loadgen.Run(ctx, loadgen.Config{Clients: 2, Duration: 3 * time.Second}, targets); err != nil {
		return err
	}
	const metric = "v6matrix_http_request_duration_seconds"
	before, err := loadgen.Scrape(ctx, base+"/metrics", metric, "route")
	if err != nil {
		return err
	}
	res, err := loadgen.Run(ctx, loadgen.Config{Clients: *clients, Duration: *duration}, targets)
	if err != nil {
		return err
	}
	after, err := loadgen.Scrape(ctx, base+"/metrics", metric, "route")
	if err != nil {
		return err
	}
	floor := res[0].P95
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "route\trequests\terrors\tp50 ms\tp95 ms\tp99 ms\tmax ms\tp95/floor\t")
	for _, r := range res {
		errs := fmt.Sprint(r.Errors)
		if r.Errors > 0 {
			errs += fmt.Sprintf(" (HTTP %d)", r.FirstErrorStatus)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", r.Name, r.Requests, errs, ms(r.P50), ms(r.P95), ms(r.P99), ms(r.Max),
			float64(r.P95)/float64(max(floor, time.Microsecond)))
	}
	tw.Flush()
	fmt.Fprintln(stdout, "\nServer time per route (the server's own histogram, from the request read to the response written):")
	tw = tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "route\trequests\tp50 ms\tp95 ms\tp99 ms\t<= 50 ms\t")
	routes := make([]string, 0, len(after))
	for r := range after {
		routes = append(routes, r)
	}
	slices.Sort(routes)
	for _, r := range routes {
		h := after[r].Sub(before[r])
		if h.Count() == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f %%\t\n", r, h.Count(), 1000*h.Quantile(.5), 1000*h.Quantile(.95),
			1000*h.Quantile(.99), 100*h.Within(.05))
	}
	tw.Flush()

	if !*bulk {
		return nil
	}
	// A bulk download streams: its rate, and the server's peak memory before and after.
	status := fmt.Sprintf("/proc/%d/status", cmd.Process.Pid)
	rssBefore := peakRSS(status)
	start := time.Now()
	resp, err := http.Get(base + "/api/v1/runs/latest/export/ipv6domain.csv")
	if err != nil {
		return err
	}
	bytes, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(stdout, "bulk download ipv6domain.csv: %d bytes in %v (%.1f MB/s); server peak RSS %d MB before, %d MB after\n",
		bytes, took.Round(time.Millisecond), float64(bytes)/1e6/took.Seconds(), rssBefore>>10, peakRSS(status)>>10)
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// serverURL reads the child's "serving on URL" line.
func serverURL(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "serving on "); ok {
			u, _, _ = strings.Cut(u, " ")
			return strings.TrimSuffix(u, "/"), nil
		}
	}
	return "", errors.New("the server ended without saying where it serves")
}
