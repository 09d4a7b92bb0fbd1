package distrib

import (
	"testing"

	"github.com/v6matrix/v6matrix/internal/measure"
	"github.com/v6matrix/v6matrix/internal/polite"
)

// TestProbeConfigShares: a probe job takes its share of the vantage's rates (divided
// among the live workers and each one's probe jobs) and of the probes in flight the run
// allows one process (divided among the worker's probe jobs), never less than one.
func TestProbeConfigShares(t *testing.T) {
	run := &measure.Config{Polite: polite.DefaultConfig(), NSCheck: measure.DefaultNSCheck()}
	run.Polite.Rate, run.Polite.Workers = 64, 1024
	run.NSCheck.Rate, run.NSCheck.Workers = 512, 64
	for _, c := range []struct {
		name               string
		alive, jobs        int
		rate, nsRate       float64
		workers, nsWorkers int
	}{
		{"one worker, one job", 1, 1, 64, 512, 1024, 64},
		{"two workers of 8 jobs", 2, 8, 4, 32, 128, 8},
		{"more jobs than checks' workers", 1, 128, 0.5, 4, 8, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &Worker{cfg: Config{ProbeJobs: c.jobs}, alive: c.alive}
			got := w.probeConfig(run, "ams")
			if got.Polite.Rate != c.rate || got.NSCheck.Rate != c.nsRate || got.Polite.Workers != c.workers ||
				got.NSCheck.Workers != c.nsWorkers || got.Vantage != "ams" {
				t.Errorf("rate %g, checks' rate %g, workers %d, checks' workers %d, vantage %q; want %g, %g, %d, %d, ams",
					got.Polite.Rate, got.NSCheck.Rate, got.Polite.Workers, got.NSCheck.Workers, got.Vantage,
					c.rate, c.nsRate, c.workers, c.nsWorkers)
			}
			if run.Polite.Workers != 1024 {
				t.Fatal("probeConfig changed the run's configuration")
			}
		})
	}
}
