package pgtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { Main(m) }

// TestDSN: a database of the cluster, reached through the socket only.
func TestDSN(t *testing.T) {
	dsn := DSN(t)
	if !strings.HasPrefix(dsn, "postgres:///t") || !strings.Contains(dsn, "?host=/") {
		t.Errorf("DSN %q: want a socket URL", dsn)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var listen string
	if err := c.QueryRow(ctx, `SHOW listen_addresses`).Scan(&listen); err != nil || listen != "" {
		t.Errorf("listen_addresses = %q, %v; want none (socket only)", listen, err)
	}
	if other := DSN(t); other == dsn {
		t.Errorf("two tests got the same database %s", dsn)
	}
}

// TestMissing runs this test binary without PostgreSQL in sight: under CI=true the test
// that wants it fails saying what installs it, elsewhere it is skipped.
func TestMissing(t *testing.T) {
	if os.Getenv("PGTEST_MISSING") == "1" {
		initdbGlob = "/nonexistent/*/bin/initdb"
		os.Setenv("PATH", "/nonexistent")
		DSN(t)
		return
	}
	for _, ci := range []string{"true", ""} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestMissing$", "-test.v")
		cmd.Env = append(os.Environ(), "PGTEST_MISSING=1", "CI="+ci)
		out, err := cmd.CombinedOutput()
		msg := "scripts/deps.sh installs it"
		switch {
		case !strings.Contains(string(out), msg):
			t.Errorf("CI=%q: output does not say %q:\n%s", ci, msg, out)
		case ci == "true" && (err == nil || !strings.Contains(string(out), "--- FAIL")):
			t.Errorf("CI=true: want a failure, got %v:\n%s", err, out)
		case ci == "" && (err != nil || !strings.Contains(string(out), "--- SKIP")):
			t.Errorf("outside CI: want a skip, got %v:\n%s", err, out)
		}
	}
}

// TestReap: a test binary killed with its cluster running leaves it behind; the next
// start stops and removes it.
func TestReap(t *testing.T) {
	if os.Getenv("PGTEST_ORPHAN") == "1" {
		DSN(t)
		os.Stdout.WriteString("cluster=" + shared.Dir + "\n")
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestReap$")
	cmd.Env = append(os.Environ(), "PGTEST_ORPHAN=1")
	out, _ := cmd.CombinedOutput()
	_, dir, ok := strings.Cut(strings.TrimSpace(string(out)), "cluster=")
	if !ok {
		t.Fatalf("the child did not start a cluster:\n%s", out)
	}
	pidFile := filepath.Join(dir, "data", "postmaster.pid")
	if _, err := os.Stat(pidFile); err != nil {
		t.Fatalf("no server left behind by the killed child: %v", err)
	}
	b, _ := os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	reap(filepath.Dir(dir))
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still there after reap: %v", dir, err)
	}
	if pid > 0 && !exited(pid) {
		t.Errorf("server %d still running after reap", pid)
	}
}

// exited tells whether a process is gone or a zombie (pg_ctl stop -w waits for the
// server's pid file, not for the process to be reaped by its new parent).
func exited(pid int) bool {
	for range 50 {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		if _, rest, ok := strings.Cut(string(b), ") "); ok && strings.HasPrefix(rest, "Z") {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}
