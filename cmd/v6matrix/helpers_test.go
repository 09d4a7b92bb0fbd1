package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/dnssrv"
	"github.com/v6matrix/v6matrix/internal/store/pgtest"
)

// The v6matrix binary, built once for the tests that run it as a child process.
var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// cleanups run when every test is over (shared servers and directories).
var cleanups []func()

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	for _, f := range slices.Backward(cleanups) {
		f()
	}
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// v6matrixBinary builds cmd/v6matrix once per test process and returns its path.
func v6matrixBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			binErr = fmt.Errorf("the go tool is needed to build v6matrix: %w", err)
			return
		}
		if binDir, binErr = os.MkdirTemp("", "v6matrix-test-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "v6matrix")
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, goTool, "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// soaCounter wraps a DNS handler and counts the SOA queries for each synthetic apex
// d<n>.com: the crawl asks once per domain, so a count that grows after a resume
// shows a finished domain measured again.
type soaCounter struct {
	next  dns.Handler
	count []atomic.Int32 // index n: SOA queries for d<n>.com
}

func (c *soaCounter) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) == 1 && r.Question[0].Qtype == dns.TypeSOA {
		name := strings.ToLower(r.Question[0].Name)
		if rest, ok := strings.CutSuffix(strings.TrimPrefix(name, "d"), ".com."); ok && strings.HasPrefix(name, "d") {
			if n, err := strconv.Atoi(rest); err == nil && n > 0 && n < len(c.count) {
				c.count[n].Add(1)
			}
		}
	}
	c.next.ServeDNS(w, r)
}

// snapshot returns the counts of d1..d<n>.com (index 0 unused).
func (c *soaCounter) snapshot() []int32 {
	out := make([]int32, len(c.count))
	for i := range c.count {
		out[i] = c.count[i].Load()
	}
	return out
}

// syntheticServer serves the synthetic domains d1..d<n>.com on loopback, answering
// like a recursive resolver, until the test process ends (tests share it). It
// returns the server's host:port and its SOA query counter.
func syntheticServer(t *testing.T, n int) (string, *soaCounter) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cleanups = append(cleanups, cancel)
	h := &soaCounter{next: dnssrv.NewSyntheticServer("com", n), count: make([]atomic.Int32, n+1)}
	srv, err := dnssrv.Listen(ctx, "127.0.0.1:0", h)
	if err != nil {
		t.Fatal(err)
	}
	cleanups = append(cleanups, func() { srv.Close() })
	return srv.Addr().String(), h
}

// writeList writes a Tranco-style rank,domain CSV of the synthetic domains d1..d<n>.com
// to dir/list.csv, with a header, a comment, a duplicate (worse rank, dropped) and an
// invalid line (skipped). It returns the path and the number of distinct valid domains.
func writeList(t *testing.T, dir string, n int) (string, int) {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("rank,domain\n# synthetic list written by the test\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%d,d%d.com\n", i, i)
		if i == n/2 {
			b.WriteString("0,not a domain\n")
		}
	}
	fmt.Fprintf(&b, "%d,d1.com\n", n+1)
	path := filepath.Join(dir, "list.csv")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, n
}

// cliResult is what one child process run of v6matrix gave.
type cliResult struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

// runBinary runs the v6matrix binary to completion (bounded by 90 s: the reference crawls of 10,000 domains take 15-25 s on a loaded 2-core machine).
func runBinary(t *testing.T, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, v6matrixBinary(t), args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// On timeout, SIGQUIT makes the Go runtime print every goroutine's stack.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	r := cliResult{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("v6matrix %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("v6matrix %s: still running after 90 s\nstderr:\n%s", strings.Join(args, " "), r.stderr)
	}
	return r
}

// mustRun runs the binary and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) cliResult {
	t.Helper()
	r := runBinary(t, args...)
	if r.code != 0 {
		t.Fatalf("v6matrix %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// runRow is one row of `v6matrix runs`.
type runRow struct {
	State                    string
	Domains, Done, OK, Addrs string
}

// listRuns runs `v6matrix runs --db db` and returns its rows by run id.
func listRuns(t *testing.T, db string) map[string]runRow {
	t.Helper()
	r := mustRun(t, "runs", "--db", db)
	rows := map[string]runRow{}
	sc := bufio.NewScanner(strings.NewReader(r.stdout))
	for i := 0; sc.Scan(); i++ {
		f := strings.Fields(sc.Text())
		if i == 0 {
			want := []string{"RUN", "STARTED", "STATE", "LIST", "VANTAGE", "DOMAINS", "DONE", "OK", "ADDRESSES"}
			if !slices.Equal(f, want) {
				t.Fatalf("runs header %q, want %q", f, want)
			}
			continue
		}
		// RUN, STARTED (date and time), STATE, LIST, VANTAGE, then four counts.
		if len(f) != 10 {
			t.Fatalf("runs row %q: want 10 fields", sc.Text())
		}
		rows[f[0]] = runRow{State: f[3], Domains: f[6], Done: f[7], OK: f[8], Addrs: f[9]}
	}
	return rows
}

// sameFiles reports how the files of dir b differ from those of dir a: names, then
// the first differing line of each file.
func sameFiles(t *testing.T, a, b string) {
	t.Helper()
	names := func(dir string) []string {
		es, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		return out
	}
	na, nb := names(a), names(b)
	if !slices.Equal(na, nb) {
		t.Fatalf("files differ: %s has %q, %s has %q", a, na, b, nb)
	}
	for _, n := range na {
		da, err := os.ReadFile(filepath.Join(a, n))
		if err != nil {
			t.Fatal(err)
		}
		db, err := os.ReadFile(filepath.Join(b, n))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(da, db) {
			continue
		}
		la, lb := strings.Split(string(da), "\n"), strings.Split(string(db), "\n")
		for i := range max(len(la), len(lb)) {
			var x, y string
			if i < len(la) {
				x = la[i]
			}
			if i < len(lb) {
				y = lb[i]
			}
			if x != y {
				t.Errorf("%s differs (%d and %d lines) first at line %d:\n  uninterrupted: %q\n  resumed:       %q", n, len(la), len(lb), i+1, x, y)
				break
			}
		}
	}
}
