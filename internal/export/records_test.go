package export

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// recordsPath is shared/RECORDS.md as CI lays it out: the shared directory beside the
// repository root.
const recordsPath = "../../../shared/RECORDS.md"

// recordColumns parses RECORDS.md: the columns of each CSV file from its table, and the
// columns the "Meanings" list appends ("Appended: `a`, `b` (...)."), per file.
func recordColumns(t *testing.T, text string) (listed, appended map[string][]string) {
	t.Helper()
	listed, appended = map[string][]string{}, map[string][]string{}
	for _, line := range strings.Split(text, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 4 || !strings.Contains(cells[1], ".csv") {
			continue
		}
		names, _, _ := strings.Cut(strings.TrimSpace(cells[1]), " (")
		for _, f := range strings.Split(names, ",") {
			listed[strings.TrimSpace(f)] = strings.Split(strings.TrimSpace(cells[2]), ",")
		}
	}
	// A bullet runs from "- name" to the next bullet or blank line.
	bullet := regexp.MustCompile(`(?m)^- (\w+)[^:\n]*:((?:.|\n  )*)`)
	parens := regexp.MustCompile(`\([^()]*\)`)
	quoted := regexp.MustCompile("`([^`]+)`")
	for _, m := range bullet.FindAllStringSubmatch(text, -1) {
		_, after, ok := strings.Cut(m[2], "Appended:")
		if !ok {
			continue
		}
		after = parens.ReplaceAllString(strings.Join(strings.Fields(after), " "), "")
		after, _, _ = strings.Cut(after, ". ")
		var cols []string
		for _, q := range quoted.FindAllStringSubmatch(after, -1) {
			cols = append(cols, strings.Split(q[1], ",")...)
		}
		appended[m[1]+".csv"] = cols
	}
	return listed, appended
}

// TestHeadersMatchRecords checks every CSV header Write produces against RECORDS.md:
// the listed columns in order, then the appended ones, and no file outside the contract.
func TestHeadersMatchRecords(t *testing.T) {
	data, err := os.ReadFile(recordsPath)
	if os.IsNotExist(err) {
		t.Skipf("%s not found (the shared directory is expected beside the repository): skipping the contract check", recordsPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	listed, appended := recordColumns(t, string(data))
	// docs/RECORDS.md lists the columns v6matrix appends beyond the contract's.
	ours, err := os.ReadFile("../../docs/RECORDS.md")
	if err != nil {
		t.Fatal(err)
	}
	_, more := recordColumns(t, string(ours))
	for f, cols := range more {
		appended[f] = append(appended[f], cols...)
	}
	if len(listed) < 15 || len(appended) < 5 {
		t.Fatalf("parsed %d file tables and %d appended lists from %s; has its layout changed?", len(listed), len(appended), recordsPath)
	}
	dir, paths := exportMeasured(t, measurements(t))
	var written []string
	for _, p := range paths {
		if f := filepath.Base(p); strings.HasSuffix(f, ".csv") {
			written = append(written, f)
		}
	}
	var contract []string
	for f := range listed {
		contract = append(contract, f)
	}
	if diff := cmp.Diff(slices.Sorted(slices.Values(contract)), slices.Sorted(slices.Values(written))); diff != "" {
		t.Errorf("CSV files of a fully measured run vs RECORDS.md (-records +written):\n%s", diff)
	}
	for _, f := range written {
		t.Run(f, func(t *testing.T) {
			header := readCSV(t, filepath.Join(dir, f))[0]
			want := slices.Concat(listed[f], appended[f])
			if diff := cmp.Diff(want, header); diff != "" {
				t.Errorf("%s header (-RECORDS.md +written):\n%s", f, diff)
			}
		})
	}
}
