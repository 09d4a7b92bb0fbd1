// Package labcrawl_test crawls the lab with the real v6matrix binary, run inside the lab's
// vantage namespace exactly as `v6matrix demo` does, and checks the exported records against
// the scenario file and against the standard tools (dig, ping, nc, openssl, tracepath, addr6,
// mmdblookup) run from the same vantage, while tcpdump watches every packet the crawl sends.
package labcrawl_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/export"
	"github.com/v6matrix/v6matrix/internal/geoip"
	"github.com/v6matrix/v6matrix/internal/lab"
	"github.com/v6matrix/v6matrix/internal/metrics/metricstest"
	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/store/pgtest"
)

// prefix names the namespaces of this test's lab (unlike the demo's and internal/lab's).
const prefix = "v6mc-"

// ehloName is the crawler's EHLO name, as the demo sets it.
const ehloName = "crawler.v6matrix.lab"

// crawlRun is a finished crawl of the lab: where its records and inputs are.
type crawlRun struct {
	lab     *lab.Lab
	v       vantage
	records string // exported CSV and JSON Lines
	ca      string // the lab CA, PEM
	city    string // GeoIP fixtures
	asn     string
	capture string   // pcap of the vantage during the crawl
	metrics *scrapes // the crawl's /metrics, when crawled withMetrics
}

// withMetrics makes crawlLab serve and scrape the crawl's metrics (whose HTTP on the
// vantage's loopback the capture would count as the crawl's own packets).
const withMetrics = true

// needLab skips unless this machine can build the lab and has the tools the test compares with.
func needLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the lab crawl test needs root to create network namespaces; skipping")
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		t.Skipf("the lab crawl test needs network namespaces (unshare -n failed: %v); skipping", err)
	}
	for tool, pkg := range map[string]string{"nft": "nftables", "go": "golang", "tcpdump": "tcpdump",
		"dig": "dnsutils", "ping": "iputils-ping", "tracepath": "iputils-tracepath", "nc": "netcat-openbsd",
		"openssl": "openssl", "addr6": "ipv6toolkit", "mmdblookup": "mmdb-bin"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the lab crawl test needs %s (Debian package %s); skipping", tool, pkg)
		}
	}
}

// startLab brings this test's lab up (after removing one a crashed run may have left).
func startLab(t *testing.T) *lab.Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	state := filepath.Join(os.TempDir(), prefix+"lab")
	if err := lab.Down(ctx, prefix, state); err != nil {
		t.Fatalf("remove a leftover lab: %v", err)
	}
	l, err := lab.Up(ctx, lab.Config{Prefix: prefix, StateDir: state})
	if err != nil {
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Down(context.Background()); err != nil {
			t.Errorf("lab down: %v", err)
		}
	})
	return l
}

// buildBinary builds cmd/v6matrix into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, "v6matrix")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/v6matrix/v6matrix/cmd/v6matrix").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// readySignal is tcpdump's stderr: it closes ready once tcpdump says it is listening.
type readySignal struct {
	mu    sync.Mutex
	buf   strings.Builder
	ready chan struct{}
	once  sync.Once
}

func (r *readySignal) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf.Write(p)
	if strings.Contains(r.buf.String(), "listening on") {
		r.once.Do(func() { close(r.ready) })
	}
	return len(p), nil
}

func (r *readySignal) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// crawlLab runs one crawl of the lab, as the demo does, under tcpdump, then exports it.
// db is the crawl's --db: empty for a SQLite file of the test, or a PostgreSQL URL.
// metrics: scrape the crawl's /metrics meanwhile (watchMetrics).
func crawlLab(t *testing.T, db string, metrics bool) *crawlRun {
	t.Helper()
	l := startLab(t)
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	r := &crawlRun{lab: l, v: vantage{l}, records: filepath.Join(dir, "records"),
		ca: filepath.Join(dir, "lab-ca.pem"), capture: filepath.Join(dir, "crawl.pcap")}
	list := filepath.Join(dir, "lab-domains.csv")
	if db == "" {
		db = filepath.Join(dir, "v6matrix.db")
	}
	if err := os.WriteFile(list, l.Scenario().DomainList(), 0o644); err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(filepath.Join(l.StateDir(), "ca.pem"))
	if err != nil {
		t.Fatalf("lab CA: %v", err)
	}
	if err := os.WriteFile(r.ca, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	if r.city, r.asn, err = geoip.WriteFixtures(dir); err != nil {
		t.Fatal(err)
	}

	// tcpdump runs in the vantage for the whole crawl; -U writes each packet as it comes,
	// so stopping it (SIGKILL through the context) loses nothing already captured.
	dumpCtx, stopDump := context.WithCancel(context.Background())
	defer stopDump()
	dumpErr := &readySignal{ready: make(chan struct{})}
	dumpDone := make(chan error, 1)
	go func() {
		_, err := l.Exec(dumpCtx, []string{"tcpdump", "-i", "any", "-n", "-U", "-s", "256", "-w", r.capture},
			nil, nil, dumpErr)
		dumpDone <- err
	}()
	select {
	case <-dumpErr.ready:
	case err := <-dumpDone:
		t.Fatalf("tcpdump ended before listening: %v\n%s", err, dumpErr)
	case <-time.After(15 * time.Second):
		t.Fatalf("tcpdump did not start listening in 15 s\n%s", dumpErr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	argv := []string{bin, "crawl", "--db", db, "--resolver", l.ResolverAddr().String(),
		"--allow-ranges", l.Scenario().AllowRangesArg(), "--tls-roots", r.ca, "--geoip-city", r.city,
		"--geoip-asn", r.asn, "--ehlo-name", ehloName, list}
	if metrics {
		argv = append(argv[:len(argv)-1], append(append([]string{"--vantage", "lab"}, metricsArgs...), list)...)
	}
	var out metricstest.Log
	start := time.Now()
	type exit struct {
		code int
		err  error
	}
	exited := make(chan exit, 1)
	crawled := make(chan struct{})
	go func() {
		code, err := l.Exec(ctx, argv, nil, &out, &out)
		exited <- exit{code, err}
		close(crawled)
	}()
	var watchErr error
	if metrics {
		r.metrics, watchErr = watchMetrics(ctx, l, &out, crawled)
	}
	e := <-exited
	if e.err != nil || e.code != 0 {
		t.Fatalf("crawl in the vantage: exit %d, %v\n%s", e.code, e.err, out.String())
	}
	if watchErr != nil {
		t.Errorf("metrics: %v", watchErr)
	}
	t.Logf("crawl of %d lab domains took %v", len(l.Scenario().Domains), time.Since(start).Round(time.Second))
	time.Sleep(time.Second) // let the last replies reach the capture
	stopDump()
	select {
	case <-dumpDone:
	case <-time.After(15 * time.Second):
		t.Fatal("tcpdump did not stop")
	}

	st, err := store.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run, err := st.LatestRun(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := export.Write(ctx, st, run.ID, r.records, []string{"csv", "jsonl"}); err != nil {
		t.Fatalf("export: %v", err)
	}
	return r
}

// TestLabCrawl is the end-to-end check of issues 3 (8b), 4 (6) and 5 (5): one crawl of the
// lab, compared with the scenario and with the standard tools from the same vantage.
func TestLabCrawl(t *testing.T) {
	needLab(t)
	r := crawlLab(t, "", !withMetrics)
	docs, err := readJSONL(r.records)
	if err != nil {
		t.Fatal(err)
	}
	targets := probedTargets(docs)
	if len(targets) == 0 {
		t.Fatal("the crawl probed no address")
	}
	// The tool runs are slow (tracepath to a silent target takes ~80 s): they all start
	// now, concurrently, and each subtest waits for the results it compares.
	tools := startTools(r, targets)
	defer func() { tools.short.Wait(); tools.trace.Wait() }() // no tool outlives the lab

	t.Run("dns", func(t *testing.T) { checkDNS(t, r.lab.Scenario(), docs) })
	t.Run("dns csv", func(t *testing.T) { checkDNSCSV(t, r) })
	t.Run("probed", func(t *testing.T) { checkProbed(t, docs) })
	t.Run("capture", func(t *testing.T) { checkCapture(t, r) })
	t.Run("probes", func(t *testing.T) { checkProbes(t, r, tools, targets) })
	t.Run("path", func(t *testing.T) { checkPath(t, r, tools, targets) })
	t.Run("ipv6type", func(t *testing.T) { checkIPv6Type(t, r) })
	t.Run("geoip", func(t *testing.T) { checkGeoIP(t, r, docs) })
}

// TestLabCrawlPostgres crawls the lab into PostgreSQL, reached from the vantage's
// network namespace through the test cluster's Unix socket (a filesystem socket crosses
// network namespaces), and checks the records as TestLabCrawl does for what the store
// could change: the DNS results, what was probed, address types and GeoIP. It also
// scrapes the crawl's /metrics while it runs (checkMetrics: issue 11's "counters
// moving during a lab crawl", ending at the store's counts). (The probe
// results themselves do not pass through the store differently; TestLabCrawl compares
// them with the tools.)
func TestLabCrawlPostgres(t *testing.T) {
	needLab(t)
	dsn := pgtest.DSN(t)
	r := crawlLab(t, dsn, withMetrics)
	docs, err := readJSONL(r.records)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("metrics", func(t *testing.T) {
		st, err := store.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		run, err := st.LatestRun(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		checkMetrics(t, r, st, run)
	})
	t.Run("dns", func(t *testing.T) { checkDNS(t, r.lab.Scenario(), docs) })
	t.Run("probed", func(t *testing.T) { checkProbed(t, docs) })
	t.Run("ipv6type", func(t *testing.T) { checkIPv6Type(t, r) })
	t.Run("geoip", func(t *testing.T) { checkGeoIP(t, r, docs) })
}

func TestMain(m *testing.M) { pgtest.Main(m) }
