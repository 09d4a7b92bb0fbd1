package dnsblast

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"

	"github.com/miekg/dns"

	"github.com/v6matrix/v6matrix/internal/resolve"
)

// Wire format, by hand as massdns does: a query is built into a reused buffer and an
// answer is read without unpacking it into records.

const headerLen = 12

// appendQuery appends a query for name/qtype with recursion desired and an EDNS0 OPT
// record advertising udpSize (0: none). The id is set at send time.
func appendQuery(b []byte, name string, qtype uint16, udpSize uint16) ([]byte, error) {
	arcount := uint16(0)
	if udpSize > 0 {
		arcount = 1
	}
	b = append(b, 0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, byte(arcount>>8), byte(arcount))
	name = strings.TrimSuffix(name, ".")
	for name != "" {
		label, rest, _ := strings.Cut(name, ".")
		if len(label) == 0 || len(label) > 63 {
			return nil, errors.New("invalid name")
		}
		b = append(b, byte(len(label)))
		b = append(b, label...)
		name = rest
	}
	b = append(b, 0, byte(qtype>>8), byte(qtype), 0, 1)
	if udpSize > 0 {
		b = append(b, 0, 0, 41, byte(udpSize>>8), byte(udpSize), 0, 0, 0, 0, 0, 0)
	}
	return b, nil
}

// questionEnd returns the end of the question section of a query built by appendQuery.
func questionEnd(q []byte) int {
	off := headerLen
	for q[off] != 0 {
		off += int(q[off]) + 1
	}
	return off + 5
}

// answer is what the reader takes from a response: enough to match it to its query
// and to find the next names, as massdns's users do in a pipeline.
type answer struct {
	id     uint16
	rcode  int
	names  []string // NS or MX targets, or the CNAME target of an address query
	cname  bool     // names holds a CNAME target and the answer has no data of the type
	hasSOA bool     // authority section has an SOA (a negative answer)
}

// parse reads a response to query q (the wire sent). It reports false when p does not
// answer q: not a response, another question.
func parse(p, q []byte, qtype uint16) (answer, bool) {
	var a answer
	if len(p) < headerLen || p[2]&0x80 == 0 {
		return a, false
	}
	a.id = binary.BigEndian.Uint16(p)
	a.rcode = int(p[3] & 0x0f)
	qe := questionEnd(q)
	if len(p) < qe || binary.BigEndian.Uint16(p[4:]) != 1 || !bytes.EqualFold(p[headerLen:qe], q[headerLen:qe]) {
		return a, false
	}
	an, ns := int(binary.BigEndian.Uint16(p[6:])), int(binary.BigEndian.Uint16(p[8:]))
	off := qe
	var data bool
	var target string
	for i := 0; i < an+ns; i++ {
		var ok bool
		if off, ok = resolve.SkipName(p, off); !ok || off+10 > len(p) {
			return a, true
		}
		t := binary.BigEndian.Uint16(p[off:])
		rdlen := int(binary.BigEndian.Uint16(p[off+8:]))
		rd := off + 10
		off = rd + rdlen
		if off > len(p) {
			return a, true
		}
		if i >= an {
			a.hasSOA = a.hasSOA || t == dns.TypeSOA
			continue
		}
		switch {
		case t == qtype && t == dns.TypeNS:
			if n, _, err := dns.UnpackDomainName(p, rd); err == nil {
				a.names = append(a.names, n)
			}
		case t == qtype && t == dns.TypeMX && rdlen > 2:
			if n, _, err := dns.UnpackDomainName(p, rd+2); err == nil && n != "." {
				a.names = append(a.names, n)
			}
		case t == qtype:
			data = true
		case t == dns.TypeCNAME && (qtype == dns.TypeA || qtype == dns.TypeAAAA):
			if n, _, err := dns.UnpackDomainName(p, rd); err == nil {
				target = n
			}
		}
	}
	if !data && len(a.names) == 0 && target != "" {
		a.names, a.cname = []string{target}, true
	}
	return a, true
}
