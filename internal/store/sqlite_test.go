package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/v6matrix/v6matrix/internal/domains"
	"github.com/v6matrix/v6matrix/internal/probe/tcpport"
	"github.com/v6matrix/v6matrix/internal/result"
)

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("not a database ", 100)), 0o644); err != nil {
		t.Fatal(err)
	}
	future := filepath.Join(dir, "future.db")
	s, err := OpenSQLite(context.Background(), future)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`UPDATE schema_version SET version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	tests := []struct {
		name, path, want string
	}{
		{"directory", dir, "database " + dir + ": is a directory"},
		{"not sqlite", garbage, "database " + garbage + ": not a usable SQLite database"},
		{"newer schema", future, "database " + future + ": schema version 99 is newer than this v6matrix knows (" + strconv.Itoa(len(migrations)) + "): upgrade v6matrix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenSQLite(context.Background(), tt.path)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %v, want prefix %q", err, tt.want)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rt.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	run, err := s.CreateRun(ctx, Run{Started: time.Unix(1e9, 0), ListName: "l.csv", State: RunLoading})
	if err != nil {
		t.Fatal(err)
	}
	es := []domains.Entry{{Rank: 5, Name: "b.uk", TLD: "uk"}, {Rank: 2, Name: "a.uk", TLD: "uk"}, {Rank: 1, Name: "b.uk", TLD: "uk"},
		{Rank: 3, Name: "c.net", TLD: "net"}, {Rank: 4, Name: "d.uk", TLD: "uk"}}
	if n, err := s.AddDomains(ctx, run, es); err != nil || n != 4 {
		t.Fatalf("AddDomains = %d, %v; want 4 new", n, err)
	}
	if n, err := s.KeepTop(ctx, run, 2); err != nil || n != 1 {
		t.Fatalf("KeepTop = %d, %v; want d.uk dropped", n, err)
	}
	pending, err := s.Pending(ctx, run, Cursor{Rank: -1}, 10)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range pending {
		names = append(names, d.Name)
	}
	if diff := cmp.Diff([]string{"b.uk", "a.uk", "c.net"}, names); diff != "" {
		t.Errorf("pending in rank order, best rank kept (-want +got):\n%s", diff)
	}
	ip := netip.MustParseAddr("2001:db8::1")
	ms := 1.5
	err = s.Save(ctx, run, Batch{
		Domains:   []result.Domain{{Name: "a.uk", Rank: 2, TLD: "uk", Status: result.StatusOK, Hosts: []result.HostRef{{Role: result.RoleWWW, Name: "www.a.uk"}}}},
		Hosts:     []result.Host{{Name: "www.a.uk", Status: result.StatusOK, V6: []netip.Addr{ip}}},
		Addresses: []result.Address{{IP: ip, Class: &result.Class{Valid: true, Type: "native"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveMeasurements(ctx, run, []Measurement{{IP: ip, Kind: result.KindTCP443, Value: &tcpport.Result{Port: 443, State: "open", ConnectMillis: &ms}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// Reopened: nothing lost, the migrations are not applied twice.
	s, err = OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.Counts(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	if c.Total != 3 || c.Done != 1 || c.Addresses != 1 || c.ByStatus[result.StatusOK] != 1 {
		t.Errorf("counts %+v", c)
	}
	var got *result.Address
	s.Details(ctx, run, "", func(d Detail) error {
		if d.Name == "a.uk" {
			a := d.Addrs[ip]
			got = &a
		}
		return nil
	})
	want := &result.Address{IP: ip, Class: &result.Class{Valid: true, Type: "native"}, TCP443: &tcpport.Result{Port: 443, State: "open", ConnectMillis: &ms}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("address (-want +got):\n%s", diff)
	}
	if _, err := s.GetRun(ctx, 42); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetRun(42) = %v, want ErrNotFound", err)
	}
}

// TestConcurrentOpen opens one new database from many goroutines at once, each with its
// own connection pool as separate processes would have, and writes from all of them:
// no "table runs already exists", no "database is locked".
func TestConcurrentOpen(t *testing.T) {
	ctx := context.Background()
	for round := range 5 {
		path := filepath.Join(t.TempDir(), "c.db")
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := range 8 {
			wg.Go(func() {
				s, err := OpenSQLite(ctx, path)
				if err != nil {
					errs <- err
					return
				}
				defer s.Close()
				run, err := s.CreateRun(ctx, Run{Started: time.Now(), ListName: "l", State: RunLoading})
				if err != nil {
					errs <- err
					return
				}
				es := make([]domains.Entry, 200)
				for j := range es {
					es[j] = domains.Entry{Rank: j + 1, Name: "d" + strconv.Itoa(i) + "-" + strconv.Itoa(j) + ".com", TLD: "com"}
				}
				if _, err := s.AddDomains(ctx, run, es); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
	}
}

func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	missing := filepath.Join(dir, "typo.db")
	_, err := OpenSQLiteReadOnly(ctx, missing)
	if want := "database " + missing + ": no such database (give --db the file a crawl wrote)"; err == nil || err.Error() != want {
		t.Errorf("missing: %v, want %q", err, want)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("opening a missing database read-only created it")
	}
	path := filepath.Join(dir, "ro.db")
	s, err := OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateRun(ctx, Run{Started: time.Now(), ListName: "l", State: RunDone}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	r, err := OpenSQLiteReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.LatestRun(ctx); err != nil {
		t.Errorf("read-only: %v", err)
	}
	if _, err := r.CreateRun(ctx, Run{Started: time.Now(), ListName: "l", State: RunDone}); err == nil {
		t.Error("a read-only store accepted a write")
	}
}

// TestStoredList stores a list of several chunks and reads it back byte for byte.
func TestStoredList(t *testing.T) {
	ctx := context.Background()
	s, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, size := range []int{0, 10, listChunk, 2*listChunk + 17} {
		run, err := s.CreateRun(ctx, Run{Started: time.Now(), ListName: "l", State: RunLoading})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.OpenList(ctx, run); !errors.Is(err, ErrNotFound) {
			t.Errorf("OpenList before SaveList: %v, want ErrNotFound", err)
		}
		data := bytes.Repeat([]byte("1,a.com\n"), size/8+1)[:size]
		sum, n, err := s.SaveList(ctx, run, bytes.NewReader(data))
		if err != nil || n != int64(size) || len(sum) != 64 {
			t.Fatalf("SaveList(%d bytes) = %q, %d, %v", size, sum, n, err)
		}
		r, err := s.OpenList(ctx, run)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%d bytes stored, %d read back (%v)", size, len(got), err)
		}
		if st, _ := s.GetRun(ctx, run); st.ListSHA256 != sum {
			t.Errorf("run's list_sha256 %q, want %q", st.ListSHA256, sum)
		}
	}
}
