package domains

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzReader feeds arbitrary bytes to the list reader: it must end, every entry must be
// a normalised name with a positive rank on a known line, and every skipped line must
// name the file and a line number.
func FuzzReader(f *testing.F) {
	f.Add([]byte("1,google.com\n2,Example.CO.UK.\n"))
	f.Add([]byte("\ufeffrank,domain\n# c\n\n7, bücher.de \n"))
	f.Add([]byte("GlobalRank,TldRank,Domain,TLD\n1,1,google.com,com\n"))
	f.Add([]byte("example.net\n\nпример.рф\r\nxn--zz.com\n\xff\xfe.com\n"))
	f.Add([]byte("1,\"a,b\".com\n2,\"\"\"x.com\n"))
	f.Add([]byte("google.com,1\nb\u3002com\uff0e,2\nid,name\n"))
	f.Add([]byte("Domain\na.com\n-bad.com\n\ufeffc.com\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in), "fuzz.csv")
		lines := bytes.Count(in, []byte("\n")) + 1
		last := 0
		for range lines + 1 {
			e, err := r.Next()
			var le *LineError
			switch {
			case errors.Is(err, io.EOF):
				return
			case errors.As(err, &le):
				if le.File != "fuzz.csv" || le.Line < 1 || le.Line > lines || le.Line < last {
					t.Fatalf("line error %q: bad place (last line %d of %d)", le, last, lines)
				}
				last = le.Line
				continue
			case err != nil:
				t.Fatalf("Next: %v", err)
			}
			if e.Rank < 1 || e.Line < 1 || e.Line > lines || e.Line < last {
				t.Fatalf("entry %+v: bad rank or line (last line %d of %d)", e, last, lines)
			}
			last = e.Line
			if n, err := Normalize(e.Name); err != nil || n != e.Name {
				t.Fatalf("entry name %q is not normalised: %q, %v", e.Name, n, err)
			}
			if e.TLD != TLD(e.Name) {
				t.Fatalf("entry %+v: TLD", e)
			}
		}
		t.Fatalf("more entries and errors than the %d lines", lines)
	})
}

// FuzzNormalize checks that an accepted name is ASCII, at most 253 bytes, of at least
// two labels, and normalises to itself; and that a refusal says why.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"example.com", "Bücher.DE.", "xn--bcher-kva.de", "xn--zz.com", "xn--a.de", "\xff\xfe.com",
		"пример.рф", "a_b.example", "192.0.2.1", "a..b", "-a.com", "💩.la", "xn--ls8h.la", "\u200d.com",
		"a.com\u3002", "b\uff0ec\uff61", "\u3002", "a.com\u3002\u3002"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		n, err := Normalize(raw)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if !isASCII(n) || len(n) > 253 || !strings.Contains(n, ".") || !utf8.ValidString(raw) {
			t.Fatalf("Normalize(%q) = %q: not an ASCII name of two labels or more", raw, n)
		}
		if again, err := Normalize(n); err != nil || again != n {
			t.Fatalf("Normalize(%q) = %q, but Normalize(%q) = %q, %v", raw, n, n, again, err)
		}
	})
}

// FuzzParseOptOut checks that the opt-out parser never panics, that an error names the
// file, and that every listed domain excludes itself.
func FuzzParseOptOut(f *testing.F) {
	f.Add([]byte("# opt-outs\nexample.com\n192.0.2.0/24 # a network\n2001:db8::1\n"))
	f.Add([]byte("bad/net\nxn--zz.com\n"))
	f.Add([]byte("::ffff:192.0.2.1\n10.0.0.0/33\n"))
	f.Add([]byte("\ufeff192.0.2.0/24\na.com\u3002\n\ufeffb.com\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		o, err := ParseOptOut(bytes.NewReader(in), "optout.txt")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "optout.txt") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for d := range o.domains {
			if !o.ExcludesDomain(d) || !o.ExcludesDomain("www."+d) {
				t.Fatalf("%q listed but not excluded", d)
			}
		}
		for _, p := range o.Networks() {
			if !o.ExcludesAddr(p.Addr()) {
				t.Fatalf("%s listed but its first address is not excluded", p)
			}
		}
	})
}
