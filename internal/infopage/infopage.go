// Package infopage is the crawler's own web page's logic (internal/web renders it at
// /about, and alone with `serve --info-only`): what v6matrix is, what it sends
// and how often, who runs it, and a form that takes opt-out requests. Operators run it
// on port 80 of the crawl's source addresses (docs/POLITENESS.md), so that whoever
// finds those addresses in a log can learn who we are and ask to be left out.
//
// Requests are appended to a JSON Lines file for the operator to review and copy into
// the --exclude list; nothing is applied automatically.
package infopage

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/v6matrix/v6matrix/internal/domains"
)

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
	key  [32]byte             // signs the form's tokens; new per process
	mu   sync.Mutex           // serialises appends to the requests file
	seen map[string]time.Time // last request per client (clientKey), for a simple rate limit
	hour []time.Time          // the requests taken in the last hour, oldest first
}

// New returns a Handler for cfg.
func New(cfg Config) *Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{cfg: cfg, seen: map[string]time.Time{}}
	rand.Read(h.key[:])
	return h
}

// maxForm bounds a request body; an opt-out needs a few lines.
const maxForm = 16 << 10

// maxEntries bounds the networks and domains of one request.
const maxEntries = 100

// Outcome is what a submitted opt-out form came to: the status to answer, the errors
// to show (with the form as typed, to correct it), or the request as stored.
type Outcome struct {
	Status  int
	Errors  []string
	Form    map[string]string
	Request *Request
}

// rateGap is the least time between two requests from one client: its IPv4 address,
// or its IPv6 /64 (a host has a /64 to pick addresses from).
const rateGap = 10 * time.Second

// maxPerHour bounds the requests taken in any hour from everyone: a script rotating
// addresses cannot fill the requests file (16 KiB a request at most) before the
// operator hears of it; past it, requests wait for the hour to pass.
const maxPerHour = 60

// maxSeen bounds the rate limiter's memory of client addresses.
const maxSeen = 10000

// maxFile bounds the requests file: past it, requests are refused (and the operator
// is told in the log) rather than filling the disk.
const maxFile = 16 << 20

// Config returns the crawler's description, for the page.
func (h *Handler) Config() Config { return h.cfg }

// Token returns the form's anti-forgery token: an HMAC of the hour it was issued, valid
// for two hours, so the form needs no session.
func (h *Handler) Token() string { return h.token(h.cfg.Now().Unix() / 3600) }

func (h *Handler) token(hour int64) string {
	m := hmac.New(sha256.New, h.key[:])
	fmt.Fprintf(m, "opt-out %d", hour)
	return strconv.FormatInt(hour, 10) + "." + hex.EncodeToString(m.Sum(nil)[:16])
}

func (h *Handler) validToken(t string) bool {
	hourText, _, _ := strings.Cut(t, ".")
	hour, err := strconv.ParseInt(hourText, 10, 64)
	now := h.cfg.Now().Unix() / 3600
	if err != nil || hour > now || now-hour > 1 {
		return false
	}
	return hmac.Equal([]byte(t), []byte(h.token(hour)))
}

// Take handles a submitted form (POST): it checks the token and the origin, the rate
// per client address and the fields, then appends the request to the requests file.
func (h *Handler) Take(r *http.Request) Outcome {
	r.Body = http.MaxBytesReader(nil, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return Outcome{Status: http.StatusBadRequest, Errors: []string{"the form could not be read"}}
	}
	form := map[string]string{"targets": r.PostForm.Get("targets"), "contact": r.PostForm.Get("contact"), "comment": r.PostForm.Get("comment")}
	if o := r.Header.Get("Origin"); o != "" && o != "http://"+r.Host && o != "https://"+r.Host {
		return Outcome{Status: http.StatusForbidden, Form: form, Errors: []string{"the form was sent from another site"}}
	}
	if !h.validToken(r.PostForm.Get("token")) {
		return Outcome{Status: http.StatusForbidden, Form: form, Errors: []string{"the form has expired: please send it again"}}
	}
	from := clientAddr(r)
	req, errs := parseRequest(r.PostForm)
	if len(errs) > 0 {
		return Outcome{Status: http.StatusBadRequest, Errors: errs, Form: form}
	}
	now := h.cfg.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	client := clientKey(from)
	if last, ok := h.seen[client]; ok && now.Sub(last) < rateGap {
		return Outcome{Status: http.StatusTooManyRequests, Form: form,
			Errors: []string{"one request every few seconds, please: try again in a moment"}}
	}
	for len(h.hour) > 0 && now.Sub(h.hour[0]) >= time.Hour {
		h.hour = h.hour[1:]
	}
	if len(h.hour) >= maxPerHour {
		h.cfg.Logger.Warn("opt-out requests: the hour's limit is reached; later ones wait", "limit", maxPerHour)
		return Outcome{Status: http.StatusTooManyRequests, Form: form,
			Errors: []string{"too many requests this hour: please try again later, or write to the contact address"}}
	}
	if len(h.seen) >= maxSeen {
		for a, t := range h.seen {
			if now.Sub(t) >= rateGap {
				delete(h.seen, a)
			}
		}
	}
	h.seen[client] = now
	h.hour = append(h.hour, now)
	req.Time, req.From = now.UTC(), from
	if err := h.appendRequest(req); err != nil {
		h.cfg.Logger.Error("opt-out request not saved", "err", err)
		return Outcome{Status: http.StatusInternalServerError, Form: form,
			Errors: []string{"your request could not be saved; please write to the contact address"}}
	}
	h.cfg.Logger.Info("opt-out request", "from", from, "networks", req.Networks, "domains", req.Domains)
	return Outcome{Status: http.StatusOK, Request: &req}
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
	if fi, err := os.Stat(h.cfg.Requests); err == nil && fi.Size() > maxFile {
		return fmt.Errorf("requests file %s is over %d bytes: review it and move it away", h.cfg.Requests, maxFile)
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

// clientKey is what the rate limit counts a client by: its IPv4 address, or its
// IPv6 address's /64.
func clientKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Unmap().Is4() {
		return addr
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
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
