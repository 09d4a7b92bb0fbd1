// Package web is the Matrix website and its API: server-rendered pages (html/template,
// assets embedded with go:embed) and JSON/CSV endpoints, all read from a store's run
// summaries (internal/summary) so that no page reads every domain of a run. JavaScript
// only draws the charts and the map; every table works without it. Nothing is loaded
// from another origin.
package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/v6matrix/v6matrix/internal/infopage"
	"github.com/v6matrix/v6matrix/internal/store"
)

//go:embed static
var staticFS embed.FS

// Config is what the server needs.
type Config struct {
	Store store.Store
	// Info describes the crawler for /about and takes its opt-out requests.
	Info   infopage.Config
	Logger *slog.Logger
	// Registry receives the server's metrics (default a new registry with the Go and
	// process collectors); /metrics serves it.
	Registry *prometheus.Registry
	// InfoOnly serves just the crawler's info page (for port 80 of the crawl host).
	InfoOnly bool
	// Jobs, if set, reads a distributed run's jobs by stage, vantage and state
	// (distrib.Progress; serve sets it for a PostgreSQL store): /runs and /api/v1/runs
	// show the progress of the runs not yet done.
	Jobs func(ctx context.Context, run int64) ([]store.JobCount, error)
	// Live is how often /runs refreshes its table while a run is in progress (default
	// liveEvery). The counts it shows of a run not yet summarised are up to countsTTL
	// old: counting a run's domains is a scan of them.
	Live time.Duration
}

// liveEvery is Config.Live's default.
const liveEvery = 5 * time.Second

// countsTTL is how long the counts of a run not yet summarised are kept.
const countsTTL = 10 * time.Second

// Server serves the site, the API and /metrics.
type Server struct {
	cfg      Config
	st       store.Store
	log      *slog.Logger
	info     *infopage.Handler
	mux      *http.ServeMux
	reg      *prometheus.Registry
	duration *prometheus.HistogramVec
	assets   map[string]asset
	names    map[string]string // country code -> name, from the map's GeoJSON

	mu     sync.Mutex
	counts map[int64]countsEntry // Counts of unfinished runs, briefly cached
	// vantageCounts are the vantages' counts (vantageCount), by "run vantage".
	vantageCounts map[string]vantageCountEntry
	cache         *responseCache
	latestRun     latestEntry         // the latest run under the cache's store version
	jobs          map[int64]jobsEntry // the progress of distributed runs, briefly cached
	activeRuns    []store.Run         // the runs not done, as of the store's version
	// diffs serializes the building of diffs: each holds the store's write lock.
	diffs sync.Mutex
}

type countsEntry struct {
	at time.Time
	c  store.Counts
}

// New returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Store == nil && !cfg.InfoOnly {
		return nil, errors.New("web: no store")
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	if cfg.Info.Logger == nil {
		cfg.Info.Logger = cfg.Logger
	}
	s := &Server{cfg: cfg, st: cfg.Store, log: cfg.Logger, info: infopage.New(cfg.Info), mux: http.NewServeMux(), reg: reg,
		counts: map[int64]countsEntry{}, vantageCounts: map[string]vantageCountEntry{}, jobs: map[int64]jobsEntry{}}
	s.cache = newResponseCache(cacheBytes, s.storeVersion)
	s.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "v6matrix_http_request_duration_seconds",
		Help:    "Time to serve a request of the website or API, by route and status code.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .015, .02, .03, .04, .05, .075, .1, .25, .5, 1, 2.5, 10},
	}, []string{"route", "code"})
	if err := reg.Register(s.duration); err != nil {
		return nil, fmt.Errorf("web: metrics: %w", err)
	}
	var err error
	if s.assets, err = loadAssets(); err != nil {
		return nil, err
	}
	s.names = countryNames(s.assets)
	for _, rt := range s.routes() {
		if cfg.InfoOnly && !rt.info {
			continue
		}
		s.handle(rt)
	}
	if cfg.InfoOnly {
		s.mux.Handle("GET /{$}", http.RedirectHandler("/about", http.StatusFound))
	}
	s.mux.Handle("/", s.instrument("notfound", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, notFound("no page %s", r.URL.Path))
	})))
	return s, nil
}

// route is one entry of the route table: the mux pattern, the label of its metrics, its
// handler, and whether it is part of the documented API (openapi.json) or of the
// info-only server.
type route struct {
	pattern string
	name    string
	h       func(w http.ResponseWriter, r *http.Request) error
	api     bool
	info    bool
}

// routes is the site's one table of routes.
func (s *Server) routes() []route {
	return []route{
		{"GET /{$}", "overview", s.overview, false, false},
		{"GET /tlds", "tlds", s.tldsPage, false, false},
		{"GET /tld/{tld}", "tld", s.tldPage, false, false},
		{"GET /map", "map", s.mapPage, false, false},
		{"GET /country/{cc}", "country", s.countryPage, false, false},
		{"GET /asn/{asn}", "asn", s.asnPage, false, false},
		{"GET /domain/{name}", "domain", s.domainPage, false, false},
		{"GET /runs", "runs", s.runsPage, false, false},
		{"GET /runs/{a}/diff/{b}", "diff", s.diffPage, false, false},
		{"GET /runs/{run}/vantages", "vantages", s.vantagesPage, false, false},
		{"GET /search", "search", s.searchPage, false, false},
		{"GET /about", "about", s.aboutPage, false, true},
		{"POST /about", "optout", s.optOut, false, true},
		{"GET /badge/{file}", "badge", s.badge, false, false},
		{"GET /static/{file...}", "static", s.static, false, true},
		{"GET /favicon.ico", "static", s.favicon, false, true},
		{"GET /api/v1/openapi.json", "api_openapi", s.openapi, true, false},
		{"GET /api/v1/runs", "api_runs", s.apiRuns, true, false},
		{"GET /api/v1/trend", "api_trend", s.apiTrend, true, false},
		{"GET /api/v1/runs/{run}/tlds", "api_tlds", s.apiTLDs, true, false},
		{"GET /api/v1/runs/{run}/tlds/{tld}/domains", "api_domains", s.apiDomains, true, false},
		{"GET /api/v1/runs/{run}/domains/{name}", "api_domain", s.apiDomain, true, false},
		{"GET /api/v1/runs/{run}/countries", "api_countries", s.apiCountries, true, false},
		{"GET /api/v1/runs/{run}/diff/{other}", "api_diff", s.apiDiff, true, false},
		{"GET /api/v1/runs/{run}/vantages", "api_vantages", s.apiVantages, true, false},
		{"GET /api/v1/runs/{run}/export/{file}", "api_export", s.apiExport, true, false},
	}
}

func (s *Server) handle(rt route) {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := rt.h(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
	if !uncached[rt.name] && !s.cfg.InfoOnly {
		h = s.cachedHandler(h, rt.name == "runs" || rt.name == "api_runs")
	}
	s.mux.Handle(rt.pattern, s.instrument(rt.name, h))
}

// uncached are the routes whose answers are not kept: the form (its token changes),
// static files (served from memory already), bulk downloads (streamed), and the
// comparison of vantages (a second vantage measures a finished run, which the store's
// version does not see; its counts are kept a minute, its pages are bounded).
var uncached = map[string]bool{"about": true, "optout": true, "static": true, "api_export": true,
	"vantages": true, "api_vantages": true}

// cacheBytes bounds the response cache.
const cacheBytes = 64 << 20

// instrument times a route for /metrics.
func (s *Server) instrument(name string, h http.Handler) http.Handler {
	return promhttp.InstrumentHandlerDuration(s.duration.MustCurryWith(prometheus.Labels{"route": name}), h)
}

// ServeHTTP adds the security headers, bounds the request and serves it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	if r.URL.Path == "/metrics" && !s.cfg.InfoOnly {
		promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}).ServeHTTP(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("web: panic", "path", r.URL.Path, "panic", v)
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	}()
	s.mux.ServeHTTP(w, r)
}

// csp allows nothing from another origin and no inline script or style.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// maxBody bounds a request body (the opt-out form is the only one).
const maxBody = 64 << 10

// HTTPServer returns an http.Server for s with timeouts that a public site needs.
func HTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 10 * time.Minute, // bulk downloads of a large run stream for minutes
		IdleTimeout:  2 * time.Minute, MaxHeaderBytes: 16 << 10}
}

// httpError is an error with the status to answer.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func notFound(format string, args ...any) error {
	return &httpError{http.StatusNotFound, fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// fail answers an error: a page or JSON, by path; store.ErrNotFound is a 404.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, msg := http.StatusInternalServerError, "internal error"
	var he *httpError
	switch {
	case errors.As(err, &he):
		status, msg = he.status, he.msg
	case errors.Is(err, store.ErrNotFound):
		status, msg = http.StatusNotFound, err.Error()
	case errors.Is(err, context.Canceled):
		return
	default:
		s.log.Error("web: request failed", "path", r.URL.Path, "err", err)
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSON(w, status, map[string]string{"error": msg})
		return
	}
	s.render(w, r, status, "error.html", page{Title: http.StatusText(status), Data: msg})
}

// runParam resolves a run argument: "latest" (the newest finished run) or an id.
// The run must be summarised.
func (s *Server) runParam(ctx context.Context, v string) (store.Run, error) {
	if v == "latest" {
		return s.latest(ctx)
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return store.Run{}, notFound("no run %q: want a run number or latest", v)
	}
	r, err := s.st.GetRun(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return r, notFound("no run %d", id)
	}
	if err != nil {
		return r, err // a 500, logged and not cached: the store failed, not the request
	}
	built, err := s.st.Summarised(ctx, id)
	if err != nil {
		return r, err
	}
	if built.IsZero() {
		return r, notFound("run %d has no results to show yet (it is %s)", id, r.State)
	}
	return r, nil
}

// latest returns the newest finished, summarised run; the answer is kept while the
// store's version (read at most every versionTTL) stays the same.
func (s *Server) latest(ctx context.Context) (store.Run, error) {
	version, err := s.cache.currentVersion(ctx)
	if err != nil {
		return store.Run{}, err
	}
	s.mu.Lock()
	l := s.latestRun
	s.mu.Unlock()
	if l.version == version && l.version != "" {
		return l.run, l.err
	}
	run, err := s.findLatest(ctx)
	s.mu.Lock()
	s.latestRun = latestEntry{version, run, err}
	s.mu.Unlock()
	return run, err
}

// latestEntry is the latest run as found under a store version.
type latestEntry struct {
	version string
	run     store.Run
	err     error
}

func (s *Server) findLatest(ctx context.Context) (store.Run, error) {
	runs, err := s.st.ListRuns(ctx)
	if err != nil {
		return store.Run{}, err
	}
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].State != store.RunDone {
			continue
		}
		built, err := s.st.Summarised(ctx, runs[i].ID)
		if err != nil {
			return store.Run{}, err
		}
		if !built.IsZero() {
			return runs[i], nil
		}
	}
	return store.Run{}, notFound("no finished run yet: crawl a list first (v6matrix crawl)")
}

// counts returns a run's counts, cached for a few seconds (they read every domain).
func (s *Server) runCounts(ctx context.Context, run int64) (store.Counts, error) {
	s.mu.Lock()
	e, ok := s.counts[run]
	s.mu.Unlock()
	if ok && time.Since(e.at) < countsTTL {
		return e.c, nil
	}
	c, err := s.st.Counts(ctx, run)
	if err != nil {
		return c, err
	}
	s.mu.Lock()
	s.counts[run] = countsEntry{time.Now(), c}
	s.mu.Unlock()
	return c, nil
}

// subFS is the static directory.
func subFS() fs.FS {
	f, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return f
}

//go:embed openapi.json
var openapiJSON []byte

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	w.Write(openapiJSON)
	return nil
}
