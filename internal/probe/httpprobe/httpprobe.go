// Package httpprobe asks a web server for its front page over HTTP on port 80, once per
// address: whether the server answers HTTP there (not just accepts the connection), with
// which status, over IPv4 and IPv6 alike. Every request carries the crawler's
// User-Agent ("v6matrix/<version> (+<info URL>)"), so an operator who sees it in a log
// can find out who we are. Only the status line and headers are read.
package httpprobe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"

	"github.com/v6matrix/v6matrix/internal/probe"
)

// DefaultTimeout bounds a whole request.
const DefaultTimeout = 5 * time.Second

// Status is the outcome of one request.
type Status string

// The outcomes.
const (
	StatusOK          Status = "ok"          // an HTTP response arrived (any status code)
	StatusNotHTTP     Status = "not-http"    // the connection opened but no HTTP response came
	StatusRefused     Status = "refused"     // the TCP connection was refused (RST)
	StatusTimeout     Status = "timeout"     // nothing within the timeout
	StatusUnreachable Status = "unreachable" // an ICMP error
)

// Result is the outcome of one request.
type Result struct {
	Status Status
	// Code is the HTTP status code; nil unless Status is ok.
	Code *int
	// Server is the response's Server header, when there is one.
	Server string
	// Location is the redirect target of a 3xx response (not followed).
	Location string
	// Detail says what went wrong when Status is not ok.
	Detail string
}

// Prober sends HEAD-less GET requests (some servers mishandle HEAD) and reads only the
// headers. UserAgent must be set.
type Prober struct {
	UserAgent string
	Timeout   time.Duration
	// Dialer opens the TCP connection (default a *net.Dialer).
	Dialer *net.Dialer
	// Port is the destination port (default 80; tests use another).
	Port uint16
}

// Probe requests http://host/ from addr, with Host set to host (the www name).
func (p *Prober) Probe(ctx context.Context, addr netip.Addr, host string) (Result, error) {
	if p.UserAgent == "" {
		return Result{}, errors.New("http probe: no User-Agent set")
	}
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	port := p.Port
	if port == 0 {
		port = 80
	}
	d := p.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	network, err := probe.Network("tcp", addr)
	if err != nil {
		return Result{}, err
	}
	target := probe.HostPort(addr, port)
	// One transport per request: the address is dialled, never the name, and no
	// connection is kept for reuse.
	tr := &http.Transport{
		DialContext:            func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, network, target) },
		DisableKeepAlives:      true,
		ResponseHeaderTimeout:  timeout,
		MaxResponseHeaderBytes: 64 << 10,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/", nil)
	if err != nil {
		return Result{}, fmt.Errorf("http probe %s: %w", host, err)
	}
	req.Header.Set("User-Agent", p.UserAgent)
	req.Header.Set("Accept", "*/*")
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return Result{}, ctx.Err()
		}
		return classify(err), nil
	}
	resp.Body.Close()
	code := resp.StatusCode
	return Result{Status: StatusOK, Code: &code, Server: resp.Header.Get("Server"), Location: resp.Header.Get("Location")}, nil
}

// classify turns a failed request into an outcome.
func classify(err error) Result {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED): // an RST: for TCP not an ICMP error
		return Result{Status: StatusRefused, Detail: probe.ErrnoText(err)}
	case probe.IsTimeout(err) || errors.Is(err, context.DeadlineExceeded):
		return Result{Status: StatusTimeout}
	case probe.IsUnreachable(err):
		return Result{Status: StatusUnreachable, Detail: probe.ErrnoText(err)}
	default:
		return Result{Status: StatusNotHTTP, Detail: err.Error()}
	}
}
