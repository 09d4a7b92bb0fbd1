package export

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/v6matrix/v6matrix/internal/probe/ping"
	"github.com/v6matrix/v6matrix/internal/probe/tcpport"
	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// TestWriteVantage exports one run measured from two vantages: each export has the
// files and the cells of its vantage's measurements (the DNS records alike), and a
// vantage the run does not have is an error naming those it has.
func TestWriteVantage(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	run := saveRun(t, st)
	ms := []store.Measurement{
		{IP: www6, Kind: result.KindTCP80, Value: &tcpport.Result{Port: 80, State: tcpport.StateOpen}},
		{IP: www6, Kind: result.KindTCP80, Value: &tcpport.Result{Port: 80, State: tcpport.StateFiltered}, Vantage: "west"},
		{IP: www6, Kind: result.KindPing, Value: &ping.Result{Sent: 5, Received: 5}, Vantage: "west"},
	}
	if err := st.SaveMeasurements(ctx, run, ms); err != nil {
		t.Fatal(err)
	}
	cell := func(dir string) string {
		for _, r := range readCSV(t, filepath.Join(dir, "tcp80.csv")) {
			if r[2] == "www.alpha.example" && r[5] == www6.String() {
				return r[7]
			}
		}
		t.Fatalf("%s: no tcp80 row of %s", dir, www6)
		return ""
	}
	own, west := t.TempDir(), t.TempDir()
	if _, err := Write(ctx, st, run, own, []string{"csv"}); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteVantage(ctx, st, run, "west", west, []string{"csv"}); err != nil {
		t.Fatal(err)
	}
	if got := cell(own); got != "open" {
		t.Errorf("tcp80 of %s from the run's own vantage: %q, want open", www6, got)
	}
	if got := cell(west); got != "filtered" {
		t.Errorf("tcp80 of %s from west: %q, want filtered", www6, got)
	}
	if slices.Contains(dirFiles(t, own), "ping.csv") || !slices.Contains(dirFiles(t, west), "ping.csv") {
		t.Errorf("ping.csv: run's own vantage has %v, west %v; want it from west only", dirFiles(t, own), dirFiles(t, west))
	}
	for _, f := range []string{"ns.csv", "ipv6domain.csv"} {
		if a, b := readCSV(t, filepath.Join(own, f)), readCSV(t, filepath.Join(west, f)); !slices.EqualFunc(a, b, slices.Equal) {
			t.Errorf("%s differs between the vantages: the DNS records are the run's", f)
		}
	}
	_, err := WriteVantage(ctx, st, run, "north", t.TempDir(), []string{"csv"})
	if want := `run 1 has no vantage "north": its vantages are "", "west"`; err == nil || err.Error() != want {
		t.Errorf("export from north: %v; want %s", err, want)
	}
}
