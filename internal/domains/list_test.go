package domains

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// readAll reads a whole list, returning the entries and the skipped-line messages.
func readAll(t *testing.T, name, text string) ([]Entry, []string) {
	t.Helper()
	r := NewReader(strings.NewReader(text), name)
	var es []Entry
	var skipped []string
	for i := 0; i < 10000; i++ {
		e, err := r.Next()
		var le *LineError
		switch {
		case err == nil:
			es = append(es, e)
		case errors.Is(err, io.EOF):
			return es, skipped
		case errors.As(err, &le):
			skipped = append(skipped, le.Error())
		default:
			t.Fatalf("Next: %v", err)
		}
	}
	t.Fatal("list did not end")
	return nil, nil
}

func TestReaderFormats(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []Entry
	}{
		{
			name: "tranco without header",
			text: "1,google.com\n2,Example.CO.UK.\n",
			want: []Entry{
				{Rank: 1, Name: "google.com", TLD: "com", Suffix: "com", Line: 1},
				{Rank: 2, Name: "example.co.uk", TLD: "uk", Suffix: "co.uk", Line: 2},
			},
		},
		{
			name: "alexa with header, comments and blanks",
			text: "\ufeffrank,domain\n# a comment\n\n7, bücher.de \n",
			want: []Entry{{Rank: 7, Name: "xn--bcher-kva.de", TLD: "de", Suffix: "de", Line: 4}},
		},
		{
			name: "majestic million",
			text: "GlobalRank,TldRank,Domain,TLD,RefSubNets,RefIPs,IDN_Domain,IDN_TLD,PrevGlobalRank,PrevTldRank,PrevRefSubNets,PrevRefIPs\n" +
				"1,1,google.com,com,1,1,google.com,com,1,1,1,1\n" +
				"3,1,bbc.co.uk,uk,1,1,bbc.co.uk,uk,3,1,1,1\n",
			want: []Entry{
				{Rank: 1, Name: "google.com", TLD: "com", Suffix: "com", Line: 2},
				{Rank: 3, Name: "bbc.co.uk", TLD: "uk", Suffix: "co.uk", Line: 3},
			},
		},
		{
			name: "domain,rank without header",
			text: "google.com,1\nExample.CO.UK.,2\n",
			want: []Entry{
				{Rank: 1, Name: "google.com", TLD: "com", Suffix: "com", Line: 1},
				{Rank: 2, Name: "example.co.uk", TLD: "uk", Suffix: "co.uk", Line: 2},
			},
		},
		{
			name: "a header naming only the Domain column ranks by line from the header",
			text: "# top sites\nDomain\na.com\n\nb.com\n",
			want: []Entry{
				{Rank: 1, Name: "a.com", TLD: "com", Suffix: "com", Line: 3},
				{Rank: 3, Name: "b.com", TLD: "com", Suffix: "com", Line: 5},
			},
		},
		{
			// UTS #46 maps these to '.', so that a final one is the root's, like "a.com.".
			name: "ideographic, fullwidth and halfwidth full stops",
			text: "1,a.com\u3002\n2,b\u3002example\uff0eorg\uff0e\n3,c.de\uff61\n",
			want: []Entry{
				{Rank: 1, Name: "a.com", TLD: "com", Suffix: "com", Line: 1},
				{Rank: 2, Name: "b.example.org", TLD: "org", Suffix: "org", Line: 2},
				{Rank: 3, Name: "c.de", TLD: "de", Suffix: "de", Line: 3},
			},
		},
		{
			name: "plain list ranks by line number, so that ranks match the file",
			text: "# top sites\nexample.net\n\nпример.рф\r\nexample.org\n",
			want: []Entry{
				{Rank: 2, Name: "example.net", TLD: "net", Suffix: "net", Line: 2},
				{Rank: 4, Name: "xn--e1afmkfd.xn--p1ai", TLD: "xn--p1ai", Suffix: "xn--p1ai", Line: 4},
				{Rank: 5, Name: "example.org", TLD: "org", Suffix: "org", Line: 5},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, skipped := readAll(t, "list.csv", tt.text)
			if len(skipped) > 0 {
				t.Errorf("skipped lines: %q", skipped)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReaderInvalidLines(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"bad rank", "1,a.com\nx,b.com\n0,c.com\n", []string{
			`top.csv:2: invalid rank "x": want a positive integer`,
			`top.csv:3: invalid rank "0": want a positive integer`}},
		{"missing column", "1,a.com\n2\n", []string{`top.csv:2: want at least 2 columns, got 1`}},
		{"single label", "1,localhost\n", []string{`top.csv:1: invalid domain "localhost": a single label is not a domain`}},
		{"space in name", "1,exa mple.com\n", []string{`top.csv:1: invalid domain "exa mple.com": label "exa mple" contains " "`}},
		{"empty label", "1,a..com\n", []string{`top.csv:1: invalid domain "a..com": empty label`}},
		{"hyphen", "1,-a.com\n", []string{`top.csv:1: invalid domain "-a.com": label "-a" starts or ends with '-'`}},
		{"long label", "1," + strings.Repeat("a", 64) + ".com\n", []string{
			`top.csv:1: invalid domain "` + strings.Repeat("a", 64) + `.com": label "` + strings.Repeat("a", 64) + `" longer than 63 characters`}},
		{"ip address", "1,192.0.2.1\n", []string{`top.csv:1: invalid domain "192.0.2.1": numeric top-level label (an IP address?)`}},
		{"empty domain", "1,\n", []string{`top.csv:1: empty domain`}},
		{"unknown header", "id,name\n1,a.com\n", []string{
			`top.csv:1: unrecognised header "id,name": want rank,domain or domain,rank rows, or a header naming a Domain column`}},
		{"unknown header and rows", "id,name\nx,y\n\nz,w\n", []string{
			`top.csv:1: unrecognised header "id,name": want rank,domain or domain,rank rows, or a header naming a Domain column`,
			`top.csv:2: unrecognised row "x,y": want rank,domain or domain,rank`,
			`top.csv:4: unrecognised row "z,w": want rank,domain or domain,rank`}},
		{"domain,rank bad rows", "-a.com,1\nb.com,x\nc.com\n", []string{
			`top.csv:1: invalid domain "-a.com": label "-a" starts or ends with '-'`,
			`top.csv:2: invalid rank "x": want a positive integer`,
			`top.csv:3: want at least 2 columns, got 1`}},
		{"byte order mark after line 1", "\ufeffa.com\n\ufeffb.com\n", []string{
			`top.csv:2: byte order mark (U+FEFF) at the start of a line other than the first: files joined together?`}},
		{"byte order mark in a CSV after line 1", "\ufeff1,a.com\n\ufeff1,b.com\n", []string{
			`top.csv:2: byte order mark (U+FEFF) at the start of a line other than the first: files joined together?`}},
		{"plain with two fields", "a.com\nb.com c.com\n", []string{`top.csv:2: want one domain per line, got 2 fields`}},
		{"invalid A-label", "1,xn--zz.com\n2,xn--a.de\n3,xn--.com\n4,xn--bcher-kva.de\n", []string{
			`top.csv:1: invalid domain "xn--zz.com": label "xn--zz" is not a valid IDN A-label`,
			`top.csv:2: invalid domain "xn--a.de": label "xn--a" is not a valid IDN A-label`,
			`top.csv:3: invalid domain "xn--.com": label "xn--" starts or ends with '-'`}},
		{"invalid UTF-8", "1,\xff\xfe.com\n2,\ufffd.com\n", []string{
			`top.csv:1: invalid domain "\xff\xfe.com": not valid UTF-8 (the list must be UTF-8 text)`,
			"top.csv:2: invalid IDN \"\ufffd.com\": idna: disallowed rune U+FFFD"}},
		{"line over 64 KiB", "a.com\n" + strings.Repeat("x", 70000) + "\nb.com\n" + strings.Repeat("y", 1<<17), []string{
			`top.csv:2: line longer than 65536 bytes`, `top.csv:4: line longer than 65536 bytes`}},
		{"plain with comma later", "a.com\n1,b.com\n", []string{`top.csv:2: unexpected ',' in a plain list`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, skipped := readAll(t, "top.csv", tt.text)
			if diff := cmp.Diff(tt.want, skipped); diff != "" {
				t.Errorf("messages (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReaderLineTooLong(t *testing.T) {
	r := NewReader(strings.NewReader("1,a.com\n1,"+strings.Repeat("b", maxLineBytes+10)+"\n"), "big.csv")
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	_, err := r.Next()
	if err == nil || err.Error() != "big.csv:2: line longer than 65536 bytes" {
		t.Fatalf("got %v", err)
	}
}

func TestOptOut(t *testing.T) {
	o, err := ParseOptOut(strings.NewReader("\ufeff2001:db8:2:3::/64\n# opt-outs\nExample.com\nexample.net\u3002\n192.0.2.0/24 # lab\n2001:db8:1::/48\n198.51.100.7\n::ffff:203.0.113.0/120\n::ffff:0.0.0.0\n"), "exclude.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want bool
	}{{"example.com", true}, {"www.example.com", true}, {"notexample.com", false}, {"example.org", false}, {"example.net", true}} {
		if got := o.ExcludesDomain(c.name); got != c.want {
			t.Errorf("ExcludesDomain(%s) = %v", c.name, got)
		}
	}
	for _, c := range []struct {
		addr string
		want bool
	}{{"192.0.2.77", true}, {"192.0.3.1", false}, {"2001:db8:1:ff::1", true}, {"2001:db8:2::1", false}, {"2001:db8:2:3::1", true}, {"198.51.100.7", true}, {"198.51.100.8", false},
		// IPv4-mapped networks listed exclude the IPv4 addresses they map, either way written.
		{"203.0.113.9", true}, {"::ffff:203.0.113.9", true}, {"0.0.0.0", true}, {"203.0.114.1", false}} {
		if got := o.ExcludesAddr(mustAddr(t, c.addr)); got != c.want {
			t.Errorf("ExcludesAddr(%s) = %v", c.addr, got)
		}
	}
	for _, c := range []struct{ text, want string }{
		{"a.com\n10.0.0.0/33\n", `exclude.txt:2: invalid network "10.0.0.0/33"`},
		{"\n\nbad..name\n", `exclude.txt:3: invalid domain "bad..name": empty label`},
		{"a.com\n\ufeff192.0.2.0/24\n", `exclude.txt:2: byte order mark (U+FEFF) at the start of a line other than the first: files joined together?`},
	} {
		if _, err := ParseOptOut(strings.NewReader(c.text), "exclude.txt"); err == nil || err.Error() != c.want {
			t.Errorf("ParseOptOut(%q) error = %v, want %s", c.text, err, c.want)
		}
	}
}

// TestReaderRanksSkippedLines checks that a rank the list does not give depends on the
// line's place in the file, not on how many lines before it were valid.
func TestReaderRanksSkippedLines(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []int // ranks of a.com and c.com
	}{
		{"plain", "a.com\n-bad-.com\nc.com\n", []int{1, 3}},
		{"Domain header alone", "Domain\na.com\n-bad-.com\nc.com\n", []int{1, 3}},
		{"header without a rank column", "Pos,Domain,TLD\n1,a.com,com\n2,-bad-.com,com\n3,c.com,com\n", []int{1, 3}},
		{"header after comments", "# list\n\nDomain\na.com\n# gone\n-bad-.com\nc.com\n", []int{1, 4}},
		{"rank column", "rank,domain\n5,a.com\n6,-bad-.com\n7,c.com\n", []int{5, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, skipped := readAll(t, "top.csv", tt.text)
			var ranks []int
			for _, e := range got {
				ranks = append(ranks, e.Rank)
			}
			if diff := cmp.Diff(tt.want, ranks); diff != "" || len(skipped) != 1 {
				t.Errorf("ranks (-want +got):\n%s\nskipped %q", diff, skipped)
			}
		})
	}
}

// TestReaderLongLine checks that reading goes on after an over-long line, with the
// line numbers (and so plain ranks) of the file.
func TestReaderLongLine(t *testing.T) {
	got, skipped := readAll(t, "top.txt", "a.com\n"+strings.Repeat("x", 1<<20)+"\nb.com\n")
	want := []Entry{{Rank: 1, Name: "a.com", TLD: "com", Suffix: "com", Line: 1}, {Rank: 3, Name: "b.com", TLD: "com", Suffix: "com", Line: 3}}
	if diff := cmp.Diff(want, got); diff != "" || len(skipped) != 1 {
		t.Errorf("entries (-want +got):\n%s\nskipped %q", diff, skipped)
	}
}
