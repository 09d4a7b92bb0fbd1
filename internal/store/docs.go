package store

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"sync"

	"github.com/v6matrix/v6matrix/internal/probe/dns53"
	"github.com/v6matrix/v6matrix/internal/result"
)

// docVersion is the first byte of every stored domain document. A document of another
// version is not read (DomainDoc says ErrNotFound, and the website reads the domain's
// tables instead) until the run is summarised again.
const docVersion = 1

// ownDetail returns d with only its own hosts and their addresses: Details shares one
// map of hosts and one of addresses among a page of domains.
func ownDetail(d *Detail) Detail {
	o := *d
	o.HostsByName = make(map[string]result.Host, len(d.Hosts))
	o.Addrs = map[netip.Addr]result.Address{}
	for _, ref := range d.Hosts {
		h, ok := d.HostsByName[ref.Name]
		if !ok {
			continue
		}
		o.HostsByName[ref.Name] = h
		for _, ip := range append(h.V4[:len(h.V4):len(h.V4)], h.V6...) {
			if a, ok := d.Addrs[ip]; ok {
				o.Addrs[ip] = a
			}
		}
	}
	return o
}

// storedDoc is a domain document as stored: the detail's fields by name.
type storedDoc struct {
	Domain   result.Domain
	Hosts    map[string]result.Host
	Addrs    map[netip.Addr]result.Address
	NSChecks map[netip.Addr]*dns53.Result `json:",omitempty"`
}

// Compressors are pooled: a new flate writer allocates about a megabyte.
var (
	flateWriters = sync.Pool{New: func() any {
		w, _ := flate.NewWriter(nil, flate.BestSpeed)
		return w
	}}
	flateReaders sync.Pool
)

// encodeDoc returns the stored form of a domain's document: the version byte, then its
// JSON, deflated (a synthetic domain's 2.4 KB of JSON becomes about 600 bytes).
func encodeDoc(d *Detail) ([]byte, error) {
	o := ownDetail(d)
	js, err := json.Marshal(storedDoc{Domain: o.Domain, Hosts: o.HostsByName, Addrs: o.Addrs, NSChecks: o.NSChecks})
	if err != nil {
		return nil, fmt.Errorf("encode the document of %s: %w", d.Name, err)
	}
	var buf bytes.Buffer
	buf.Grow(len(js)/3 + 16)
	buf.WriteByte(docVersion)
	w := flateWriters.Get().(*flate.Writer)
	defer flateWriters.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(js); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeDoc reads a stored document; ok is false when it is of another version.
func decodeDoc(b []byte) (d Detail, ok bool, err error) {
	if len(b) == 0 || b[0] != docVersion {
		return d, false, nil
	}
	src := bytes.NewReader(b[1:])
	r, _ := flateReaders.Get().(io.ReadCloser)
	if r == nil {
		r = flate.NewReader(src)
	} else if err := r.(flate.Resetter).Reset(src, nil); err != nil {
		return d, false, err
	}
	defer flateReaders.Put(r)
	var sd storedDoc
	if err := json.NewDecoder(r).Decode(&sd); err != nil {
		return d, false, fmt.Errorf("damaged domain document: %w", err)
	}
	return Detail{Domain: sd.Domain, HostsByName: sd.Hosts, Addrs: sd.Addrs, NSChecks: sd.NSChecks}, true, nil
}

// withDoc scans a history row and, after its columns, the document.
type withDoc struct {
	rowScanner
	doc *[]byte
}

func (w withDoc) Scan(dest ...any) error { return w.rowScanner.Scan(append(dest, w.doc)...) }

// readDomainPage reads the rows of a DomainPage query: a history point each, with the
// run's document (the same in every row; NULL when there is none).
func readDomainPage(rows rowIter, run int64, name string) (Detail, []HistoryPoint, error) {
	var doc []byte
	hist, err := collect(rows, func(sc rowScanner) (HistoryPoint, error) { return scanHistory(withDoc{sc, &doc}) })
	if err != nil {
		return Detail{}, nil, fmt.Errorf("read history of %s: %w", name, err)
	}
	d, err := docDetail(doc, run, name)
	return d, hist, err
}

// docDetail decodes a document that DomainDoc or DomainPage read: ErrNotFound when
// there was none (nil) or it is of another version.
func docDetail(doc []byte, run int64, name string) (Detail, error) {
	d, ok, err := decodeDoc(doc)
	if err == nil && !ok {
		err = fmt.Errorf("no document of %s in run %d (or of another version): %w", name, run, ErrNotFound)
	}
	return d, err
}
