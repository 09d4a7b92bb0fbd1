// Package infopage serves the crawler's own web page: what v6matrix is, what it sends
// and how often, who runs it, and a form that takes opt-out requests. Operators run it
// on port 80 of the crawl's source addresses (docs/POLITENESS.md), so that whoever
// finds those addresses in a log can learn who we are and ask to be left out.
//
// Requests are appended to a JSON Lines file for the operator to review and copy into
// the --exclude list; nothing is applied automatically.
package infopage

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/v6matrix/v6matrix/internal/domains"
)

//go:embed templates/*.html
var templates embed.FS

var pages = template.Must(template.ParseFS(templates, "templates/*.html"))

// Config describes the crawl the page speaks for.
type Config struct {
	Operator string   // who runs the crawler
	Contact  string   // abuse / opt-out contact (an e-mail address)
	Sources  []string // the crawl's source addresses
	Ports    []string // destination ports used, e.g. "tcp/25"
	Rate     string   // the politeness limits, in words
	Version  string
	// Requests is the file opt-out requests are appended to (JSON Lines).
	Requests string
	Logger   *slog.Logger
	Now      func() time.Time
}

// Request is one opt-out request as stored.
type Request struct {
	Time     time.Time `json:"time"`
	From     string    `json:"from"` // the requester's address
	Networks []string  `json:"networks,omitempty"`
	Domains  []string  `json:"domains,omitempty"`
	Contact  string    `json:"contact,omitempty"`
	Comment  string    `json:"comment,omitempty"`
}

// Handler serves the page and takes requests.
type Handler struct {
	cfg  Config
	mu   sync.Mutex           // serialises appends to the requests file
	seen map[string]time.Time // last request per client address, for a simple rate limit
}

// New returns a Handler for cfg.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Handler{cfg: cfg, seen: map[string]time.Time{}}
}

// maxForm bounds a request body; an opt-out needs a few lines.
const maxForm = 16 << 10

// maxEntries bounds the networks and domains of one request.
const maxEntries = 100

// ServeHTTP serves GET / and POST /opt-out.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	switch {
	case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		h.render(w, http.StatusOK, "index.html", pageData{Config: h.cfg})
	case r.URL.Path == "/opt-out" && r.Method == http.MethodPost:
		h.optOut(w, r)
	case r.URL.Path == "/" || r.URL.Path == "/opt-out":
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	default:
		http.NotFound(w, r)
	}
}

type pageData struct {
	Config
	Errors  []string
	Request *Request
	Form    map[string]string
}

func (h *Handler) render(w http.ResponseWriter, status int, name string, d pageData) {
	w.WriteHeader(status)
	if err := pages.ExecuteTemplate(w, name, d); err != nil {
		h.cfg.Logger.Error("info page", "template", name, "err", err)
	}
}

// rateGap is the least time between two requests from one client address.
const rateGap = 10 * time.Second

func (h *Handler) optOut(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.render(w, http.StatusBadRequest, "index.html", pageData{Config: h.cfg, Errors: []string{"the form could not be read"}})
		return
	}
	from := clientAddr(r)
	req, errs := parseRequest(r.PostForm)
	form := map[string]string{"targets": r.PostForm.Get("targets"), "contact": r.PostForm.Get("contact"), "comment": r.PostForm.Get("comment")}
	if len(errs) > 0 {
		h.render(w, http.StatusBadRequest, "index.html", pageData{Config: h.cfg, Errors: errs, Form: form})
		return
	}
	now := h.cfg.Now()
	h.mu.Lock()
	if last, ok := h.seen[from]; ok && now.Sub(last) < rateGap {
		h.mu.Unlock()
		h.render(w, http.StatusTooManyRequests, "index.html", pageData{Config: h.cfg, Form: form,
			Errors: []string{"one request every few seconds, please: try again in a moment"}})
		return
	}
	h.seen[from] = now
	req.Time, req.From = now.UTC(), from
	err := h.appendRequest(req)
	h.mu.Unlock()
	if err != nil {
		h.cfg.Logger.Error("opt-out request not saved", "err", err)
		h.render(w, http.StatusInternalServerError, "index.html", pageData{Config: h.cfg, Form: form,
			Errors: []string{"your request could not be saved; please write to the contact address"}})
		return
	}
	h.cfg.Logger.Info("opt-out request", "from", from, "networks", req.Networks, "domains", req.Domains)
	h.render(w, http.StatusOK, "done.html", pageData{Config: h.cfg, Request: &req})
}

// parseRequest validates the form: targets are networks (CIDR or address) or domains,
// one per line or separated by spaces or commas.
func parseRequest(form map[string][]string) (Request, []string) {
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	var req Request
	var errs []string
	fields := strings.FieldsFunc(get("targets"), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	if len(fields) == 0 {
		errs = append(errs, "name at least one network (e.g. 192.0.2.0/24, 2001:db8::/32) or domain (e.g. example.org)")
	}
	if len(fields) > maxEntries {
		errs = append(errs, fmt.Sprintf("at most %d networks and domains per request", maxEntries))
		fields = nil
	}
	for _, f := range fields {
		if p, err := netip.ParsePrefix(f); err == nil {
			req.Networks = append(req.Networks, p.Masked().String())
			continue
		}
		if a, err := netip.ParseAddr(f); err == nil {
			req.Networks = append(req.Networks, netip.PrefixFrom(a, a.BitLen()).String())
			continue
		}
		d, err := domains.Normalize(f)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%q is neither a network nor a domain", f))
			continue
		}
		req.Domains = append(req.Domains, d)
	}
	req.Contact, req.Comment = get("contact"), get("comment")
	if len(req.Contact) > 254 || strings.ContainsAny(req.Contact, "\r\n") {
		errs = append(errs, "the contact address is not valid")
	}
	if len(req.Comment) > 2000 {
		errs = append(errs, "the comment is longer than 2000 characters")
	}
	return req, errs
}

func (h *Handler) appendRequest(req Request) error {
	if h.cfg.Requests == "" {
		return fmt.Errorf("no requests file configured")
	}
	f, err := os.OpenFile(h.cfg.Requests, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(req)
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// clientAddr is the requester's address (the peer of the connection; no proxy
// headers are trusted).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
