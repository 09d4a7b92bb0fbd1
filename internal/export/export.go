// Package export writes a run in the IPv6 Matrix record formats of shared/RECORDS.md:
// one CSV file per record type and domains.jsonl with the full detail per domain.
package export

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/v6matrix/v6matrix/internal/result"
	"github.com/v6matrix/v6matrix/internal/store"
)

// Formats are the export formats.
var Formats = []string{"csv", "jsonl"}

// table is one CSV record file.
type table struct {
	file   string
	header []string
	rows   func(d *store.Detail, emit func(...string)) // nil: not written
}

// tables lists the CSV files in the order they are written.
var tables = []table{
	{"ns.csv", []string{"type", "domain", "host", "ipv4", "ipv6", "rank"}, hostRows(result.RoleNS, true)},
	{"mx.csv", []string{"type", "domain", "host", "ipv4", "ipv6", "rank"}, mxRows},
	{"www.csv", []string{"type", "domain", "host", "ipv4", "ipv6"}, hostRows(result.RoleWWW, false)},
	{"ntp.csv", []string{"type", "domain", "host", "ipv4", "ipv6"}, hostRows(result.RoleNTP, false)},
	{"soa.csv", []string{"type", "domain", "soa", "primary_by_rank", "primary_inhouse", "secondary", "total", "contact",
		"serial", "refresh", "retry", "expire", "minimum"}, soaRows},
	{"ipv6type.csv", []string{"type", "domain", "host", "ipv6", "valid", "prefixid", "ipv6type", "iid"}, ipv6typeRows},
	{"ipv6domain.csv", []string{"domain", "ns", "mx", "www", "ntp", "tld", "rank", "status"}, ipv6domainRows},
}

// Files returns the names of the files Write produces for the formats.
func Files(formats []string) []string {
	var out []string
	for _, f := range formats {
		switch f {
		case "csv":
			for _, t := range tables {
				out = append(out, t.file)
			}
		case "jsonl":
			out = append(out, "domains.jsonl")
		}
	}
	return out
}

// Write exports the run into dir (created if needed) in the given formats and returns
// the paths written. Files are written under a temporary name and renamed when
// complete, so a failed export never leaves a truncated file behind a good name.
func Write(ctx context.Context, st store.Store, run int64, dir string, formats []string) ([]string, error) {
	for _, f := range formats {
		if f != "csv" && f != "jsonl" {
			return nil, fmt.Errorf("unknown format %q: want csv or jsonl", f)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	var outs []*output
	defer func() {
		for _, o := range outs {
			o.abort()
		}
	}()
	var csvs []*csvOut
	var jsonl *output
	for _, f := range formats {
		switch f {
		case "csv":
			for _, t := range tables {
				o, err := create(dir, t.file)
				if err != nil {
					return nil, err
				}
				outs = append(outs, o)
				c := &csvOut{t: t, w: csv.NewWriter(o.w)}
				c.w.Write(t.header)
				csvs = append(csvs, c)
			}
		case "jsonl":
			o, err := create(dir, "domains.jsonl")
			if err != nil {
				return nil, err
			}
			outs = append(outs, o)
			jsonl = o
		}
	}
	err := st.Details(ctx, run, func(d store.Detail) error {
		for _, c := range csvs {
			c.t.rows(&d, func(cells ...string) { c.w.Write(cells) })
			if err := c.w.Error(); err != nil {
				return err
			}
		}
		if jsonl != nil {
			b, err := json.Marshal(domainJSON(run, &d))
			if err != nil {
				return err
			}
			jsonl.w.Write(append(b, '\n'))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("export run %d: %w", run, err)
	}
	for _, c := range csvs {
		c.w.Flush()
	}
	var paths []string
	for _, o := range outs {
		if err := o.commit(); err != nil {
			return nil, err
		}
		paths = append(paths, o.path)
	}
	outs = nil
	return paths, nil
}

type csvOut struct {
	t table
	w *csv.Writer
}

// output is a file written under a temporary name until commit.
type output struct {
	path string
	f    *os.File
	w    *bufio.Writer
}

func create(dir, name string) (*output, error) {
	path := filepath.Join(dir, name)
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	return &output{path: path, f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

func (o *output) commit() error {
	if err := o.w.Flush(); err != nil {
		o.abort()
		return fmt.Errorf("export %s: %w", o.path, err)
	}
	if err := o.f.Close(); err != nil {
		return fmt.Errorf("export %s: %w", o.path, err)
	}
	return os.Rename(o.f.Name(), o.path)
}

func (o *output) abort() {
	o.f.Close()
	os.Remove(o.f.Name())
}

func itoa(i int) string { return strconv.Itoa(i) }

func boolCell(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
