// Package domains reads ranked domain lists (Tranco/Alexa "rank,domain" CSV, the Majestic
// Million CSV, plain one-domain-per-line lists) and the opt-out list, and normalises
// domain names: IDNs to A-labels, lower case, TLD and public suffix.
package domains

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"
)

// idnaProfile converts U-labels to A-labels the way resolvers expect (UTS #46 lookup),
// but leaves the LDH checks to Normalize so that its messages are our own.
var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false))

// Normalize returns the A-label, lower-case form of a domain name without a trailing dot,
// or an error saying why it is not a usable domain name.
func Normalize(raw string) (string, error) {
	s := trimRootDot(strings.TrimSpace(raw))
	if s == "" {
		return "", errors.New("empty domain")
	}
	if !utf8.ValidString(s) {
		return "", fmt.Errorf("invalid domain %q: not valid UTF-8 (the list must be UTF-8 text)", raw)
	}
	if !isASCII(s) {
		a, err := idnaProfile.ToASCII(s)
		if err != nil {
			return "", fmt.Errorf("invalid IDN %q: %v", raw, err)
		}
		s = a
	}
	s = strings.ToLower(s)
	if len(s) > 253 {
		return "", fmt.Errorf("invalid domain %q: longer than 253 characters", raw)
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return "", fmt.Errorf("invalid domain %q: a single label is not a domain", raw)
	}
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return "", fmt.Errorf("invalid domain %q: %v", raw, err)
		}
		if err := checkALabel(l); err != nil {
			return "", fmt.Errorf("invalid domain %q: %v", raw, err)
		}
	}
	if allDigits(labels[len(labels)-1]) {
		return "", fmt.Errorf("invalid domain %q: numeric top-level label (an IP address?)", raw)
	}
	return s, nil
}

// labelDots are the label separators of UTS #46 (section 2.3): the full stop, and the
// ideographic, fullwidth and halfwidth ideographic full stops, all mapped to '.'.
var labelDots = []string{".", "\u3002", "\uff0e", "\uff61"}

// trimRootDot removes one trailing label separator (the root), whichever of labelDots:
// the idna package maps the others to '.' but leaves a trailing one, an empty label.
func trimRootDot(s string) string {
	for _, d := range labelDots {
		if t, ok := strings.CutSuffix(s, d); ok {
			return t
		}
	}
	return s
}

// checkLabel applies the LDH rule; underscores are accepted because real lists and
// zones contain them (e.g. service names) and resolvers answer for them.
func checkLabel(l string) error {
	switch {
	case l == "":
		return errors.New("empty label")
	case len(l) > 63:
		return fmt.Errorf("label %q longer than 63 characters", l)
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Errorf("label %q starts or ends with '-'", l)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("label %q contains %q", l, string(rune(c)))
		}
	}
	return nil
}

// checkALabel checks an IDN label (xn--...): it must decode to a valid U-label that
// encodes back to itself, as IDNA 2008 requires; "xn--zz" and "xn--a" do not.
func checkALabel(l string) error {
	if !strings.HasPrefix(l, "xn--") {
		return nil
	}
	u, err := idna.Lookup.ToUnicode(l)
	if err != nil || u == "" || isASCII(u) {
		return fmt.Errorf("label %q is not a valid IDN A-label", l)
	}
	if a, err := idna.Lookup.ToASCII(u); err != nil || a != l {
		return fmt.Errorf("label %q is not a valid IDN A-label (it encodes %q, whose A-label is %q)", l, u, a)
	}
	return nil
}

// TLD returns the last label of a normalised name: the grouping of the historic series
// (co.uk counts as uk).
func TLD(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// Suffix returns the public suffix of a normalised name (e.g. co.uk) for finer grouping.
func Suffix(name string) string {
	s, _ := publicsuffix.PublicSuffix(name)
	return s
}

// Within reports whether name equals domain or lies under it.
func Within(name, domain string) bool {
	return name == domain || strings.HasSuffix(name, "."+domain)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
