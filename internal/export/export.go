// Package export writes a run in the IPv6 Matrix record formats of shared/RECORDS.md:
// one CSV file per record type and domains.jsonl with the full detail per domain.
//
// The DNS record files (ns, mx, www, ntp, soa, ipv6type, ipv6domain) are always written;
// a probe record file (reverse, ping, tcpNN, tls, path, geoip, dns53, ntp123) only when
// the run has measurements of its kind, so that a run without a probe stage does not
// ship files of empty cells.
//
// Cell formats: an empty cell is "not measured"; a measured negative is written out
// (0, closed, none). Milliseconds and percentages are decimals with exactly 3 digits
// after the point (strconv 'f', 3: "12.345", "20.000"); longitude and latitude keep the
// digits the GeoIP database gives (strconv 'f', -1); times are RFC 3339 in UTC.
package export

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
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
	rows   func(d *store.Detail, emit func(...string))
	// kinds are the measurement kinds the file shows: it is written when the run has
	// at least one of them. Nil: always written.
	kinds []string
}

// written reports whether the table is exported for a run with the measured kinds.
func (t table) written(measured map[string]bool) bool {
	if t.kinds == nil {
		return true
	}
	for _, k := range t.kinds {
		if measured[k] {
			return true
		}
	}
	return false
}

// tables lists the CSV files in the order they are written.
var tables = []table{
	{"ns.csv", []string{"type", "domain", "host", "ipv4", "ipv6", "rank", "ns_source"}, nsRows, nil},
	{"mx.csv", []string{"type", "domain", "host", "ipv4", "ipv6", "rank"}, mxRows, nil},
	{"www.csv", []string{"type", "domain", "host", "ipv4", "ipv6"}, hostRows(result.RoleWWW, false), nil},
	{"ntp.csv", []string{"type", "domain", "host", "ipv4", "ipv6"}, hostRows(result.RoleNTP, false), nil},
	{"soa.csv", []string{"type", "domain", "soa", "primary_by_rank", "primary_inhouse", "secondary", "total", "contact",
		"serial", "refresh", "retry", "expire", "minimum", "serials_differ", "parent_only", "child_only"}, soaRows, nil},
	{"ipv6type.csv", []string{"type", "domain", "host", "ipv6", "valid", "prefixid", "ipv6type", "iid"}, ipv6typeRows, nil},
	{"ipv6domain.csv", []string{"domain", "ns", "mx", "www", "ntp", "tld", "rank", "status", "ipv6_unknown"},
		ipv6domainRows, nil},
	{"reverse.csv", []string{"type", "domain", "host", "ipv4", "ipv6", "name4", "name6"}, reverseRows,
		[]string{result.KindPTR}},
	{"ping.csv", []string{"type", "domain", "host", "ipv4", "ipv6", "count", "min", "avg", "max", "std",
		"min6", "avg6", "max6", "std6", "loss", "loss6"}, pingRows, []string{result.KindPing}},
	{"tcp25.csv", tcpHeader, tcpRows(25), []string{result.KindTCP25}},
	{"tcp80.csv", tcpHeader, tcpRows(80), []string{result.KindTCP80}},
	{"tcp443.csv", tcpHeader, tcpRows(443), []string{result.KindTCP443}},
	{"tls.csv", []string{"type", "domain", "host", "ipv4", "reachable", "tls", "ipv6", "reachable6", "tls6",
		"cert_valid", "cert_expiry", "cert_valid4", "cert_expiry4", "cert_valid6", "cert_expiry6"}, tlsRows, []string{result.KindTLS443, result.KindSTARTTLS}},
	{"path.csv", []string{"type", "domain", "host", "ipv4", "ipv6", "mtu4", "hops4", "back4", "path4",
		"mtu6", "hops6", "back6", "path6"}, pathRows, []string{result.KindPath}},
	{"geoip.csv", []string{"type", "domain", "host", "ipv4", "ipv6", "asn", "city", "region_name", "country_code",
		"longitude", "latitude"}, geoRows, []string{result.KindGeo}},
	{"dns53.csv", []string{"type", "domain", "host", "ipv4", "ipv6", "dns", "dns6", "serial", "serial6"}, dns53Rows,
		[]string{result.KindDNS53}},
	{"ntp123.csv", []string{"type", "domain", "host", "ipv4", "ipv6", "ntp", "ntp6", "offset_ms", "offset6_ms"},
		ntp123Rows, []string{result.KindNTP123}},
}

var tcpHeader = []string{"type", "domain", "host", "port", "ipv4", "ipv6", "tcp", "tcp6"}

// Files returns the names of the files Write always produces for the formats: the DNS
// record files and domains.jsonl. The probe record files come on top when the run has
// their measurements (FilesFor); Write returns the paths it actually wrote.
func Files(formats []string) []string { return FilesFor(formats, nil) }

// FilesFor returns the names of the files Write produces for the formats, for a run
// whose measured kinds (store.Store.MeasuredKinds) are measured.
func FilesFor(formats []string, measured map[string]bool) []string {
	var out []string
	for _, f := range formats {
		switch f {
		case "csv":
			for _, t := range tables {
				if t.written(measured) {
					out = append(out, t.file)
				}
			}
		case "jsonl":
			out = append(out, "domains.jsonl")
		}
	}
	return out
}

// Write exports the run into dir (created if needed) in the given formats and returns
// the paths written (FilesFor the run's measured kinds, in that order). Files are
// written under a temporary name and renamed when complete, so a failed export never
// leaves a truncated file behind a good name. Record files of dir that this export did
// not write (left by an export of another run, database or format) are removed, so
// that dir holds one run's records and nothing mixed; other files are left alone.
func Write(ctx context.Context, st store.Store, run int64, dir string, formats []string) ([]string, error) {
	return WriteVantage(ctx, st, run, "", dir, formats)
}

// WriteVantage is Write with the measurements of one vantage of the run ("" its own):
// the same files and columns, filled with what that vantage measured (the DNS records
// are the run's). A vantage the run does not have is an error naming those it has.
func WriteVantage(ctx context.Context, st store.Store, run int64, vantage, dir string, formats []string) ([]string, error) {
	if err := store.CheckVantage(ctx, st, run, vantage); err != nil {
		return nil, err
	}
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
			measured, err := st.MeasuredKinds(ctx, run, vantage)
			if err != nil {
				return nil, fmt.Errorf("export run %d: %w", run, err)
			}
			for _, t := range tables {
				if !t.written(measured) {
					continue
				}
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
	err := st.Details(ctx, run, vantage, func(d store.Detail) error {
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
	if err := removeStale(dir, paths); err != nil {
		return nil, err
	}
	return paths, nil
}

// removeStale removes the record files of dir that are not among written.
func removeStale(dir string, written []string) error {
	keep := map[string]bool{}
	for _, p := range written {
		keep[filepath.Base(p)] = true
	}
	for _, name := range FilesFor(Formats, everyKind()) {
		if keep[name] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("export: remove the stale %s: %w", name, err)
		}
	}
	return nil
}

// everyKind marks every measurement kind measured: FilesFor then names every file.
func everyKind() map[string]bool {
	m := map[string]bool{}
	for _, k := range result.Kinds {
		m[k] = true
	}
	return m
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
