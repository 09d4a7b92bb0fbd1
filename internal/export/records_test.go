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

// recordsPath is the records contract shipped with the repository: a copy of
// shared/RECORDS.md, which sits beside the repository root where the project is laid out
// that way (sharedRecordsPath); TestContractCopy keeps the two in step.
const (
	recordsPath       = "../../docs/RECORDS-CONTRACT.md"
	sharedRecordsPath = "../../../shared/RECORDS.md"
	fillingPath       = "../../docs/RECORDS.md"
)

// TestContractCopy checks that docs/RECORDS-CONTRACT.md equals shared/RECORDS.md when
// the shared directory is there.
func TestContractCopy(t *testing.T) {
	shared, err := os.ReadFile(sharedRecordsPath)
	if os.IsNotExist(err) {
		t.Skipf("%s not found: nothing to compare the shipped copy with", sharedRecordsPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	copied, err := os.ReadFile(recordsPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(copied) != string(shared) {
		t.Errorf("%s differs from %s: copy it again (cp %s docs/RECORDS-CONTRACT.md)", recordsPath, sharedRecordsPath, sharedRecordsPath)
	}
}

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
// Columns v6matrix appends after the contract's must be documented in docs/RECORDS.md.
func TestHeadersMatchRecords(t *testing.T) {
	data, err := os.ReadFile(recordsPath)
	if err != nil {
		t.Fatal(err)
	}
	filling, err := os.ReadFile(fillingPath)
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
			ours := header[min(len(want), len(header)):]
			if diff := cmp.Diff(want, header[:len(header)-len(ours)]); diff != "" {
				t.Errorf("%s header (-RECORDS.md +written):\n%s", f, diff)
			}
			for _, c := range ours {
				if !strings.Contains(string(filling), "`"+c+"`") {
					t.Errorf("%s: column %q is appended beyond the contract but not documented in docs/RECORDS.md", f, c)
				}
			}
		})
	}
}
