// Package pgtest runs a throw-away PostgreSQL cluster for tests: initdb into a
// temporary directory (as the postgres user when the test runs as root), a server
// that listens only on a Unix socket in that directory, one fresh database per test,
// and everything stopped and removed when the test binary ends. One cluster serves a
// whole test binary; call Main from TestMain.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// cluster is a running server.
type cluster struct {
	bin, dir, data, user string
	asUser               []string // the command prefix that runs a program as the cluster's owner
}

var (
	mainCalled bool
	once       sync.Once
	shared     *cluster
	startErr   error
	missing    bool
	dbs        atomic.Int64
)

// Main runs the tests, stops and removes the cluster and exits: a package's TestMain.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run runs the tests, then stops and removes the cluster if one was started, and
// returns the exit code: for a TestMain that does more than Main.
func Run(m *testing.M) int {
	mainCalled = true
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	return code
}

// DSN returns the postgres:// URL of a new, empty database. Without PostgreSQL
// installed the test fails under CI=true and is skipped elsewhere.
func DSN(t testing.TB) string {
	t.Helper()
	if !mainCalled {
		t.Fatal("pgtest: call pgtest.Main(m) or pgtest.Run(m) from the package's TestMain, so that the cluster is removed at the end")
	}
	once.Do(func() { shared, startErr = start() })
	if missing {
		msg := "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin nor on PATH): scripts/deps.sh installs it"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if startErr != nil {
		t.Fatalf("pgtest: %v", startErr)
	}
	name := fmt.Sprintf("t%d", dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, shared.dsn("postgres"))
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	// name is "t" and a counter, never input: safe in SQL text (CREATE DATABASE takes
	// no parameters).
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	return shared.dsn(name)
}

// dsn returns the URL of a database of the cluster, through its Unix socket.
func (c *cluster) dsn(db string) string {
	return "postgres:///" + db + "?host=" + c.dir + "&user=" + c.user
}

// initdbGlob is where Debian installs initdb (a variable for the test of its absence).
var initdbGlob = "/usr/lib/postgresql/*/bin/initdb"

// binDir finds the PostgreSQL programs: the newest /usr/lib/postgresql/N/bin, or the
// directory of initdb on PATH.
func binDir() string {
	ms, _ := filepath.Glob(initdbGlob)
	sort.Slice(ms, func(i, j int) bool { return version(ms[i]) > version(ms[j]) })
	if len(ms) > 0 {
		return filepath.Dir(ms[0])
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Dir(r)
		}
		return filepath.Dir(p)
	}
	return ""
}

func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

func start() (*cluster, error) {
	bin := binDir()
	if bin == "" {
		missing = true
		return nil, nil
	}
	// As root the cluster runs as postgres, which must reach the directory: /tmp rather
	// than a TMPDIR that may sit under /root. The path stays short, as a socket's must.
	parent := ""
	if os.Geteuid() == 0 {
		parent = "/tmp"
	}
	reap(parent)
	dir, err := os.MkdirTemp(parent, "v6matrix-pg-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &cluster{bin: bin, dir: dir, data: filepath.Join(dir, "data")}
	if os.Geteuid() == 0 {
		// initdb refuses to run as root: the cluster belongs to the postgres user.
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("running as root needs the postgres user to own the cluster: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		c.user, c.asUser = "postgres", []string{"runuser", "-u", "postgres", "--"}
	} else {
		u, err := user.Current()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		c.user = u.Username
	}
	if err := c.run("initdb", "-D", c.data, "-U", c.user, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// Socket only (no TCP listener at all), in the private directory; fsync off: the
	// data is thrown away.
	opts := "-c listen_addresses='' -k " + dir + " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	if err := c.run("pg_ctl", "-D", c.data, "-o", opts, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w\nserver log:\n%s", err, log)
	}
	return c, nil
}

// reap stops and removes the clusters that test binaries killed before their end (a
// timeout's panic skips Main's cleanup) left behind: those whose owner process is gone.
func reap(parent string) {
	if parent == "" {
		parent = os.TempDir()
	}
	pids, _ := filepath.Glob(filepath.Join(parent, "v6matrix-pg-*", "owner.pid"))
	for _, f := range pids {
		b, err := os.ReadFile(f)
		pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || perr != nil || pid <= 0 || syscall.Kill(pid, 0) != syscall.ESRCH {
			continue
		}
		dir := filepath.Dir(f)
		c := &cluster{bin: binDir(), dir: dir, data: filepath.Join(dir, "data")}
		if os.Geteuid() == 0 {
			c.asUser = []string{"runuser", "-u", "postgres", "--"}
		}
		if _, err := os.Stat(filepath.Join(c.data, "postmaster.pid")); err == nil && c.bin != "" {
			c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "-t", "30", "stop")
		}
		os.RemoveAll(dir)
	}
}

// run runs a PostgreSQL program as the cluster's owner.
func (c *cluster) run(prog string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append(append(append([]string{}, c.asUser...), filepath.Join(c.bin, prog)), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
	}
	return nil
}

func (c *cluster) stop() {
	if err := c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "-t", "30", "stop"); err != nil {
		fmt.Fprintln(os.Stderr, "pgtest: stop:", err)
	}
	os.RemoveAll(c.dir)
}
