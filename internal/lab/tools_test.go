package lab

import (
	"errors"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// exitCode returns a command's exit status, or -1 when it did not run.
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	default:
		return -1
	}
}

var digStatusRE = regexp.MustCompile(`status: ([A-Z]+)`)

func TestDigFromVantage(t *testing.T) {
	t.Parallel()
	l := labForTest(t)
	if _, err := exec.LookPath("dig"); err != nil {
		t.Skip("dig not installed (Debian package dnsutils)")
	}
	tests := []struct {
		name       string
		args       []string
		wantExit   int    // dig's exit status: 0 answered, 9 no reply
		wantStatus string // rcode when answered
		wantAnswer string // a substring of the answer section
	}{
		{"resolver AAAA", []string{"@127.0.0.53", "www.alpha.uk", "AAAA"}, 0, "NOERROR", "2001:db8:a::80"},
		{"resolver follows CNAME chain", []string{"@127.0.0.53", "www.cnamechain.net", "A"}, 0, "NOERROR", "web.dnshost.net.\t3600\tIN\tA\t198.51.100.80"},
		{"resolver 6to4 AAAA", []string{"@127.0.0.53", "www.sixtofour.net", "AAAA"}, 0, "NOERROR", "2002:c633:6450::1"},
		{"resolver IPv4-mapped AAAA", []string{"@127.0.0.53", "www.mapped.uk", "AAAA"}, 0, "NOERROR", "::ffff:198.51.100.80"},
		{"resolver null MX", []string{"@127.0.0.53", "nullmx.org", "MX"}, 0, "NOERROR", "MX\t0 ."},
		{"resolver NXDOMAIN", []string{"@127.0.0.53", "www.missing.com", "A"}, 0, "NXDOMAIN", ""},
		{"resolver dead name server", []string{"@127.0.0.53", "www.dead.org", "A"}, 0, "SERVFAIL", ""},
		{"resolver SERVFAIL name server", []string{"@127.0.0.53", "failing.net", "SOA"}, 0, "SERVFAIL", ""},
		{"resolver PTR", []string{"@127.0.0.53", "-x", "198.51.100.80"}, 0, "NOERROR", "web.dnshost.net."},
		{"resolver no PTR", []string{"@127.0.0.53", "-x", "198.51.100.83"}, 0, "NXDOMAIN", ""},
		{"dead name server times out", []string{"@198.51.100.13", "lame.org", "SOA"}, 9, "", ""},
		{"v4-only name server over IPv4", []string{"@198.51.100.12", "v4ns.com", "SOA"}, 0, "NOERROR", "ns-v4only.dnshost.net."},
		{"v4-only name server over IPv6", []string{"@2001:db8:a::12", "v4ns.com", "SOA"}, 9, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The resolver may wait for dead servers; the direct queries test a 2 s timeout.
			wait := "+time=2"
			if tc.args[0] == "@127.0.0.53" {
				wait = "+time=8"
			}
			args := append([]string{wait, "+tries=1", "+nocookie"}, tc.args...)
			out, err := inVantage(t, l, 15*time.Second, "dig", args...)
			if got := exitCode(err); got != tc.wantExit {
				t.Fatalf("dig %v: exit %d (%v), want %d\n%s", args, got, err, tc.wantExit, out)
			}
			if tc.wantExit != 0 {
				return
			}
			m := digStatusRE.FindStringSubmatch(out)
			if m == nil || m[1] != tc.wantStatus {
				t.Errorf("dig %v: status %v, want %s\n%s", args, m, tc.wantStatus, out)
			}
			if !strings.Contains(out, tc.wantAnswer) {
				t.Errorf("dig %v: output lacks %q\n%s", args, tc.wantAnswer, out)
			}
		})
	}
}

var lossRE = regexp.MustCompile(`(\d+)% packet loss`)

func TestPingFromVantage(t *testing.T) {
	t.Parallel()
	l := labForTest(t)
	tests := []struct {
		name     string
		addr     string
		wantLoss int
		wantText string // e.g. the ICMP error ping reports
	}{
		{"shared host IPv4", "198.51.100.80", 0, ""},
		{"shared host IPv6", "2001:db8:a::80", 0, ""},
		{"6to4 address", "2002:c633:6450::1", 0, ""},
		{"Teredo address", "2001:0:c633:6401:8000:f227:39cc:9baf", 0, ""},
		{"far host IPv6 (small packets cross the black hole)", "2001:db8:b::10", 0, ""},
		{"host ignoring echo IPv4", "198.51.100.90", 100, ""},
		{"host ignoring echo IPv6", "2001:db8:a::90", 100, ""},
		{"target dropping everything", "2001:db8:a::99", 100, ""},
		{"AAAA unreachable over IPv6", "2001:db8:a::66", 100, "Destination unreachable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, _ := inVantage(t, l, 15*time.Second, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "1", tc.addr)
			m := lossRE.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("ping %s: no loss line\n%s", tc.addr, out)
			}
			if got, _ := strconv.Atoi(m[1]); got != tc.wantLoss {
				t.Errorf("ping %s: %d%% loss, want %d%%\n%s", tc.addr, got, tc.wantLoss, out)
			}
			if !strings.Contains(out, tc.wantText) {
				t.Errorf("ping %s: output lacks %q\n%s", tc.addr, tc.wantText, out)
			}
		})
	}
}

var (
	resumeRE   = regexp.MustCompile(`Resume: pmtu (\d+) hops (\d+) back (\d+)`)
	tooManyRE  = regexp.MustCompile(`Too many hops: pmtu (\d+)`)
	noReplyRE  = regexp.MustCompile(`(?m)^\s*(\d+):\s+no reply`)
	hopAddrRE  = regexp.MustCompile(`(?m)^\s*(\d+):\s+([0-9a-f.:]+)\s`)
	tracepathT = 30 * time.Second
)

func TestTracepathFromVantage(t *testing.T) {
	t.Parallel()
	l := labForTest(t)
	if _, err := exec.LookPath("tracepath"); err != nil {
		t.Skip("tracepath not installed (Debian package iputils-tracepath)")
	}
	tests := []struct {
		name        string
		args        []string
		wantReached bool
		wantPMTU    int
		wantHops    int   // when reached
		wantSilent  []int // hops that never answered
		wantLastHop string
	}{
		{"tunnel path IPv6", []string{"2001:db8:a::80"}, true, 1280, 4, nil, "2001:db8:a::80"},
		{"tunnel path IPv4", []string{"198.51.100.80"}, true, 1280, 4, nil, "198.51.100.80"},
		{"silent router IPv4", []string{"203.0.113.10"}, true, 1400, 4, []int{3}, "203.0.113.10"},
		// Packet Too Big for the 1400 link is dropped: tracepath is stuck at 1480 and the
		// probes vanish after hop 2.
		{"PMTU black hole IPv6", []string{"-m", "4", "2001:db8:b::10"}, false, 1480, 0, []int{3, 4}, "2001:db8:0:2::2"},
		{"target dropping everything", []string{"-m", "4", "2001:db8:a::99"}, false, 1280, 0, []int{4}, "2001:db8:0:3::2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := inVantage(t, l, tracepathT, "tracepath", append([]string{"-n"}, tc.args...)...)
			if exitCode(err) < 0 {
				t.Fatalf("tracepath: %v", err)
			}
			var pmtu, hops int
			reached := false
			if m := resumeRE.FindStringSubmatch(out); m != nil && !strings.Contains(out, "Too many hops") {
				reached = true
				pmtu, _ = strconv.Atoi(m[1])
				hops, _ = strconv.Atoi(m[2])
			} else if m := tooManyRE.FindStringSubmatch(out); m != nil {
				pmtu, _ = strconv.Atoi(m[1])
			}
			if reached != tc.wantReached || pmtu != tc.wantPMTU || (reached && hops != tc.wantHops) {
				t.Errorf("tracepath %v: reached %v pmtu %d hops %d, want %v %d %d\n%s",
					tc.args, reached, pmtu, hops, tc.wantReached, tc.wantPMTU, tc.wantHops, out)
			}
			silent := map[int]bool{}
			for _, m := range noReplyRE.FindAllStringSubmatch(out, -1) {
				n, _ := strconv.Atoi(m[1])
				silent[n] = true
			}
			var gotSilent []int
			for n := 1; n <= 30; n++ {
				if silent[n] {
					gotSilent = append(gotSilent, n)
				}
			}
			if diff := cmp.Diff(tc.wantSilent, gotSilent, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("tracepath %v: silent hops (-want +got):\n%s\n%s", tc.args, diff, out)
			}
			hopsSeen := hopAddrRE.FindAllStringSubmatch(out, -1)
			if len(hopsSeen) == 0 || hopsSeen[len(hopsSeen)-1][2] != tc.wantLastHop {
				t.Errorf("tracepath %v: last answering hop %v, want %s\n%s", tc.args, hopsSeen, tc.wantLastHop, out)
			}
		})
	}
}
