package addrclass

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// defaultTableCSV is the prefix table shipped with v6matrix: the IPv6
// Matrix's published table plus the additions listed in its header.
//
//go:embed prefix-table.csv
var defaultTableCSV []byte

// tableHeader is the required header row of a prefix table file.
var tableHeader = []string{"uid", "class", "tag", "operator", "country", "prefix", "description"}

var (
	uidRe   = regexp.MustCompile(`^U[0-9A-F]{4}$`)
	classRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

// Entry is one row of the prefix table.
type Entry struct {
	UID         string // historic IPv6 Matrix id, e.g. "U3000"; the prefixid column
	Class       string // class name, e.g. "teredo"; becomes the ipv6type
	Tag         string // short tag of the service or server
	Operator    string // who runs it
	Country     string // ISO 3166 code, may be empty
	Prefix      netip.Prefix
	Description string
	Line        int // line of the table file, for messages
}

// Table is a parsed, immutable prefix table. Lookups return the most
// specific entry containing an address.
type Table struct {
	name    string
	entries []Entry
	// byBits maps a prefix length to the entries of that length, keyed by
	// their masked prefix; lengths holds the keys, longest first.
	byBits  map[int]map[netip.Prefix]int
	lengths []int
}

// ParseTable reads a prefix table in the CSV format of docs/PREFIX-TABLE.md.
// Errors are reported as "name:line: reason".
func ParseTable(r io.Reader, name string) (*Table, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1 // checked below, with a clearer message
	t := &Table{name: name, byBits: map[int]map[netip.Prefix]int{}}
	uids := map[string]int{}
	prefixes := map[netip.Prefix]int{}
	sawHeader := false
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("%s:%d: %w", name, pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		line, _ := cr.FieldPos(0)
		if !sawHeader {
			if !slices.Equal(rec, tableHeader) {
				return nil, fmt.Errorf("%s:%d: header must be %q", name, line, strings.Join(tableHeader, ","))
			}
			sawHeader = true
			continue
		}
		if len(rec) != len(tableHeader) {
			return nil, fmt.Errorf("%s:%d: %d fields, want %d", name, line, len(rec), len(tableHeader))
		}
		e, err := parseEntry(rec, line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", name, line, err)
		}
		if first, dup := uids[e.UID]; dup {
			return nil, fmt.Errorf("%s:%d: duplicate uid %s (first on line %d)", name, line, e.UID, first)
		}
		if first, dup := prefixes[e.Prefix]; dup {
			return nil, fmt.Errorf("%s:%d: duplicate prefix %s (first on line %d)", name, line, e.Prefix, first)
		}
		uids[e.UID], prefixes[e.Prefix] = line, line
		t.add(e)
	}
	if !sawHeader {
		return nil, fmt.Errorf("%s:1: empty table: no header row", name)
	}
	return t, nil
}

func parseEntry(rec []string, line int) (Entry, error) {
	e := Entry{
		UID: rec[0], Class: rec[1], Tag: rec[2], Operator: rec[3],
		Country: rec[4], Description: rec[6], Line: line,
	}
	if !uidRe.MatchString(e.UID) {
		return e, fmt.Errorf("uid %q: want U followed by 4 upper-case hex digits", e.UID)
	}
	if !classRe.MatchString(e.Class) {
		return e, fmt.Errorf("class %q: want lower-case letters, digits and '-'", e.Class)
	}
	p, err := netip.ParsePrefix(rec[5])
	if err != nil {
		return e, fmt.Errorf("prefix: %w", err)
	}
	if !p.Addr().Is6() {
		return e, fmt.Errorf("prefix %s: not an IPv6 prefix", p)
	}
	if p != p.Masked() {
		return e, fmt.Errorf("prefix %s: host bits set (did you mean %s?)", p, p.Masked())
	}
	e.Prefix = p
	return e, nil
}

func (t *Table) add(e Entry) {
	bits := e.Prefix.Bits()
	m := t.byBits[bits]
	if m == nil {
		m = map[netip.Prefix]int{}
		t.byBits[bits] = m
		t.lengths = append(t.lengths, bits)
		slices.SortFunc(t.lengths, func(a, b int) int { return b - a })
	}
	m[e.Prefix] = len(t.entries)
	t.entries = append(t.entries, e)
}

// Name is the name the table was parsed under (a file name, or "builtin").
func (t *Table) Name() string { return t.name }

// Entries returns a copy of the table's entries in file order.
func (t *Table) Entries() []Entry { return slices.Clone(t.entries) }

// Lookup returns the most specific entry whose prefix contains a.
func (t *Table) Lookup(a netip.Addr) (Entry, bool) {
	if t == nil || !a.Is6() {
		return Entry{}, false
	}
	a = a.WithZone("")
	for _, bits := range t.lengths {
		p, err := a.Prefix(bits)
		if err != nil {
			continue
		}
		if i, ok := t.byBits[bits][p]; ok {
			return t.entries[i], true
		}
	}
	return Entry{}, false
}

// DefaultTable returns the prefix table shipped with v6matrix. It is parsed
// once; the result is immutable and shared.
func DefaultTable() *Table { return defaultTable() }

var defaultTable = sync.OnceValue(func() *Table {
	t, err := ParseTable(bytes.NewReader(defaultTableCSV), "builtin prefix-table.csv")
	if err != nil {
		// The embedded file is tested; reaching this is a build defect.
		panic(fmt.Sprintf("addrclass: embedded prefix table: %v", err))
	}
	return t
})
