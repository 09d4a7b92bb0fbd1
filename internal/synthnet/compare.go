package synthnet

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// exportDistributed is the directory (in Config.Dir) of the distributed run's export.
const exportDistributed = "export-distributed"

// volatile are the CSV columns that differ between two crawls of the same synthetic
// Internet without either being wrong: round-trip times, echoes lost and clock offsets
// on a shared, loaded machine.
var volatile = map[string][]string{
	"ping.csv":   {"min", "avg", "max", "std", "min6", "avg6", "max6", "std6", "loss", "loss6"},
	"ntp123.csv": {"offset_ms", "offset6_ms"},
}

// export writes the latest run of db as CSV into dir (v6matrix export, in the host
// namespace: an export reads the database and sends nothing).
func export(ctx context.Context, cfg Config, db, dir string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, cfg.Self, "export", "--db", db, "--out", dir, "--format", "csv").CombinedOutput()
	if err != nil {
		return fmt.Errorf("export %s: %w\n%s", filepath.Base(db), err, out)
	}
	return nil
}

// compare exports the single-process crawl's database and compares it with the
// distributed run's export, file by file and row by row, volatile columns left out.
func (ds *DistStats) compare(ctx context.Context, cfg Config, crawlDB string) error {
	single := filepath.Join(cfg.Dir, "export-single")
	if err := export(ctx, cfg, crawlDB, single); err != nil {
		return err
	}
	diffs, rows, err := compareCSV(single, filepath.Join(cfg.Dir, exportDistributed))
	ds.ExportDiffs, ds.Compared = diffs, rows
	return err
}

// compareCSV compares the CSV files of two directories; it returns one line per file
// that differs (at most 3 rows shown each) and the number of rows compared.
func compareCSV(a, b string) (diffs []string, rows int, err error) {
	names := func(dir string) ([]string, error) {
		ms, err := filepath.Glob(filepath.Join(dir, "*.csv"))
		for i := range ms {
			ms[i] = filepath.Base(ms[i])
		}
		return ms, err
	}
	na, err := names(a)
	if err != nil {
		return nil, 0, err
	}
	nb, err := names(b)
	if err != nil {
		return nil, 0, err
	}
	if !slices.Equal(na, nb) {
		return []string{fmt.Sprintf("files: %q against %q", na, nb)}, 0, nil
	}
	for _, n := range na {
		ra, err := readCSV(filepath.Join(a, n))
		if err != nil {
			return nil, rows, err
		}
		rb, err := readCSV(filepath.Join(b, n))
		if err != nil {
			return nil, rows, err
		}
		rows += len(ra)
		var bad []string
		for i := range max(len(ra), len(rb)) {
			la, lb := "(none)", "(none)"
			if i < len(ra) {
				la = ra[i]
			}
			if i < len(rb) {
				lb = rb[i]
			}
			if la != lb {
				bad = append(bad, fmt.Sprintf("row %d: %q against %q", i+1, la, lb))
			}
		}
		if len(bad) > 0 {
			diffs = append(diffs, fmt.Sprintf("%s: %d of %d/%d rows differ, e.g. %s", n, len(bad), len(ra), len(rb), strings.Join(bad[:min(3, len(bad))], "; ")))
		}
	}
	return diffs, rows, nil
}

// readCSV returns a CSV file's rows, the volatile columns of its kind emptied.
func readCSV(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var drop []int
	if len(recs) > 0 {
		for _, c := range volatile[filepath.Base(path)] {
			if i := slices.Index(recs[0], c); i >= 0 {
				drop = append(drop, i)
			}
		}
	}
	out := make([]string, len(recs))
	for i, r := range recs {
		for _, d := range drop {
			if i > 0 && d < len(r) {
				r[d] = ""
			}
		}
		out[i] = strings.Join(r, ",")
	}
	return out, nil
}
