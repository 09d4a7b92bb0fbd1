package synthnet

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/probe/tcpport"
	"github.com/v6matrix/v6matrix/internal/store"
)

// needRoot skips without root, network namespaces or NSD; under CI=true it fails instead.
func needRoot(t *testing.T) {
	t.Helper()
	skip := t.Skip
	if os.Getenv("CI") == "true" {
		skip = t.Fatal
	}
	if os.Geteuid() != 0 {
		skip("the synthetic Internet needs root to create network namespaces; skipping (run as root under flock /tmp/v6matrix-lab.lock)")
		return
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		skip("the synthetic Internet needs network namespaces (unshare -n: " + err.Error() + "); skipping")
		return
	}
	if _, err := os.Stat(nsdPath); err != nil {
		skip("the synthetic Internet needs NSD (apt-get install nsd); skipping")
	}
}

// buildSelf builds v6matrix into a temporary directory, which it returns with the binary.
func buildSelf(t *testing.T) (dir, bin string) {
	t.Helper()
	dir = t.TempDir()
	bin = filepath.Join(dir, "v6matrix")
	build := exec.Command("go", "build", "-o", bin, "../../cmd/v6matrix")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build v6matrix: %v\n%s", err, out)
	}
	return dir, bin
}

// lifted are the crawl flags of a benchmark with politeness lifted.
var lifted = []string{"--rate", "inf", "--addr-gap", "0", "--net-gap", "0", "--port-window", "0", "--workers", "1024", "--ns-check-rate", "inf"}

// TestCrawlSyntheticInternet builds a synthetic Internet of 200 domains, crawls it with
// v6matrix crawl (politeness lifted) and the reference crawler, and checks that the crawl
// found every domain's addresses and that the probes were answered: every address's
// TCP 80 open and its ping answered. Run it under flock /tmp/v6matrix-lab.lock.
func TestCrawlSyntheticInternet(t *testing.T) {
	needRoot(t)
	dir, bin := buildSelf(t)
	data := Data{Domains: 200}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	prefix := "snt" + strconv.Itoa(os.Getpid()%10_000_000) + "-"
	rep, err := Run(ctx, Config{Data: data, Dir: dir, Self: bin, Prefix: prefix, Crawl: true, Reference: true,
		CrawlArgs:      lifted,
		RefConcurrency: 50, RefWorkers: 256, Logger: log})
	if err != nil {
		t.Fatalf("bench: %v", err)
	}
	if left, _ := filepath.Glob("/run/netns/" + prefix + "*"); len(left) > 0 {
		t.Errorf("namespaces left after the bench: %v", left)
	}
	if len(rep.Runs) != 2 {
		t.Fatalf("%d runs, want 2", len(rep.Runs))
	}
	for _, r := range rep.Runs {
		var sent uint64
		for _, n := range r.Sent {
			sent += n
		}
		if r.Wall <= 0 || r.CPU <= 0 || r.PeakRSSKiB <= 0 || sent == 0 {
			t.Errorf("run %s: wall %v, CPU %v, peak RSS %d KiB, %d packets: want all above 0", r.Name, r.Wall, r.CPU, r.PeakRSSKiB, sent)
		}
	}
	var ref RefReport
	if err := json.Unmarshal(rep.Runs[1].Stdout, &ref); err != nil {
		t.Fatalf("reference report %q: %v", rep.Runs[1].Stdout, err)
	}
	if ref.Domains != int64(data.Domains) || ref.Addresses != int64(rep.Addresses) {
		t.Errorf("reference: %d domains, %d addresses; want %d, %d (report %s)", ref.Domains, ref.Addresses, data.Domains, rep.Addresses, rep.Runs[1].Stdout)
	}
	checkCrawl(t, rep.CrawlDB, data)
}

// checkCrawl compares the crawl's addresses per domain with the data, and checks TCP 80
// and ping of every address.
func checkCrawl(t *testing.T, db string, data Data) {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLiteReadOnly(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run, err := st.LatestRun(ctx)
	if err != nil {
		t.Fatal(err)
	}
	domains := 0
	probed := map[netip.Addr]bool{}
	err = st.Details(ctx, run.ID, "", func(d store.Detail) error {
		domains++
		var got []netip.Addr
		for _, ref := range d.Hosts {
			h := d.HostsByName[ref.Name]
			got = append(append(got, h.V4...), h.V6...)
		}
		want := data.Addrs(d.Rank)
		slices.SortFunc(got, netip.Addr.Compare)
		slices.SortFunc(want, netip.Addr.Compare)
		if got, want = slices.Compact(got), slices.Compact(want); !slices.Equal(got, want) {
			t.Errorf("%s: addresses %v, want %v", d.Name, got, want)
		}
		for _, ip := range got {
			a, ok := d.Addrs[ip]
			if probed[ip] || !ok {
				continue
			}
			probed[ip] = true
			if a.TCP80 == nil || a.TCP80.State != tcpport.StateOpen {
				t.Errorf("%s: TCP 80 %+v, want open", ip, a.TCP80)
			}
			if a.Ping == nil || a.Ping.Received == 0 {
				t.Errorf("%s: ping %+v, want answered", ip, a.Ping)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if domains != data.Domains || len(probed) != data.CountAddrs() {
		t.Errorf("crawl: %d domains, %d addresses probed; want %d, %d", domains, len(probed), data.Domains, data.CountAddrs())
	}
}
