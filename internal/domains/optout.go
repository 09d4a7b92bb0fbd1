package domains

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// OptOut is the list of domains and networks that asked not to be measured. An opted-out
// domain is never queried (its subdomains neither); an address inside an opted-out
// network is never probed.
type OptOut struct {
	domains map[string]bool
	nets    []netip.Prefix
}

// ParseOptOut reads an opt-out list: one domain, address or CIDR network per line; blank
// lines and '#' comments (whole-line or trailing) are skipped. name is used in messages.
func ParseOptOut(r io.Reader, name string) (*OptOut, error) {
	o := &OptOut{domains: map[string]bool{}}
	lr := newLineReader(r)
	for line := 1; ; line++ {
		raw, err := lr.next()
		switch {
		case errors.Is(err, io.EOF):
			return o, nil
		case errors.Is(err, errLineTooLong):
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes", name, line, maxLineBytes)
		case err != nil:
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		text := string(raw)
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		text, err = trimBOM(strings.TrimSpace(text), line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		if text == "" {
			continue
		}
		if p, err := netip.ParsePrefix(text); err == nil {
			o.nets = append(o.nets, unmapPrefix(p.Masked()))
			continue
		}
		if a, err := netip.ParseAddr(text); err == nil {
			o.nets = append(o.nets, unmapPrefix(netip.PrefixFrom(a, a.BitLen())))
			continue
		}
		if strings.ContainsAny(text, "/:") {
			return nil, fmt.Errorf("%s:%d: invalid network %q", name, line, text)
		}
		d, err := Normalize(text)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %v", name, line, err)
		}
		o.domains[d] = true
	}
}

// unmapPrefix turns an IPv4-mapped IPv6 network (::ffff:192.0.2.0/120) into the IPv4
// network it maps (192.0.2.0/24), since ExcludesAddr compares addresses unmapped.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// ExcludesDomain reports whether the domain (or a parent of it) opted out.
func (o *OptOut) ExcludesDomain(name string) bool {
	if o == nil {
		return false
	}
	for {
		if o.domains[name] {
			return true
		}
		i := strings.IndexByte(name, '.')
		if i < 0 {
			return false
		}
		name = name[i+1:]
	}
}

// Networks returns the opted-out networks.
func (o *OptOut) Networks() []netip.Prefix {
	if o == nil {
		return nil
	}
	return o.nets
}

// ExcludesAddr reports whether the address lies in an opted-out network.
func (o *OptOut) ExcludesAddr(a netip.Addr) bool {
	if o == nil {
		return false
	}
	a = a.Unmap()
	for _, p := range o.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Len returns the number of opted-out domains and networks.
func (o *OptOut) Len() (domains, networks int) {
	if o == nil {
		return 0, 0
	}
	return len(o.domains), len(o.nets)
}
