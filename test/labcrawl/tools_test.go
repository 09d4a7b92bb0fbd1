package labcrawl_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/v6matrix/v6matrix/internal/lab"
)

// vantage runs whole programs inside the lab's vantage namespace: every packet they send
// stays in the lab (the test process itself never dials a lab address).
type vantage struct{ l *lab.Lab }

// run runs argv in the vantage with a timeout; out is stdout and stderr together, code the
// exit status (a killed program counts as 128+signal). err means it could not run.
func (v vantage) run(ctx context.Context, timeout time.Duration, argv ...string) (out string, code int, err error) {
	return v.runStdin(ctx, timeout, nil, argv...)
}

// runStdin is run with the program's standard input.
func (v vantage) runStdin(ctx context.Context, timeout time.Duration, stdin io.Reader, argv ...string) (out string, code int, err error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var buf bytes.Buffer
	code, err = v.l.Exec(ctx, argv, stdin, &buf, &buf)
	return buf.String(), code, err
}

// pingResult is what iputils ping reports.
type pingResult struct {
	LossPercent float64
	AvgMillis   *float64
}

var (
	pingLossRE = regexp.MustCompile(`([0-9.]+)% packet loss`)
	pingRTTRE  = regexp.MustCompile(`rtt min/avg/max/mdev = ([0-9.]+)/([0-9.]+)/([0-9.]+)/([0-9.]+) ms`)
)

// ping runs iputils `ping -n -c 5 -i 0.2 -W 2 ADDR` (the crawl's count and spacing).
func (v vantage) ping(ctx context.Context, a netip.Addr) (pingResult, string, error) {
	out, _, err := v.run(ctx, 20*time.Second, "ping", "-n", "-c", "5", "-i", "0.2", "-W", "2", a.String())
	if err != nil {
		return pingResult{}, out, err
	}
	m := pingLossRE.FindStringSubmatch(out)
	if m == nil {
		return pingResult{}, out, fmt.Errorf("ping %s: no loss line", a)
	}
	var r pingResult
	r.LossPercent, _ = strconv.ParseFloat(m[1], 64)
	if m := pingRTTRE.FindStringSubmatch(out); m != nil {
		avg, _ := strconv.ParseFloat(m[2], 64)
		r.AvgMillis = &avg
	}
	return r, out, nil
}

var (
	digStatusRE = regexp.MustCompile(`status: ([A-Z]+)`)
	digPTRRE    = regexp.MustCompile(`(?m)^\S+\s+\d+\s+IN\s+PTR\s+(\S+)$`)
	digFlagsRE  = regexp.MustCompile(`;; flags: ([a-z ]+);`)
)

// digPTR runs `dig -x ADDR @resolver` and returns the crawl's ptr_status word (ok, nxdomain,
// servfail, refused, timeout) and the PTR names.
func (v vantage) digPTR(ctx context.Context, resolver netip.AddrPort, a netip.Addr) (status string, names []string, out string, err error) {
	out, code, err := v.run(ctx, 20*time.Second, "dig", "+time=5", "+tries=1", "+nocookie",
		"@"+resolver.Addr().String(), "-p", strconv.Itoa(int(resolver.Port())), "-x", a.String())
	if err != nil {
		return "", nil, out, err
	}
	if code == 9 {
		return "timeout", nil, out, nil
	}
	m := digStatusRE.FindStringSubmatch(out)
	if m == nil {
		return "", nil, out, fmt.Errorf("dig -x %s: exit %d, no status", a, code)
	}
	status = map[string]string{"NOERROR": "ok", "NXDOMAIN": "nxdomain", "SERVFAIL": "servfail", "REFUSED": "refused"}[m[1]]
	for _, n := range digPTRRE.FindAllStringSubmatch(out, -1) {
		names = append(names, strings.TrimSuffix(n[1], "."))
	}
	return status, names, out, nil
}

// digSOA asks a name server directly for a domain's SOA (no recursion) and returns the
// dns53 status word: authoritative, answered, refused, servfail, timeout or unreachable.
func (v vantage) digSOA(ctx context.Context, server netip.Addr, domain string) (string, string, error) {
	// dig's own wait (8 s): the lab's slow server answers after 3.5 s, which a loaded
	// machine stretched past a 5 s wait once (the crawl got the answer; dig timed out).
	out, code, err := v.run(ctx, 15*time.Second, "dig", "+time=8", "+tries=1", "+norec", "+nocookie",
		"@"+server.String(), domain, "SOA")
	if err != nil {
		return "", out, err
	}
	switch {
	case strings.Contains(out, "connection refused") || strings.Contains(out, "unreachable"):
		return "unreachable", out, nil
	case code == 9:
		return "timeout", out, nil
	}
	m := digStatusRE.FindStringSubmatch(out)
	if m == nil {
		return "", out, fmt.Errorf("dig @%s %s SOA: exit %d, no status", server, domain, code)
	}
	switch m[1] {
	case "SERVFAIL":
		return "servfail", out, nil
	case "REFUSED":
		return "refused", out, nil
	}
	if f := digFlagsRE.FindStringSubmatch(out); f != nil && strings.Contains(" "+f[1]+" ", " aa ") {
		return "authoritative", out, nil
	}
	return "answered", out, nil
}

// tcpState runs netcat-openbsd's `nc -z -v -w 3 ADDR PORT` (the crawl's TCP timeout is 3 s)
// and returns open, closed, filtered or unreachable.
func (v vantage) tcpState(ctx context.Context, a netip.Addr, port int) (string, string, error) {
	out, code, err := v.run(ctx, 15*time.Second, "nc", "-z", "-v", "-n", "-w", "3", a.String(), strconv.Itoa(port))
	if err != nil {
		return "", out, err
	}
	switch {
	case code == 0 && strings.Contains(out, "succeeded"):
		return "open", out, nil
	case strings.Contains(out, "Connection refused"):
		return "closed", out, nil
	case strings.Contains(out, "timed out"):
		return "filtered", out, nil
	case strings.Contains(out, "unreachable"), strings.Contains(out, "No route to host"):
		return "unreachable", out, nil
	}
	return "", out, fmt.Errorf("nc %s %d: exit %d, unrecognised output", a, port, code)
}

// tlsResult is what `openssl s_client -brief` reports.
type tlsResult struct {
	// Version is the crawl's spelling (TLS1.3) or "none" when no session was made.
	Version string
	// Verified is true for "Verification: OK" (chain and host name).
	Verified bool
}

var opensslVersionRE = regexp.MustCompile(`Protocol version: TLSv([0-9.]+)`)

// openssl runs `openssl s_client -brief` to [ADDR]:port with SNI and host-name checking for
// host against the lab CA; starttls makes it speak SMTP first (EHLO ehlo).
func (v vantage) openssl(ctx context.Context, a netip.Addr, port int, host, caFile, ehlo string, starttls bool) (tlsResult, string, error) {
	args := []string{"openssl", "s_client", "-brief", "-connect", netip.AddrPortFrom(a, uint16(port)).String(),
		"-servername", host, "-verify_hostname", host, "-CAfile", caFile}
	if starttls {
		args = append(args, "-starttls", "smtp", "-name", ehlo)
	}
	// The crawl's TLS timeout is 10 s; a handshake stalled by the PMTU black hole is cut there.
	out, _, err := v.run(ctx, 10*time.Second, args...)
	if err != nil {
		return tlsResult{}, out, err
	}
	r := tlsResult{Version: "none"}
	if m := opensslVersionRE.FindStringSubmatch(out); m != nil {
		r.Version = "TLS" + m[1]
	}
	r.Verified = strings.Contains(out, "Verification: OK")
	return r, out, nil
}

// traceResult is what iputils tracepath reports.
type traceResult struct {
	Reached          bool
	PMTU, Hops, Back int
}

var (
	resumeRE  = regexp.MustCompile(`Resume: pmtu (\d+)(?: hops (\d+))?(?: back (\d+))?`)
	tooManyRE = regexp.MustCompile(`Too many hops`)
)

// tracepath runs `tracepath -n -4|-6 -m maxHops ADDR`.
func (v vantage) tracepath(ctx context.Context, a netip.Addr, maxHops int) (traceResult, string, error) {
	fam := "-4"
	if a.Is6() {
		fam = "-6"
	}
	// A silent hop costs tracepath about 3 s; a target that is never reached costs maxHops of them.
	out, _, err := v.run(ctx, time.Duration(maxHops)*4*time.Second, "tracepath", "-n", fam, "-m", strconv.Itoa(maxHops), a.String())
	if err != nil {
		return traceResult{}, out, err
	}
	m := resumeRE.FindStringSubmatch(out)
	if m == nil {
		return traceResult{}, out, fmt.Errorf("tracepath %s: no Resume line", a)
	}
	var r traceResult
	r.PMTU, _ = strconv.Atoi(m[1])
	r.Hops, _ = strconv.Atoi(m[2])
	r.Back, _ = strconv.Atoi(m[3])
	r.Reached = m[2] != "" && !tooManyRE.MatchString(out)
	return r, out, nil
}
