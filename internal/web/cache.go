package web

import (
	"bytes"
	"compress/gzip"
	"container/list"
	"context"
	"fmt"
	"hash/fnv"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/v6matrix/v6matrix/internal/store"
)

// A finished, summarised run never changes, so the pages and API answers drawn from it
// are kept: the response cache holds rendered answers (and their gzip form) by URL, in
// a bounded LRU, under the store's version (a fingerprint of its runs' states and
// summaries, read at most every versionTTL). A new run, a finished crawl or a rebuilt
// summary changes the version and so empties the cache.
type responseCache struct {
	mu       sync.Mutex
	max      int // bytes
	size     int
	ll       *list.List
	items    map[string]*list.Element
	version  string
	checked  time.Time
	versionF func(ctx context.Context) (string, error)
}

type cached struct {
	key     string
	status  int
	header  http.Header
	body    []byte
	etag    string
	version string
	gzOnce  sync.Once // the gzip form is made when a client first asks for it
	gz      []byte
}

// gzipped returns the gzip form of the body (nil for a small one).
func (e *cached) gzipped() []byte {
	e.gzOnce.Do(func() {
		if len(e.body) <= 1024 {
			return
		}
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
		zw.Write(e.body)
		zw.Close()
		e.gz = z.Bytes()
	})
	return e.gz
}

// versionTTL bounds how stale a cached answer can be after the store changes.
const versionTTL = 2 * time.Second

func newResponseCache(maxBytes int, version func(ctx context.Context) (string, error)) *responseCache {
	return &responseCache{max: maxBytes, ll: list.New(), items: map[string]*list.Element{}, versionF: version}
}

// currentVersion returns the store's version, read again when versionTTL has passed.
func (c *responseCache) currentVersion(ctx context.Context) (string, error) {
	c.mu.Lock()
	if time.Since(c.checked) < versionTTL {
		v := c.version
		c.mu.Unlock()
		return v, nil
	}
	c.mu.Unlock()
	v, err := c.versionF(ctx)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v != c.version {
		c.ll.Init()
		c.items, c.size = map[string]*list.Element{}, 0
	}
	c.version, c.checked = v, time.Now()
	return v, nil
}

func (c *responseCache) get(key string) *cached {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil
	}
	c.ll.MoveToFront(e)
	return e.Value.(*cached)
}

func (c *responseCache) put(e *cached) {
	n := entrySize(e)
	if n > c.max/16 {
		return // one answer may not take a large share of the cache
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.version != c.version {
		return
	}
	if old, ok := c.items[e.key]; ok {
		c.size -= entrySize(old.Value.(*cached))
		c.ll.Remove(old)
	}
	c.items[e.key] = c.ll.PushFront(e)
	c.size += n
	for c.size > c.max {
		last := c.ll.Back()
		c.ll.Remove(last)
		ce := last.Value.(*cached)
		delete(c.items, ce.key)
		c.size -= entrySize(ce)
	}
}

// entrySize counts an entry with room for its gzip form (a third of the body, about).
func entrySize(e *cached) int { return len(e.body) + len(e.body)/3 + len(e.key) }

// recorder captures a handler's answer.
type recorder struct {
	header http.Header
	status int
	buf    bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.buf.Write(b)
}

// cachedHandler serves h through the cache: GET answers of 200 or 404 are kept. The
// answers of a route that shows the progress of distributed runs (withJobs) are kept
// under that progress too (jobsKey), which changes while the store's version does not.
func (s *Server) cachedHandler(h http.Handler, withJobs bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.ServeHTTP(w, r)
			return
		}
		version, err := s.cache.currentVersion(r.Context())
		if err != nil {
			h.ServeHTTP(w, r)
			return
		}
		key := r.URL.RequestURI()
		if withJobs {
			jobs, err := s.jobsKey(r.Context())
			if err != nil {
				h.ServeHTTP(w, r)
				return
			}
			if jobs != "" {
				key += " jobs " + jobs
			}
		}
		e := s.cache.get(key)
		if e == nil || e.version != version {
			rec := &recorder{header: http.Header{}}
			// The cache keeps a GET's answer, which a HEAD is answered from (net/http
			// sends no body to a HEAD): rendered for a HEAD, a page has no body, and
			// cached it blanked the page for every later GET.
			fill := r
			if r.Method == http.MethodHead {
				fill = r.Clone(r.Context())
				fill.Method = http.MethodGet
			}
			h.ServeHTTP(rec, fill)
			wrote := rec.status != 0
			if !wrote {
				rec.status = http.StatusOK
			}
			e = &cached{key: key, status: rec.status, header: rec.header, body: rec.buf.Bytes(), version: version}
			sum := fnv.New64a()
			sum.Write(e.body)
			e.etag = fmt.Sprintf(`"%x-%s"`, sum.Sum64(), version)
			// Nothing written (the request's context ended: fail answers nothing) is
			// no answer to keep.
			if wrote && r.Context().Err() == nil && (rec.status == http.StatusOK || rec.status == http.StatusNotFound) {
				s.cache.put(e)
			}
		}
		hd := w.Header()
		for k, v := range e.header {
			hd[k] = v
		}
		hd.Set("ETag", e.etag)
		hd.Add("Vary", "Accept-Encoding")
		if e.status == http.StatusOK && r.Header.Get("If-None-Match") == e.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		body := e.body
		if acceptsGzip(r) {
			if gz := e.gzipped(); gz != nil {
				hd.Set("Content-Encoding", "gzip")
				body = gz
			}
		}
		hd.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(e.status)
		if r.Method != http.MethodHead {
			w.Write(body)
		}
	})
}

// storeVersion fingerprints the runs: their states, ends, summaries and how many
// vantages measured them. It keeps the runs not done, whose jobs jobsKey reads.
func (s *Server) storeVersion(ctx context.Context) (string, error) {
	runs, err := s.st.ListRuns(ctx)
	if err != nil {
		return "", err
	}
	h := fnv.New64a()
	var open []store.Run
	for _, r := range runs {
		built, err := s.st.Summarised(ctx, r.ID)
		if err != nil {
			return "", err
		}
		// A second vantage measures a finished run: the runs page links to the
		// comparison once it has more than one.
		vs, err := s.st.Vantages(ctx, r.ID)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%d %s %d %d %d;", r.ID, r.State, r.Finished.UnixNano(), built.UnixNano(), len(vs))
		if active(r) {
			// A run in progress changes its counts: its answers are kept 10 s at most.
			fmt.Fprintf(h, "%d;", time.Now().Unix()/10)
			open = append(open, r)
		}
	}
	s.mu.Lock()
	s.activeRuns = open
	s.mu.Unlock()
	return strconv.FormatUint(h.Sum64(), 36), nil
}
