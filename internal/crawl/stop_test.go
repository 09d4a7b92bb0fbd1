package crawl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/v6matrix/v6matrix/internal/dnssrv"
	"github.com/v6matrix/v6matrix/internal/resolve"
	"github.com/v6matrix/v6matrix/internal/store"
)

// failingStore fails every Save after the first ok ones.
type failingStore struct {
	store.Store
	ok    int
	saves atomic.Int32
}

var errDiskFull = errors.New("disk full")

func (f *failingStore) Save(ctx context.Context, run int64, b store.Batch) error {
	if int(f.saves.Add(1)) > f.ok {
		return errDiskFull
	}
	return f.Store.Save(ctx, run, b)
}

// TestSaveErrorStops fails the second batch's save of a 2,000-domain crawl: the crawl
// returns that error, the first batch stays saved, and it stops querying instead of
// resolving every remaining domain to throw the answers away.
func TestSaveErrorStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 2000
	syn := dnssrv.NewSyntheticServer("com", n)
	srv, err := dnssrv.Listen(ctx, "127.0.0.1:0", syn)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	sq, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "stop.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	run, err := sq.CreateRun(ctx, store.Run{Started: time.Now(), ListName: "l", State: store.RunLoading})
	if err != nil {
		t.Fatal(err)
	}
	var list strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&list, "%d,d%d.com\n", i, i)
	}
	if _, err := Load(ctx, sq, run, strings.NewReader(list.String()), "l", LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	rc := resolve.DefaultConfig()
	rc.Servers = []netip.AddrPort{srv.Addr()}
	client, err := resolve.NewClient(rc)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	cfg := DefaultConfig()
	cfg.Concurrency, cfg.BatchSize = 8, 10
	st := &failingStore{Store: sq, ok: 1}
	var p Progress
	err = New(cfg, client, st).Run(ctx, run, &p)
	queries := int64(syn.Queries())
	t.Logf("Run: %v; %d saves, %d DNS queries for %d domains", err, st.saves.Load(), queries, n)
	if !errors.Is(err, errDiskFull) {
		t.Errorf("Run = %v, want %v", err, errDiskFull)
	}
	if got := st.saves.Load(); got != 2 {
		t.Errorf("%d saves, want 2 (none after the failed one)", got)
	}
	if c, err := sq.Counts(ctx, run); err != nil || c.Done != cfg.BatchSize {
		t.Errorf("counts %+v (%v), want the first batch's %d domains done", c, err, cfg.BatchSize)
	}
	// A domain takes about 8 queries; the crawl may finish what was in flight, its
	// results buffered and a batch or two, not a quarter of the list.
	if limit := int64(8 * n / 4); queries > limit {
		t.Errorf("%d DNS queries after the save failed, want fewer than %d", queries, limit)
	}
}
