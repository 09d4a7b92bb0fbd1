// Package pgcluster runs a throw-away PostgreSQL cluster: initdb into a temporary
// directory (as the postgres user when run as root), a server that listens only on a
// Unix socket in that directory (reachable from any network namespace of the machine),
// stopped and removed by Stop. Tests use it through pgtest; bench-net runs its
// distributed benchmark on it.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// InitdbGlob is where Debian installs initdb.
const InitdbGlob = "/usr/lib/postgresql/*/bin/initdb"

// ErrMissing is Start's error when no PostgreSQL is installed.
var ErrMissing = errors.New("PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin nor on PATH): scripts/deps.sh installs it")

// Cluster is a running server.
type Cluster struct {
	// Dir holds the data directory, the server's log and its socket.
	Dir  string
	bin  string
	data string
	// User is the role the cluster trusts (its owner).
	User   string
	asUser []string // the command prefix that runs a program as the cluster's owner
}

// Throwaway are the server settings of a cluster whose data is thrown away: no fsync.
const Throwaway = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"

// BinDir finds the PostgreSQL programs: the newest directory matching glob (an
// initdb path pattern, e.g. InitdbGlob), or the directory of initdb on PATH; "" when
// there is none.
func BinDir(glob string) string {
	ms, _ := filepath.Glob(glob)
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

// Start creates and starts a cluster with the programs in bin (BinDir; "" is
// ErrMissing) in a new directory under parent ("" is the temporary directory; as root
// /tmp, which the postgres user reaches). settings are extra postgres options (e.g.
// Throwaway, "-c shared_preload_libraries=..."). The directory names the calling
// process as its owner, so that Reap removes it once that process is gone.
func Start(bin, parent, settings string) (*Cluster, error) {
	if bin == "" {
		return nil, ErrMissing
	}
	if parent == "" && os.Geteuid() == 0 {
		parent = "/tmp"
	}
	// The path stays short, as a socket's must.
	dir, err := os.MkdirTemp(parent, "v6matrix-pg-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &Cluster{bin: bin, Dir: dir, data: filepath.Join(dir, "data")}
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
		c.User, c.asUser = "postgres", []string{"runuser", "-u", "postgres", "--"}
	} else {
		u, err := user.Current()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		c.User = u.Username
	}
	if err := c.run("initdb", "-D", c.data, "-U", c.User, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// Socket only (no TCP listener at all), in the private directory.
	opts := "-c listen_addresses='' -k " + dir + " " + settings
	if err := c.run("pg_ctl", "-D", c.data, "-o", opts, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%w\nserver log:\n%s", err, log)
	}
	return c, nil
}

// DSN returns the postgres:// URL of a database of the cluster, through its Unix socket.
func (c *Cluster) DSN(db string) string {
	return "postgres:///" + db + "?host=" + c.Dir + "&user=" + c.User
}

// CreateDB creates an empty database; name must be a plain SQL identifier chosen by the
// caller, never input (CREATE DATABASE takes no parameters).
func (c *Cluster) CreateDB(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return c.DSN(name), nil
}

// PID returns the postmaster's process id (0 when unknown).
func (c *Cluster) PID() int {
	b, err := os.ReadFile(filepath.Join(c.data, "postmaster.pid"))
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return pid
}

// Reap stops and removes the clusters under parent ("" is the temporary directory)
// that processes killed before their end left behind: those whose owner is gone.
func Reap(bin, parent string) {
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
		c := &Cluster{bin: bin, Dir: dir, data: filepath.Join(dir, "data")}
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
func (c *Cluster) run(prog string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	argv := append(append(append([]string{}, c.asUser...), filepath.Join(c.bin, prog)), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, out)
	}
	return nil
}

// Stop stops the server at once and removes its directory.
func (c *Cluster) Stop() error {
	err := c.run("pg_ctl", "-D", c.data, "-m", "immediate", "-w", "-t", "30", "stop")
	return errors.Join(err, os.RemoveAll(c.Dir))
}
