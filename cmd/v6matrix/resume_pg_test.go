package main

import (
	"syscall"
	"testing"

	"github.com/v6matrix/v6matrix/internal/store"
	"github.com/v6matrix/v6matrix/internal/store/pgtest"
)

// TestResumeAfterKillPostgres is TestResumeAfterKill's mid-crawl case on PostgreSQL: a
// crawl into a database URL killed with SIGKILL part way, then resumed, measures no
// saved domain again and exports byte for byte what the uninterrupted SQLite crawl did.
func TestResumeAfterKillPostgres(t *testing.T) {
	r := uninterrupted(t)
	dsn := pgtest.DSN(t)
	createDB(t, dsn)
	c := startCrawl(t, append(crawlFlags(dsn, r.resolver, r.exclude), r.list)...)
	at := r.domains / 3
	waitDone(t, c, dsn, at)
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.exited
	state, done, total := runState(t, dsn)
	t.Logf("killed at %d/%d done (state %s)", done, total, state)
	if done < at || done >= total || total != r.domains || state != store.RunCrawling {
		t.Fatalf("kill landed at %d/%d done, state %s: want mid-crawl past %d of %d, crawling", done, total, state, at, r.domains)
	}
	resumeAndCompare(t, r, dsn, []string{"crawl", "--db", dsn, "--resume", "--resolver", r.resolver, "--quiet"},
		doneDomains(t, dsn, r.domains), r.soa.snapshot())
}
