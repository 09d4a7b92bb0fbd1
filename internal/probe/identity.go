package probe

import (
	"errors"
	"fmt"
	"strings"
)

// DefaultInfoURL is the page that tells a measured site's operator what v6matrix is and how
// to opt out; operators are expected to replace it with their own (docs/POLITENESS.md).
const DefaultInfoURL = "https://github.com/v6matrix/v6matrix"

// Identity is how the crawler names itself to the servers it measures, so that an operator
// who sees its traffic can find out who sent it and why.
type Identity struct {
	// HTTPUserAgent is sent on every HTTP request: "v6matrix/<version> (+<info URL>)".
	HTTPUserAgent string
	// EHLOName is the host name given in SMTP EHLO: the crawler's own host name, which
	// should have matching forward and reverse DNS.
	EHLOName string
}

// NewIdentity builds the default identity from the program version, the info URL (empty:
// DefaultInfoURL) and the crawler's host name.
func NewIdentity(version, infoURL, hostName string) Identity {
	if infoURL == "" {
		infoURL = DefaultInfoURL
	}
	return Identity{
		HTTPUserAgent: UserAgent(version, infoURL),
		EHLOName:      hostName,
	}
}

// UserAgent formats the HTTP User-Agent "v6matrix/<version> (+<info URL>)".
func UserAgent(version, infoURL string) string {
	return fmt.Sprintf("v6matrix/%s (+%s)", version, infoURL)
}

// Validate reports an identity that would be rejected by servers or would hide who we are.
func (id Identity) Validate() error {
	var errs []error
	if id.HTTPUserAgent == "" {
		errs = append(errs, errors.New("identity: empty HTTP User-Agent"))
	}
	if strings.ContainsAny(id.HTTPUserAgent, "\r\n") {
		errs = append(errs, errors.New("identity: HTTP User-Agent contains a line break"))
	}
	if err := validEHLOName(id.EHLOName); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// validEHLOName accepts a host name (RFC 5321 Domain): dot-separated labels of letters,
// digits and hyphens, or an address literal in brackets.
func validEHLOName(name string) error {
	if name == "" {
		return errors.New("identity: empty EHLO name")
	}
	if strings.HasPrefix(name, "[") && strings.HasSuffix(name, "]") {
		return nil
	}
	if len(name) > 253 {
		return fmt.Errorf("identity: EHLO name %.20q... longer than 253 bytes", name)
	}
	for label := range strings.SplitSeq(strings.TrimSuffix(name, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("identity: EHLO name %q has an invalid label %q", name, label)
		}
		for _, c := range label {
			if !(c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return fmt.Errorf("identity: EHLO name %q has an invalid character %q", name, c)
			}
		}
	}
	return nil
}
