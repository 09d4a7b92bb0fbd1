package domains

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Entry is one domain of a ranked list.
type Entry struct {
	Rank   int    // popularity rank, 1 = most popular
	Name   string // normalised: A-labels, lower case, no trailing dot
	TLD    string // last label
	Suffix string // public suffix
	Line   int    // line of the list it came from
}

// LineError is an input line that was skipped, with the reason.
type LineError struct {
	File   string
	Line   int
	Reason string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason) }

// format is the layout of a list, decided by its first data line.
type format int

const (
	formatUnknown   format = iota
	formatPlain            // one domain per line; rank = the line's number in the file
	formatCSV              // rank,domain[,...] (Tranco, Alexa), with or without a header, or domain,rank
	formatHeaderCSV        // a header names the columns (Majestic Million: GlobalRank,...,Domain,...)
)

// maxLineBytes bounds one line so that a damaged file cannot exhaust memory; a longer
// line is skipped like any invalid line.
const maxLineBytes = 64 << 10

// Reader streams the entries of a list. Invalid lines are skipped and reported through
// Next's error of type *LineError, after which reading may go on.
type Reader struct {
	name      string
	lines     *lineReader
	line      int
	format    format
	rankCol   int
	domainCol int
	// header is the line of a header naming a Domain column but no rank column: a data
	// line's rank is then its distance from it, so that, as in a plain list, ranks match
	// the file whatever lines were skipped.
	header int
	// unknown is set once a first data line could not be read as a header or a row, so
	// that later such lines are not called headers too.
	unknown bool
}

// NewReader returns a Reader of the list r; name is used in messages (the file name, or
// "stdin").
func NewReader(r io.Reader, name string) *Reader {
	return &Reader{name: name, lines: newLineReader(r)}
}

// Next returns the next valid entry. At the end it returns io.EOF. For an invalid line
// (a line over 64 KiB included) it returns a *LineError; the caller reports it and calls
// Next again. Any other error (I/O) ends the list.
func (r *Reader) Next() (Entry, error) {
	for {
		raw, err := r.lines.next()
		if errors.Is(err, io.EOF) {
			return Entry{}, io.EOF
		}
		r.line++
		if errors.Is(err, errLineTooLong) {
			return Entry{}, r.lineErr(fmt.Sprintf("line longer than %d bytes", maxLineBytes))
		}
		if err != nil {
			return Entry{}, fmt.Errorf("%s:%d: %w", r.name, r.line, err)
		}
		text, err := trimBOM(strings.TrimSpace(string(raw)), r.line)
		if err != nil {
			return Entry{}, r.lineErr(err.Error())
		}
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if r.format == formatUnknown {
			header, err := r.detect(text)
			if err != nil {
				return Entry{}, r.lineErr(err.Error())
			}
			if header {
				continue
			}
		}
		e, err := r.parse(text)
		if err != nil {
			return Entry{}, r.lineErr(err.Error())
		}
		return e, nil
	}
}

// errLineTooLong marks a line over maxLineBytes (skipped whole).
var errLineTooLong = errors.New("line too long")

// lineReader splits input into lines of at most maxLineBytes; a longer line is read to
// its end and reported as errLineTooLong, so that reading goes on with the next line.
type lineReader struct {
	br *bufio.Reader
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, maxLineBytes+1)}
}

// next returns the next line without its end ("\n" or "\r\n"); io.EOF at the end.
func (l *lineReader) next() ([]byte, error) {
	b, err := l.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = l.br.ReadSlice('\n')
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		return nil, errLineTooLong
	case errors.Is(err, io.EOF):
		if len(b) == 0 {
			return nil, io.EOF
		}
	case err != nil:
		return nil, err
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	if len(b) > maxLineBytes {
		return nil, errLineTooLong
	}
	return bytes.TrimSuffix(b, []byte("\r")), nil
}

// trimBOM removes the byte order mark that spreadsheet exports put at the start of a
// file (line 1). Anywhere else a line starting with one is an error, not read as a name
// (IDNA would drop it): it marks files joined together, whose ranks start over.
func trimBOM(text string, line int) (string, error) {
	const bom = "\ufeff"
	if line == 1 {
		return strings.TrimPrefix(text, bom), nil
	}
	if strings.HasPrefix(text, bom) {
		return "", errors.New("byte order mark (U+FEFF) at the start of a line other than the first: files joined together?")
	}
	return text, nil
}

func (r *Reader) lineErr(reason string) error {
	return &LineError{File: r.name, Line: r.line, Reason: reason}
}

// detect decides the format from the first data line and reports whether it is a header.
// A row of a headerless CSV is rank,domain[,...] when its first field is a number, and
// domain,rank when only its second is: a domain name is never all digits, so the two
// cannot be confused.
func (r *Reader) detect(text string) (bool, error) {
	fields := splitCSV(text)
	r.rankCol, r.domainCol = -1, -1
	for i, f := range fields {
		switch strings.ToLower(strings.TrimSpace(f)) {
		case "domain":
			r.domainCol = i
		case "globalrank", "rank":
			if r.rankCol < 0 {
				r.rankCol = i
			}
		}
	}
	switch {
	case r.domainCol >= 0:
		r.format = formatHeaderCSV
		if r.rankCol < 0 {
			r.header = r.line
		}
		return true, nil
	case len(fields) == 1:
		r.format = formatPlain
	case isNumber(fields[0]):
		r.format, r.rankCol, r.domainCol = formatCSV, 0, 1
	case isNumber(fields[1]):
		r.format, r.rankCol, r.domainCol = formatCSV, 1, 0
	case r.unknown:
		return false, fmt.Errorf("unrecognised row %q: want rank,domain or domain,rank", text)
	default:
		// A header we do not know: say which columns we look for.
		r.unknown = true
		return false, fmt.Errorf("unrecognised header %q: want rank,domain or domain,rank rows, or a header naming a Domain column", text)
	}
	return false, nil
}

// isNumber reports whether a CSV field is an integer, which only a rank column holds.
func isNumber(field string) bool {
	_, err := strconv.Atoi(strings.TrimSpace(field))
	return err == nil
}

func (r *Reader) parse(text string) (Entry, error) {
	var rank int
	var raw string
	switch r.format {
	case formatPlain:
		if strings.Contains(text, ",") {
			return Entry{}, fmt.Errorf("unexpected ',' in a plain list")
		}
		if f := strings.Fields(text); len(f) != 1 {
			return Entry{}, fmt.Errorf("want one domain per line, got %d fields", len(f))
		}
		raw = text
	default:
		fields := splitCSV(text)
		if r.domainCol >= len(fields) || (r.rankCol >= 0 && r.rankCol >= len(fields)) {
			return Entry{}, fmt.Errorf("want at least %d columns, got %d", max(r.domainCol, r.rankCol)+1, len(fields))
		}
		raw = strings.TrimSpace(fields[r.domainCol])
		if r.rankCol >= 0 {
			n, err := strconv.Atoi(strings.TrimSpace(fields[r.rankCol]))
			if err != nil || n < 1 {
				return Entry{}, fmt.Errorf("invalid rank %q: want a positive integer", fields[r.rankCol])
			}
			rank = n
		}
	}
	name, err := Normalize(raw)
	if err != nil {
		return Entry{}, err
	}
	switch {
	case r.format == formatPlain:
		rank = r.line // ranks match the file, whatever lines were skipped
	case r.rankCol < 0:
		rank = r.line - r.header // likewise, counted from the header
	}
	return Entry{Rank: rank, Name: name, TLD: TLD(name), Suffix: Suffix(name), Line: r.line}, nil
}

// splitCSV splits a line on commas, honouring simple RFC 4180 quotes.
func splitCSV(s string) []string {
	var out []string
	var b strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' && quoted && i+1 < len(s) && s[i+1] == '"':
			b.WriteByte('"')
			i++
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			out = append(out, b.String())
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	return append(out, b.String())
}
