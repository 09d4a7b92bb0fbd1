// Package pgtest runs a throw-away PostgreSQL cluster (pgcluster) for tests: initdb into a
// temporary directory (as the postgres user when the test runs as root), a server
// that listens only on a Unix socket in that directory, one fresh database per test,
// and everything stopped and removed when the test binary ends. One cluster serves a
// whole test binary; call Main from TestMain.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/store/pgcluster"
)

var (
	mainCalled bool
	once       sync.Once
	shared     *pgcluster.Cluster
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
		if err := shared.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest: stop:", err)
		}
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
		msg := pgcluster.ErrMissing.Error()
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
	// name is "t" and a counter, never input.
	dsn, err := shared.CreateDB(ctx, name)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn
}

// initdbGlob is where initdb is looked for (a variable for the test of its absence).
var initdbGlob = pgcluster.InitdbGlob

// start starts the shared cluster, first removing those that test binaries killed before
// their end (a timeout's panic skips Main's cleanup) left behind.
func start() (*pgcluster.Cluster, error) {
	bin := pgcluster.BinDir(initdbGlob)
	if bin == "" {
		missing = true
		return nil, nil
	}
	reap(parentDir())
	return pgcluster.Start(bin, parentDir(), pgcluster.Throwaway)
}

// parentDir is where clusters are made: as root /tmp, which the postgres user reaches.
func parentDir() string {
	if os.Geteuid() == 0 {
		return "/tmp"
	}
	return ""
}

func reap(parent string) { pgcluster.Reap(pgcluster.BinDir(initdbGlob), parent) }
