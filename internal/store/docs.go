package store

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	kflate "github.com/klauspost/compress/flate"

	"github.com/v6matrix/v6matrix/internal/probe/dns53"
	"github.com/v6matrix/v6matrix/internal/result"
)

// docVersion is the first byte of every stored domain document. A document of another
// version is not read (DomainDoc says ErrNotFound, and the website reads the domain's
// tables instead) until the run is summarised again.
const docVersion = 1

// storedDoc is a domain document as stored: the detail's fields by name, its own
// hosts and addresses only (Details shares one map of each among a page of domains).
// docEncoder writes the JSON of it by hand, byte for byte as encoding/json would, so
// that documents read back (decodeDoc) as this struct.
type storedDoc struct {
	Domain   result.Domain
	Hosts    map[string]result.Host
	Addrs    map[netip.Addr]result.Address
	NSChecks map[netip.Addr]*dns53.Result `json:",omitempty"`
}

// Compressors are pooled: a new flate writer allocates about a megabyte. Documents are
// deflated by klauspost/compress's encoder: the same format (read by the standard
// library's), in half the time of compress/flate's at level 1 on the documents of a
// 100k crawl (52 to 25 µs a document); deflating was a fifth of summary.Build.
var (
	flateWriters = sync.Pool{New: func() any {
		w, _ := kflate.NewWriter(nil, kflate.BestSpeed)
		return w
	}}
	flateReaders sync.Pool
	jsonBuffers  = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

// memberCacheSize bounds the addresses' and the hosts' JSON a docEncoder keeps (a
// generation of genCache; an address's JSON is about 1.1 KB, a host's a tenth).
const memberCacheSize = 8192

// docEncoder encodes domain documents. A run's name servers are in the documents of
// many domains: a crawl of 100,000 domains had 692,562 addresses in its documents, of
// 44,884 unique, and encoding each again was a third of writing the documents. So it
// keeps the JSON of addresses and hosts with what it encoded, for an equal one: a host
// of the same content, an address with the same measurements, by pointer (Details'
// addresses are shared across its pages; measurements are never changed once read).
// It is safe for concurrent use. What it keeps holds a run's measurements, so it is
// dropped a while after the last documents (docCacheIdle): a server summarises a run
// now and then.
type docEncoder struct {
	mu    sync.Mutex
	addrs *genCache[netip.Addr, member[result.Address]]
	hosts *genCache[string, member[result.Host]]
	drop  *time.Timer // drops addrs and hosts
}

// docCacheIdle is how long a docEncoder keeps its JSON after the last documents.
const docCacheIdle = 30 * time.Second

// member is a value encoded as a member of a document's object of its kind ("Addrs",
// "Hosts"): key is its text (what encoding/json sorts a map by), js the quoted key, a
// colon and the value's JSON.
type member[T any] struct {
	v   T
	key string
	js  []byte
}

func newDocEncoder() *docEncoder {
	e := &docEncoder{}
	e.clear()
	e.drop = time.AfterFunc(docCacheIdle, e.clear)
	return e
}

// clear drops what the encoder keeps.
func (e *docEncoder) clear() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.addrs = newGenCache[netip.Addr, member[result.Address]](memberCacheSize)
	e.hosts = newGenCache[string, member[result.Host]](memberCacheSize)
}

// encodeAll encodes the documents of ds, on every processor: compressing them is
// most of writing them.
func (e *docEncoder) encodeAll(ds []*Detail) ([][]byte, error) {
	out := make([][]byte, len(ds))
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, runtime.GOMAXPROCS(0))
	for w := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < len(ds); i = int(next.Add(1) - 1) {
				if out[i], errs[w] = e.encode(ds[i]); errs[w] != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	e.drop.Reset(docCacheIdle)
	return out, errors.Join(errs...)
}

// encode returns the stored form of a domain's document: the version byte, then the
// JSON of its storedDoc, deflated (a synthetic domain's 2.4 KB of JSON becomes about
// 600 bytes).
func (e *docEncoder) encode(d *Detail) ([]byte, error) {
	js := jsonBuffers.Get().(*bytes.Buffer)
	defer jsonBuffers.Put(js)
	js.Reset()
	if err := e.writeJSON(js, d); err != nil {
		return nil, fmt.Errorf("encode the document of %s: %w", d.Name, err)
	}
	var buf bytes.Buffer
	buf.Grow(js.Len()/3 + 16)
	buf.WriteByte(docVersion)
	w := flateWriters.Get().(*kflate.Writer)
	defer flateWriters.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(js.Bytes()); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeJSON writes what json.Marshal writes of d's storedDoc: the fields in order,
// map keys sorted (an address by its text), no space.
func (e *docEncoder) writeJSON(js *bytes.Buffer, d *Detail) error {
	js.WriteString(`{"Domain":`)
	if err := writeValue(js, d.Domain); err != nil {
		return err
	}
	var hosts []member[result.Host]
	var addrs []member[result.Address]
	seen := map[netip.Addr]bool{}
	for _, ref := range d.Hosts {
		h, ok := d.HostsByName[ref.Name]
		if !ok || slices.ContainsFunc(hosts, func(m member[result.Host]) bool { return m.key == ref.Name }) {
			continue
		}
		m, err := cachedMember(e, func() *genCache[string, member[result.Host]] { return e.hosts }, ref.Name, h, sameHost, func() (string, error) { return ref.Name, nil })
		if err != nil {
			return err
		}
		hosts = append(hosts, m)
		for _, ip := range append(h.V4[:len(h.V4):len(h.V4)], h.V6...) {
			a, ok := d.Addrs[ip]
			if !ok || seen[ip] {
				continue
			}
			seen[ip] = true
			m, err := cachedMember(e, func() *genCache[netip.Addr, member[result.Address]] { return e.addrs }, ip, a, func(x, y result.Address) bool { return x == y }, func() (string, error) {
				text, err := ip.MarshalText()
				return string(text), err
			})
			if err != nil {
				return err
			}
			addrs = append(addrs, m)
		}
	}
	js.WriteString(`,"Hosts":`)
	writeObject(js, hosts)
	js.WriteString(`,"Addrs":`)
	writeObject(js, addrs)
	if len(d.NSChecks) > 0 {
		js.WriteString(`,"NSChecks":`)
		if err := writeValue(js, d.NSChecks); err != nil {
			return err
		}
	}
	js.WriteByte('}')
	return nil
}

// writeObject writes members as an object, sorted by key as encoding/json sorts a map.
func writeObject[T any](js *bytes.Buffer, ms []member[T]) {
	slices.SortFunc(ms, func(a, b member[T]) int { return strings.Compare(a.key, b.key) })
	js.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			js.WriteByte(',')
		}
		js.Write(m.js)
	}
	js.WriteByte('}')
}

// sameHost reports whether two hosts encode the same.
func sameHost(a, b result.Host) bool {
	return a.Name == b.Name && a.Status == b.Status && a.AStatus == b.AStatus && a.AAAAStatus == b.AAAAStatus &&
		slices.Equal(a.CNAME, b.CNAME) && slices.Equal(a.V4, b.V4) && slices.Equal(a.V6, b.V6)
}

// cachedMember returns v as a member under k, from the encoder's cache c (called with
// its lock held) when it holds one the same as v (same), else encoded (with its key
// from key) and kept there.
func cachedMember[K comparable, T any](e *docEncoder, c func() *genCache[K, member[T]], k K, v T,
	same func(T, T) bool, key func() (string, error)) (member[T], error) {
	e.mu.Lock()
	m, ok := c().get(k)
	e.mu.Unlock()
	if ok && same(m.v, v) {
		return m, nil
	}
	text, err := key()
	if err != nil {
		return m, err
	}
	var js bytes.Buffer
	if err := writeValue(&js, text); err != nil {
		return m, err
	}
	js.WriteByte(':')
	if err := writeValue(&js, v); err != nil {
		return m, err
	}
	m = member[T]{v: v, key: text, js: js.Bytes()}
	e.mu.Lock()
	c().put(k, m)
	e.mu.Unlock()
	return m, nil
}

// writeValue writes v's JSON as json.Marshal does (HTML characters escaped).
func writeValue(js *bytes.Buffer, v any) error {
	b, err := json.Marshal(v)
	js.Write(b)
	return err
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
